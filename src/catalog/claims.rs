//! Claims: work that one node at a time does when several share the catalog (a recipient's
//! deliveries, the hourly sweeps), each held by a node until a time and taken over by another
//! only once that has passed. One statement each, so two nodes cannot both win.

use crate::sqldb::params;

use super::{Catalog, CatalogError};

impl Catalog {
    /// Claims (or renews) `what` for `node` until `until`; false while another node's claim
    /// holds at `now`.
    pub fn claim(
        &self,
        what: &str,
        node: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, CatalogError> {
        let n = self.db().execute(
            "INSERT INTO claims (what, node, until) VALUES (?1, ?2, ?4)
             ON CONFLICT (what) DO UPDATE SET node = excluded.node, until = excluded.until
             WHERE claims.node = excluded.node OR claims.until < ?3",
            params![what, node, now, until],
        )?;
        Ok(n == 1)
    }

    /// Gives up `node`'s claim on `what` (none is fine).
    pub fn release_claim(&self, what: &str, node: &str) -> Result<(), CatalogError> {
        self.db().execute(
            "DELETE FROM claims WHERE what = ?1 AND node = ?2",
            params![what, node],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_holds_against_other_nodes_until_it_lapses_and_its_holder_renews_it() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(&dir.path().join("catalog.db")).unwrap();
        assert!(cat.claim("deliveries:acme", "a", 100, 130).unwrap());
        assert!(
            !cat.claim("deliveries:acme", "b", 110, 140).unwrap(),
            "held by a"
        );
        assert!(
            cat.claim("deliveries:acme", "a", 120, 150).unwrap(),
            "a renews"
        );
        assert!(
            !cat.claim("deliveries:acme", "b", 149, 179).unwrap(),
            "still a's"
        );
        assert!(
            cat.claim("deliveries:acme", "b", 151, 181).unwrap(),
            "lapsed: b takes it"
        );
        assert!(
            cat.claim("deliveries:globex", "a", 151, 181).unwrap(),
            "claims are per thing"
        );
        cat.release_claim("deliveries:acme", "a").unwrap();
        assert!(
            !cat.claim("deliveries:acme", "a", 152, 182).unwrap(),
            "a released nothing of b's"
        );
        cat.release_claim("deliveries:acme", "b").unwrap();
        assert!(
            cat.claim("deliveries:acme", "a", 153, 183).unwrap(),
            "free once b gave it up"
        );
    }
}
