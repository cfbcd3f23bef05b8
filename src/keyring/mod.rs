//! The keyring: every candidate's wrapped keys, kept with the key provider outside the data
//! dir (`[keys] dir`, default the sibling folder `<data_dir>.keys`), so that a backup of the
//! data dir holds no key material at all.
//!
//! ```text
//! <keys dir>/keyring.db            wrapped candidate keys (candidate, region, version, epoch)
//! <keys dir>/epochs/<region>/<n>.key   the region's epoch keys (the file key provider), 0600
//! <keys dir>/erased.jsonl          the erasure ledger: candidates erased, re-applied at start
//! ```
//!
//! With `[keys.pkcs11]` the epoch keys live in a PKCS#11 token instead and never leave it
//! (`provider`, `pkcs11`); everything else is the same.
//!
//! Each region's candidate keys are wrapped under the region's current epoch key. A rotation
//! (`kiroku keys rotate`, or every `[keys] epoch_days`) makes a new epoch key, rewraps every
//! live candidate key under it in one transaction, and destroys the epoch keys older than
//! `[keys] keep_epochs`. An erased candidate's wrapped keys are deleted at once; a copy of the
//! keyring taken before the erasure still holds them, wrapped under an epoch key that the
//! next rotation destroys: from then on no copy of the keyring opens them. The keyring runs
//! with `secure_delete` and truncates its WAL after each change, so deleted rows do not linger
//! in its own files.

mod epochs;
mod pkcs11;
mod provider;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::sqldb::{Connection, Location, OptionalExtension, params};

/// The keyring's schema, in steps applied once each (see [`crate::sqldb`]). The first step's
/// `IF NOT EXISTS` adopts keyrings made before steps were counted.
const STEPS: &[&str] = &["CREATE TABLE IF NOT EXISTS epochs (
        region TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        destroyed_at INTEGER,
        -- A known value wrapped under the epoch key: proves at start that the key
        -- file is the one the epoch's candidate keys were wrapped under.
        key_check BLOB,
        PRIMARY KEY (region, epoch)
     );
     CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS wrapped (
        candidate TEXT NOT NULL,
        region TEXT NOT NULL,
        version INTEGER NOT NULL,
        epoch INTEGER NOT NULL,
        wrapped BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (candidate, region, version)
     );"];

pub use epochs::{EpochStatus, Rotation};
pub use pkcs11::TokenError;

use crate::config::Pkcs11Config;
use crate::ids::{CandidateId, RegionId};
use crate::seal::{CandidateKey, KeyError, unwrap_candidate_key, wrap_candidate_key};
use provider::Provider;

/// Why the keyring could not answer.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("keyring {path}: {source}")]
    Db {
        path: String,
        source: crate::sqldb::Error,
    },
    #[error("keyring {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(
        "region {region}: its current epoch key {epoch} is missing from {path}: restore the keys \
         folder, or kiroku would write data it cannot read back"
    )]
    EpochKeyMissing {
        region: String,
        epoch: u32,
        path: String,
    },
    #[error(
        "region {region}: {path} is not the epoch key {epoch} its candidate keys were wrapped \
         under (replaced or corrupted): restore the right file"
    )]
    WrongEpochKey {
        region: String,
        epoch: u32,
        path: String,
    },
}

/// The keyring of one kiroku (see the module docs).
pub struct Keyring {
    dir: PathBuf,
    db: Mutex<Connection>,
    /// A random id made with the keyring, naming its keys in a shared token.
    id: String,
    provider: Provider,
}

impl Keyring {
    /// Opens (creating) the keyring in `dir` (0700), its epoch keys in files there or, with
    /// `pkcs11`, in that token, with a current epoch for every region in `regions`. A region
    /// whose current epoch key is gone or is another key refuses to open: kiroku must not seal
    /// what it could not open again.
    pub fn open(
        dir: &Path,
        pkcs11: Option<&Pkcs11Config>,
        regions: &[RegionId],
    ) -> Result<Keyring, KeyringError> {
        Keyring::open_in(dir, None, pkcs11, regions)
    }

