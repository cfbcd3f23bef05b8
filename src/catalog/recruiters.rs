//! The catalog's side of recruiting companies: their handles, hashed API keys, webhook
//! endpoints and the short-lived download links deliveries carry.

use crate::sqldb::{OptionalExtension, params};

use super::{Catalog, CatalogError};
use crate::ids::{CountryCode, InterviewId, RecruiterHandle};
use crate::vocab::OutboxState;

/// What the catalog knows of a presented key id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCheck {
    Unknown,
    Revoked,
    /// The key is live: its handle and stored hash, for the caller's constant-time comparison.
    Live {
        handle: RecruiterHandle,
        hash: Vec<u8>,
    },
}

/// A recruiter's webhook endpoint.
#[derive(Debug, Clone)]
pub struct WebhookRow {
    pub handle: RecruiterHandle,
    pub url: String,
    pub secret: String,
}

/// A recipient as the decision point sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub revoked: bool,
    pub country: Option<CountryCode>,
}

impl Catalog {
    /// Registers a recruiter with its first key; false if the handle is taken.
    pub fn insert_recruiter(
        &self,
        h: &RecruiterHandle,
        country: &CountryCode,
        key_id: &str,
        hash: &[u8],
    ) -> Result<bool, CatalogError> {
        let db = self.db();
        let tx = db.transaction()?;
        let now = crate::util::now_rfc3339();
        let n = tx.execute(
            "INSERT INTO recruiters (handle, created_at, country) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            params![h.as_str(), now, country.as_str()],
        )?;
        if n == 0 {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO recruiter_keys (key_id, handle, hash, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![key_id, h.as_str(), hash, now],
        )?;
        tx.commit()?;
        Ok(true)
    }

    pub fn recruiter_exists(&self, h: &RecruiterHandle) -> Result<bool, CatalogError> {
        Ok(self
            .db()
            .query_row(
                "SELECT 1 FROM recruiters WHERE handle = ?1",
                params![h.as_str()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Handles of every recruiter, with how many live keys each has.
    pub fn recruiters(&self) -> Result<Vec<(RecruiterHandle, u32)>, CatalogError> {
        let db = self.db();
        let mut st = db.prepare(
            "SELECT r.handle, COUNT(k.key_id) FROM recruiters r
             LEFT JOIN recruiter_keys k ON k.handle = r.handle AND k.revoked_at IS NULL
             GROUP BY r.handle ORDER BY r.handle",
        )?;
        let rows = st.query_map(params![], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Revokes a recruiter as a recipient, in one transaction: marked revoked, every key
    /// revoked, its webhook deleted, its download links deleted, its pending deliveries
    /// cancelled. Returns (keys revoked, ids of the deliveries cancelled).
    pub fn revoke_recruiter(
        &self,
        h: &RecruiterHandle,
    ) -> Result<(usize, Vec<String>), CatalogError> {
        let db = self.db();
        let tx = db.transaction()?;
        let now = crate::util::now_rfc3339();
        let who = h.as_str();
        tx.execute(
            "UPDATE recruiters SET revoked_at = ?2 WHERE handle = ?1 AND revoked_at IS NULL",
            params![who, now],
        )?;
        let keys = tx.execute(
            "UPDATE recruiter_keys SET revoked_at = ?2 WHERE handle = ?1 AND revoked_at IS NULL",
            params![who, now],
        )?;
        tx.execute("DELETE FROM webhooks WHERE handle = ?1", params![who])?;
        tx.execute("DELETE FROM download_links WHERE handle = ?1", params![who])?;
        let pending = OutboxState::Pending;
        let cancelled: Vec<String> = {
            let mut st =
                tx.prepare("SELECT id FROM outbox WHERE handle = ?1 AND state = ?2 ORDER BY seq")?;
            st.query_map(params![who, pending], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        tx.execute(
            "UPDATE outbox SET state = ?3, last_error = 'recipient revoked', done_at = ?4
             WHERE handle = ?1 AND state = ?2",
            params![who, pending, OutboxState::Cancelled, now],
        )?;
        tx.commit()?;
        Ok((keys, cancelled))
    }

    /// What the decision point asks of a recipient, in one read: revoked or not, and the
    /// country it receives data in (`None` for one registered before countries were
    /// recorded). A handle nobody registered reads as neither.
    pub fn recipient(&self, h: &RecruiterHandle) -> Result<Recipient, CatalogError> {
        let row: Option<(bool, Option<String>)> = self
            .db()
            .query_row(
                "SELECT revoked_at IS NOT NULL, country FROM recruiters WHERE handle = ?1",
                params![h.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (revoked, country) = row.unwrap_or((false, None));
        let country = country
            .map(|t| {
                CountryCode::parse(&t)
                    .map_err(|_| CatalogError::Corrupt(format!("recruiter country {t}")))
            })
            .transpose()?;
        Ok(Recipient { revoked, country })
    }

    /// Revokes every live key of a recruiter and, when given, adds a new one, atomically.
    /// Returns how many keys were revoked.
    pub fn replace_recruiter_keys(
        &self,
        h: &RecruiterHandle,
        new_key: Option<(&str, &[u8])>,
    ) -> Result<usize, CatalogError> {
        let db = self.db();
        let tx = db.transaction()?;
        let now = crate::util::now_rfc3339();
        let n = tx.execute(
            "UPDATE recruiter_keys SET revoked_at = ?2 WHERE handle = ?1 AND revoked_at IS NULL",
            params![h.as_str(), now],
        )?;
        if let Some((key_id, hash)) = new_key {
            tx.execute(
                "INSERT INTO recruiter_keys (key_id, handle, hash, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![key_id, h.as_str(), hash, now],
            )?;
        }
        tx.commit()?;
        Ok(n)
    }

    pub fn recruiter_key(&self, key_id: &str) -> Result<KeyCheck, CatalogError> {
        let row: Option<(RecruiterHandle, Vec<u8>, Option<String>)> = self
            .db()
            .query_row(
                "SELECT handle, hash, revoked_at FROM recruiter_keys WHERE key_id = ?1",
                params![key_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        Ok(match row {
            None => KeyCheck::Unknown,
            Some((_, _, Some(_))) => KeyCheck::Revoked,
            Some((handle, hash, None)) => KeyCheck::Live { handle, hash },
        })
    }

    pub fn set_webhook(&self, w: &WebhookRow) -> Result<(), CatalogError> {
        self.db().execute(
            "INSERT INTO webhooks (handle, url, secret, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (handle) DO UPDATE SET url = ?2, secret = ?3, created_at = ?4",
            params![
                w.handle.as_str(),
                w.url,
                w.secret,
                crate::util::now_rfc3339()
            ],
        )?;
        Ok(())
    }

    pub fn remove_webhook(&self, h: &RecruiterHandle) -> Result<bool, CatalogError> {
        Ok(self.db().execute(
            "DELETE FROM webhooks WHERE handle = ?1",
            params![h.as_str()],
        )? == 1)
    }

    pub fn webhook(&self, h: &RecruiterHandle) -> Result<Option<WebhookRow>, CatalogError> {
        Ok(self
            .db()
            .query_row(
                "SELECT url, secret FROM webhooks WHERE handle = ?1",
                params![h.as_str()],
                |r| {
                    Ok(WebhookRow {
                        handle: h.clone(),
                        url: r.get(0)?,
                        secret: r.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    /// Records a download link, or renews the lifetime of one already recorded (a delivery's
    /// retry carries the same link).
    pub fn insert_download_link(
        &self,
        hash: &[u8],
        h: &RecruiterHandle,
        interview: &InterviewId,
        expires_at: i64,
    ) -> Result<(), CatalogError> {
        self.db().execute(
            "INSERT INTO download_links (hash, handle, interview_id, expires_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (hash) DO UPDATE SET expires_at = excluded.expires_at",
            params![hash, h.as_str(), interview.to_string(), expires_at],
        )?;
        Ok(())
    }

    /// The recruiter and interview of a download link that has not expired.
    pub fn download_link(
        &self,
        hash: &[u8],
        now: i64,
    ) -> Result<Option<(RecruiterHandle, InterviewId)>, CatalogError> {
        Ok(self
            .db()
            .query_row(
                "SELECT handle, interview_id FROM download_links WHERE hash = ?1 AND expires_at > ?2",
                params![hash, now],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }
}
