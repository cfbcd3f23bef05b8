//! Epochs: each region's wrapping keys, made, rotated and destroyed, whichever provider
//! (files or a PKCS#11 token) holds them.

use std::collections::HashMap;

use crate::sqldb::params;

use super::provider::EpochKey;
use super::{Keyring, KeyringError};
use crate::ids::RegionId;
use crate::seal::{WrappingKey, unwrap_candidate_key, wrap_candidate_key};

/// One region's epochs, for `kiroku keys status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EpochStatus {
    pub region: RegionId,
    pub current_epoch: u32,
    /// Where the current epoch key is kept: its file, or its token and object.
    pub current_key: String,
    /// Seconds since the current epoch began.
    pub current_age_seconds: i64,
    /// Candidate keys wrapped under each epoch still kept: (epoch, keys).
    pub keys_per_epoch: Vec<(u32, u64)>,
    pub destroyed_epochs: Vec<u32>,
}

/// What a rotation did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rotation {
    pub region: RegionId,
    pub from_epoch: u32,
    pub to_epoch: u32,
    pub rewrapped: usize,
    pub destroyed_epochs: Vec<u32>,
}

impl Keyring {
    /// Makes the region's first epoch when it has none.
    pub(super) fn ensure_epoch(&self, region: &RegionId) -> Result<(), KeyringError> {
        let current = self.current_epoch_opt(region)?;
        match current {
            Some(epoch) => {
                // Refuse to go on without the key everything new is wrapped under: opening
                // it fails naming the region when it is gone.
                self.epoch_key(region, epoch)?;
                self.check_epoch_key(region, epoch)
            }
            None => {
                let key = self.create_epoch_key(region, 1)?;
                let check = key_check(key.wrapping(), region)?;
                self.db()
                    .execute(
                        "INSERT INTO epochs (region, epoch, created_at, key_check)
                         VALUES (?1, 1, ?2, ?3) ON CONFLICT DO NOTHING",
                        params![region.as_str(), crate::util::now_unix(), check],
                    )
                    .map_err(|e| self.db_err(e))?;
                Ok(())
            }
        }
    }

    /// The epoch key file opens the epoch's check value: it is the key the epoch's candidate
    /// keys were wrapped under, not another 32 bytes put in its place.
    fn check_epoch_key(&self, region: &RegionId, epoch: u32) -> Result<(), KeyringError> {
        let key = self.epoch_key(region, epoch)?;
        let check: Option<Vec<u8>> = self
            .db()
            .query_row(
                "SELECT key_check FROM epochs WHERE region = ?1 AND epoch = ?2",
                params![region.as_str(), epoch],
                |r| r.get(0),
            )
            .map_err(|e| self.db_err(e))?;
        let Some(check) = check else {
            return Ok(());
        };
        match unwrap_candidate_key(key.wrapping(), &check, &check_candidate(), 0, region) {
            Ok(_) => Ok(()),
            Err(crate::seal::KeyError::Unwrap) => Err(KeyringError::WrongEpochKey {
                region: region.to_string(),
                epoch,
                path: self.key_place(region, epoch),
            }),
            Err(e) => Err(e.into()),
        }
    }

    fn current_epoch_opt(&self, region: &RegionId) -> Result<Option<u32>, KeyringError> {
        let db = self.db();
        current_opt_in(&db, region).map_err(|e| self.db_err(e))
    }

    /// The epoch new keys of the region are wrapped under.
    pub fn current_epoch(&self, region: &RegionId) -> Result<u32, KeyringError> {
        Ok(self.current_epoch_opt(region)?.unwrap_or(1))
    }