    /// [`Keyring::open`], with the wrapped keys in the PostgreSQL database at `database` when
    /// given (the catalog's, so that every node reads the keys another node made) instead of
    /// `keyring.db` in `dir`. The erasure ledger and epoch key files stay in `dir`.
    pub fn open_in(
        dir: &Path,
        database: Option<&str>,
        pkcs11: Option<&Pkcs11Config>,
        regions: &[RegionId],
    ) -> Result<Keyring, KeyringError> {
        let io = |source| KeyringError::Io {
            path: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
        let path = dir.join("keyring.db");
        let db_err = |source| KeyringError::Db {
            path: path.display().to_string(),
            source,
        };
        let location = match database {
            Some(url) => Location::Postgres(url.to_string()),
            None => Location::Sqlite(path.clone()),
        };
        let conn = Connection::open(&location).map_err(db_err)?;
        conn.migrate("keyring_version", STEPS).map_err(db_err)?;
        conn.execute(
            "INSERT INTO meta (name, value) VALUES ('id', ?1) ON CONFLICT DO NOTHING",
            params![uuid::Uuid::new_v4().simple().to_string()],
        )
        .map_err(db_err)?;
        let id: String = conn
            .query_row("SELECT value FROM meta WHERE name = 'id'", params![], |r| {
                r.get(0)
            })
            .map_err(db_err)?;
        let provider = match pkcs11 {
            Some(cfg) => Provider::Token(pkcs11::Token::open(cfg)?),
            None => Provider::Files,
        };
        let keyring = Keyring {
            dir: dir.to_path_buf(),
            db: Mutex::new(conn),
            id,
            provider,
        };
        for region in regions {
            keyring.ensure_epoch(region)?;
        }
        Ok(keyring)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn db(&self) -> MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn db_err(&self, source: crate::sqldb::Error) -> KeyringError {
        KeyringError::Db {
            path: self.dir.join("keyring.db").display().to_string(),
            source,
        }
    }

    /// The candidate's newest key in a region, unwrapped: (version, key).
    pub fn newest(
        &self,
        c: &CandidateId,
        region: &RegionId,
    ) -> Result<Option<CandidateKey>, KeyringError> {
        let row: Option<(u32, u32, Vec<u8>)> = self
            .db()
            .query_row(
                "SELECT version, epoch, wrapped FROM wrapped WHERE candidate = ?1 AND region = ?2
                 ORDER BY version DESC LIMIT 1",
                params![c.to_string(), region.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.db_err(e))?;
        row.map(|(v, epoch, w)| self.unwrap(c, region, v, epoch, &w))
            .transpose()
    }

    /// A specific version of the candidate's key in a region; `None` when it is not kept (never
    /// made, or erased).
    pub fn version(
        &self,
        c: &CandidateId,
        region: &RegionId,
        v: u32,
    ) -> Result<Option<CandidateKey>, KeyringError> {
        let row: Option<(u32, Vec<u8>)> = self
            .db()
            .query_row(
                "SELECT epoch, wrapped FROM wrapped WHERE candidate = ?1 AND region = ?2
                 AND version = ?3",
                params![c.to_string(), region.as_str(), v],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.db_err(e))?;
        row.map(|(epoch, w)| self.unwrap(c, region, v, epoch, &w))
            .transpose()
    }

    /// Keeps a new candidate key, wrapped under the region's current epoch; false when that
    /// version was kept first by another writer.
    pub fn insert(
        &self,
        c: &CandidateId,
        region: &RegionId,
        key: &CandidateKey,
    ) -> Result<bool, KeyringError> {
        Ok(self.insert_all(region, [(c, key)])? == 1)
    }

    /// Keeps many new keys of one region in one transaction (moving legacy keys in, the
    /// rotation benchmark); versions already kept are left as they are.
    pub fn insert_batch(
        &self,
        region: &RegionId,
        keys: &[(CandidateId, CandidateKey)],
    ) -> Result<usize, KeyringError> {
        self.insert_all(region, keys.iter().map(|(c, k)| (c, k)))
    }

    /// Wraps each key under the region's current epoch and keeps it; how many were new.
    fn insert_all<'k>(
        &self,
        region: &RegionId,
        keys: impl IntoIterator<Item = (&'k CandidateId, &'k CandidateKey)>,
    ) -> Result<usize, KeyringError> {
        let now = crate::util::now_unix();
        let db = self.db();
        // Immediate: a rotation (in this process or another) cannot slip in between reading
        // the current epoch and keeping keys wrapped under it, and leave them under an epoch
        // whose key it then destroys.
        let tx = db.transaction().map_err(|e| self.db_err(e))?;
        let epoch = epochs::current_in(&tx, region).map_err(|e| self.db_err(e))?;
        let wrapping = self.epoch_key(region, epoch)?;
        let mut added = 0;
        for (c, key) in keys {
            added += tx
                .execute(
                    "INSERT INTO wrapped (candidate, region, version, epoch, wrapped, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                    params![
                        c.to_string(),
                        region.as_str(),
                        key.version(),
                        epoch,
                        wrap_candidate_key(wrapping.wrapping(), key, c, region)?,
                        now
                    ],
                )
                .map_err(|e| self.db_err(e))?;
        }
        tx.commit().map_err(|e| self.db_err(e))?;
        Ok(added)
    }

    /// Destroys every key of the candidate, in every region, and notes the erasure in the
    /// ledger (kept beside the keyring, re-applied at start); returns how many keys.
    pub fn erase(&self, c: &CandidateId, at: &str) -> Result<usize, KeyringError> {
        let n = {
            let db = self.db();
            let n = db
                .execute(
                    "DELETE FROM wrapped WHERE candidate = ?1",
                    params![c.to_string()],
                )
                .map_err(|e| self.db_err(e))?;
            db.scrub_deleted("wrapped").map_err(|e| self.db_err(e))?;
            n
        };
        self.note_erased(c, at)?;
        Ok(n)
    }

    /// Appends the candidate to the erasure ledger (once), durably.
    fn note_erased(&self, c: &CandidateId, at: &str) -> Result<(), KeyringError> {
        use std::io::Write;
        if self.erased()?.contains(c) {
            return Ok(());
        }
        let path = self.dir.join("erased.jsonl");
        let io = |source| KeyringError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        let line = serde_json::json!({"candidate": c, "erased_at": at}).to_string() + "\n";
        f.write_all(line.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)
    }

    /// Every candidate the erasure ledger names.
    pub fn erased(&self) -> Result<Vec<CandidateId>, KeyringError> {
        let path = self.dir.join("erased.jsonl");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(KeyringError::Io {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| CandidateId::parse(v["candidate"].as_str()?).ok())
            .collect())
    }

    fn unwrap(
        &self,
        c: &CandidateId,
        region: &RegionId,
        v: u32,
        epoch: u32,
        wrapped: &[u8],
    ) -> Result<CandidateKey, KeyringError> {
        let key = self.epoch_key(region, epoch)?;
        Ok(unwrap_candidate_key(key.wrapping(), wrapped, c, v, region)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jp() -> RegionId {
        RegionId::parse("jp").unwrap()
    }

    #[test]
    fn a_replaced_or_missing_epoch_key_refuses_to_open_naming_the_region() {
        let dir = tempfile::tempdir().unwrap();
        drop(Keyring::open(dir.path(), None, &[jp()]).unwrap());
        let key = provider::key_path(dir.path(), &jp(), 1);
        std::fs::write(&key, [7u8; 32]).unwrap();
        let e = Keyring::open(dir.path(), None, &[jp()]).err().unwrap();
        assert!(
            matches!(&e, KeyringError::WrongEpochKey { region, epoch: 1, .. } if region == "jp"),
            "{e}"
        );
        std::fs::remove_file(&key).unwrap();
        let e = Keyring::open(dir.path(), None, &[jp()]).err().unwrap();
        assert!(
            matches!(&e, KeyringError::EpochKeyMissing { epoch: 1, .. }),
            "{e}"
        );
    }

    #[test]
    fn a_rotation_rewraps_every_key_and_destroys_the_old_epoch_key() {
        let dir = tempfile::tempdir().unwrap();
        let ring = Keyring::open(dir.path(), None, &[jp()]).unwrap();
        let (a, b) = (CandidateId::new_random(), CandidateId::new_random());
        let ka = CandidateKey::generate(1).unwrap();
        assert!(ring.insert(&a, &jp(), &ka).unwrap());
        assert!(
            ring.insert(&b, &jp(), &CandidateKey::generate(1).unwrap())
                .unwrap()
        );
        assert!(
            !ring.insert(&a, &jp(), &ka).unwrap(),
            "a version is kept once"
        );
        let r = ring.rotate(&jp(), 0).unwrap();
        assert_eq!((r.from_epoch, r.to_epoch, r.rewrapped), (1, 2, 2));
        assert_eq!(r.destroyed_epochs, [1]);
        assert!(!provider::key_path(dir.path(), &jp(), 1).exists());
        let again = ring.version(&a, &jp(), 1).unwrap().unwrap();
        assert_eq!(again.bytes_for_test(), ka.bytes_for_test());
        let status = ring.status(&[jp()]).unwrap();
        assert_eq!(status[0].keys_per_epoch, [(2, 2)]);
        assert_eq!(status[0].destroyed_epochs, [1]);
        assert_eq!(ring.erase(&a, "2026-12-02T00:00:00Z").unwrap(), 1);
        assert!(ring.version(&a, &jp(), 1).unwrap().is_none());
        assert_eq!(ring.erased().unwrap(), [a]);
        ring.erase(&a, "2026-12-02T00:00:01Z").unwrap();
        assert_eq!(
            ring.erased().unwrap(),
            [a],
            "the ledger names a candidate once"
        );
    }

    /// Keys kept while rotations run beside them all still open: none is left under an
    /// epoch whose key a rotation destroyed.
    #[test]
    fn keys_kept_during_rotations_all_still_open() {
        let dir = tempfile::tempdir().unwrap();
        let ring = std::sync::Arc::new(Keyring::open(dir.path(), None, &[jp()]).unwrap());
        let writer = {
            let ring = ring.clone();
            std::thread::spawn(move || {
                (0..300)
                    .map(|_| {
                        let c = CandidateId::new_random();
                        assert!(
                            ring.insert(&c, &jp(), &CandidateKey::generate(1).unwrap())
                                .unwrap()
                        );
                        c
                    })
                    .collect::<Vec<_>>()
            })
        };
        for _ in 0..10 {
            ring.rotate(&jp(), 0).unwrap();
        }
        for c in writer.join().unwrap() {
            assert!(ring.version(&c, &jp(), 1).unwrap().is_some(), "{c} lost");
        }
    }

    #[test]
    fn kept_epochs_survive_a_rotation_until_they_are_older() {
        let dir = tempfile::tempdir().unwrap();
        let ring = Keyring::open(dir.path(), None, &[jp()]).unwrap();
        assert!(ring.rotate(&jp(), 1).unwrap().destroyed_epochs.is_empty());
        assert!(provider::key_path(dir.path(), &jp(), 1).exists());
        assert_eq!(ring.rotate(&jp(), 1).unwrap().destroyed_epochs, [1]);
        assert!(provider::key_path(dir.path(), &jp(), 2).exists());
    }
}