    /// Starts a new epoch for the region: a new epoch key, every live candidate key rewrapped
    /// under it (one transaction), and the epoch keys older than `keep` epochs destroyed.
    pub fn rotate(&self, region: &RegionId, keep: u32) -> Result<Rotation, KeyringError> {
        let (from, to, rewrapped) = {
            let db = self.db();
            // One immediate transaction from reading the epoch to the last rewrap: no key can
            // be kept under the old epoch meanwhile (in this process or another) and be lost
            // when its key is destroyed.
            let tx = db.transaction().map_err(|e| self.db_err(e))?;
            let from = current_in(&tx, region).map_err(|e| self.db_err(e))?;
            let to = from + 1;
            let new_key = self.create_epoch_key(region, to)?;
            // Each old epoch's key opened once, not once per candidate key.
            let mut old_keys: HashMap<u32, EpochKey<'_>> = HashMap::new();
            let rows: Vec<(String, u32, u32, Vec<u8>)> = {
                let mut st = tx
                    .prepare(
                        "SELECT candidate, version, epoch, wrapped FROM wrapped WHERE region = ?1",
                    )
                    .map_err(|e| self.db_err(e))?;
                st.query_map(params![region.as_str()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .and_then(|rows| rows.collect())
                .map_err(|e| self.db_err(e))?
            };
            for (c, v, epoch, w) in &rows {
                let candidate = crate::ids::CandidateId::parse(c).map_err(|_| {
                    self.db_err(crate::sqldb::Error::Config(format!("candidate {c}")))
                })?;
                if !old_keys.contains_key(epoch) {
                    old_keys.insert(*epoch, self.epoch_key(region, *epoch)?);
                }
                let key =
                    unwrap_candidate_key(old_keys[epoch].wrapping(), w, &candidate, *v, region)?;
                tx.execute(
                    "UPDATE wrapped SET epoch = ?4, wrapped = ?5
                     WHERE candidate = ?1 AND region = ?2 AND version = ?3",
                    params![
                        c,
                        region.as_str(),
                        v,
                        to,
                        wrap_candidate_key(new_key.wrapping(), &key, &candidate, region)?
                    ],
                )
                .map_err(|e| self.db_err(e))?;
            }
            tx.execute(
                "INSERT INTO epochs (region, epoch, created_at, key_check) VALUES (?1, ?2, ?3, ?4)",
                params![
                    region.as_str(),
                    to,
                    crate::util::now_unix(),
                    key_check(new_key.wrapping(), region)?
                ],
            )
            .map_err(|e| self.db_err(e))?;
            tx.commit().map_err(|e| self.db_err(e))?;
            db.scrub_deleted("wrapped").map_err(|e| self.db_err(e))?;
            (from, to, rows.len())
        };
        let destroyed_epochs = self.destroy_older(region, to.saturating_sub(keep))?;
        Ok(Rotation {
            region: region.clone(),
            from_epoch: from,
            to_epoch: to,
            rewrapped,
            destroyed_epochs,
        })
    }

    /// Rotates every region in `regions` whose current epoch is `days` old or older.
    pub fn rotate_due(
        &self,
        regions: &[RegionId],
        days: u64,
        keep: u32,
    ) -> Result<Vec<Rotation>, KeyringError> {
        let mut done = Vec::new();
        if days == 0 {
            return Ok(done);
        }
        for s in self.status(regions)? {
            if s.current_age_seconds >= days as i64 * 86_400 {
                done.push(self.rotate(&s.region, keep)?);
            }
        }
        Ok(done)
    }

    /// Destroys the region's epoch keys before `below`.
    fn destroy_older(&self, region: &RegionId, below: u32) -> Result<Vec<u32>, KeyringError> {
        let old: Vec<u32> = {
            let db = self.db();
            let mut st = db
                .prepare(
                    "SELECT epoch FROM epochs WHERE region = ?1 AND epoch < ?2
                     AND destroyed_at IS NULL",
                )
                .map_err(|e| self.db_err(e))?;
            st.query_map(params![region.as_str(), below], |r| r.get(0))
                .and_then(|rows| rows.collect())
                .map_err(|e| self.db_err(e))?
        };
        for epoch in &old {
            self.destroy_epoch_key(region, *epoch)?;
            self.db()
                .execute(
                    "UPDATE epochs SET destroyed_at = ?3 WHERE region = ?1 AND epoch = ?2",
                    params![region.as_str(), epoch, crate::util::now_unix()],
                )
                .map_err(|e| self.db_err(e))?;
        }
        Ok(old)
    }

    /// Every region's epochs and how many keys each wraps.
    pub fn status(&self, regions: &[RegionId]) -> Result<Vec<EpochStatus>, KeyringError> {
        let now = crate::util::now_unix();
        let db = self.db();
        let mut out = Vec::new();
        for region in regions {
            let (current, created): (u32, i64) = db
                .query_row(
                    "SELECT epoch, created_at FROM epochs WHERE region = ?1
                     ORDER BY epoch DESC LIMIT 1",
                    params![region.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(|e| self.db_err(e))?;
            let mut st = db
                .prepare(
                    "SELECT epoch, COUNT(*) FROM wrapped WHERE region = ?1 GROUP BY epoch
                     ORDER BY epoch",
                )
                .map_err(|e| self.db_err(e))?;
            let keys_per_epoch = st
                .query_map(params![region.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
                .map_err(|e| self.db_err(e))?;
            let mut st = db
                .prepare(
                    "SELECT epoch FROM epochs WHERE region = ?1 AND destroyed_at IS NOT NULL
                     ORDER BY epoch",
                )
                .map_err(|e| self.db_err(e))?;
            let destroyed_epochs = st
                .query_map(params![region.as_str()], |r| r.get(0))
                .and_then(|rows| rows.collect())
                .map_err(|e| self.db_err(e))?;
            out.push(EpochStatus {
                region: region.clone(),
                current_epoch: current,
                current_key: self.key_place(region, current),
                current_age_seconds: now - created,
                keys_per_epoch,
                destroyed_epochs,
            });
        }
        Ok(out)
    }
}

/// The pseudo-candidate a key check is wrapped for (no real candidate has this id).
fn check_candidate() -> crate::ids::CandidateId {
    crate::ids::CandidateId::parse("00000000-0000-4000-8000-000000000000").expect("a valid id")
}

/// A zero key wrapped under `key`, bound to the region: opens only under that very key.
fn key_check(key: &dyn WrappingKey, region: &RegionId) -> Result<Vec<u8>, KeyringError> {
    Ok(wrap_candidate_key(
        key,
        &crate::seal::CandidateKey::from_bytes([0; 32], 0),
        &check_candidate(),
        region,
    )?)
}

/// The region's newest epoch, read on `db` (a connection or a transaction).
fn current_opt_in(
    db: &crate::sqldb::Connection,
    region: &RegionId,
) -> crate::sqldb::Result<Option<u32>> {
    db.query_row(
        "SELECT MAX(epoch) FROM epochs WHERE region = ?1",
        params![region.as_str()],
        |r| r.get::<_, Option<u32>>(0),
    )
}

/// The epoch new keys of the region are wrapped under, read inside `db`'s transaction.
pub(super) fn current_in(
    db: &crate::sqldb::Connection,
    region: &RegionId,
) -> crate::sqldb::Result<u32> {
    Ok(current_opt_in(db, region)?.unwrap_or(1))
}
