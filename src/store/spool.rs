//! The local spool of an S3 region: sealed objects that are durable on this machine but not yet
//! confirmed in the bucket. A segment written here is as safe to acknowledge as one in S3
//! (same atomic write and fsync as the local store); the region's uploader drains it, and an
//! object leaves the spool only after S3 confirmed the very bytes it holds (LiveKit Egress lost
//! recordings by deleting before the upload was confirmed: livekit/egress#329).
//!
//! While the spool holds a copy of a key, newer writes of that key (a rewritten manifest) go to
//! the spool too, so an older copy can never be uploaded over a newer one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{LocalStore, ObjectKey, StoreError};
use crate::seal::SealedObject;
use crate::util::secret::sha256;

pub struct Spool {
    files: LocalStore,
    /// Key → (size, SHA-256 of the bytes) of what the spool holds. The lock also orders a
    /// write against the uploader's check-and-delete.
    held: Mutex<BTreeMap<String, (u64, [u8; 32])>>,
}

impl Spool {
    /// Opens the spool folder and takes stock of what a previous run left in it.
    pub fn open(root: &Path) -> Result<Spool, StoreError> {
        let files = LocalStore::new(root);
        let mut held = BTreeMap::new();
        for key in files.list()? {
            let bytes = files.get(&key)?;
            held.insert(key.to_string(), (bytes.len() as u64, sha256(&bytes)));
        }
        Ok(Spool {
            files,
            held: Mutex::new(held),
        })
    }

    pub fn root(&self) -> PathBuf {
        self.files.root().to_path_buf()
    }

    fn held(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (u64, [u8; 32])>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes an object durably into the spool, replacing an older copy.
    pub fn put(
        &self,
        key: &ObjectKey,
        object: &SealedObject,
        tags: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let mut held = self.held();
        self.files.put(key, object, tags)?;
        let bytes = object.to_vec();
        held.insert(key.to_string(), (bytes.len() as u64, sha256(&bytes)));
        Ok(())
    }

    pub fn contains(&self, key: &ObjectKey) -> bool {
        self.held().contains_key(key.as_str())
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.held().values().map(|(n, _)| n).sum()
    }

    /// Keys held, oldest name first (segments of an interview upload in order).
    pub fn keys(&self) -> Vec<ObjectKey> {
        self.held()
            .keys()
            .filter_map(|k| ObjectKey::parse(k).ok())
            .collect()
    }

    pub fn get(&self, key: &ObjectKey) -> Result<Vec<u8>, StoreError> {
        self.files.get(key)
    }

    pub fn get_range(&self, key: &ObjectKey, offset: u64, len: u64) -> Result<Vec<u8>, StoreError> {
        self.files.get_range(key, offset, len)
    }

    pub fn get_tags(&self, key: &ObjectKey) -> Result<serde_json::Value, StoreError> {
        self.files.get_tags(key)
    }

    /// Removes the spooled copy if the file still holds exactly `uploaded`: confirmed in S3.
    /// Returns false if a newer copy came meanwhile (it will be uploaded next). The file on
    /// disk is compared, not what this process remembers, since another process may have
    /// written it.
    pub fn release_if_unchanged(
        &self,
        key: &ObjectKey,
        uploaded: &[u8],
    ) -> Result<bool, StoreError> {
        let mut held = self.held();
        let on_disk = match self.files.get(key) {
            Ok(b) => b,
            Err(StoreError::NotFound { .. }) => {
                held.remove(key.as_str());
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        if sha256(&on_disk) != sha256(uploaded) {
            held.insert(key.to_string(), (on_disk.len() as u64, sha256(&on_disk)));
            return Ok(false);
        }
        self.files.delete(key)?;
        held.remove(key.as_str());
        Ok(true)
    }

    /// Drops one spooled object: it is never uploaded.
    pub fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        let mut held = self.held();
        self.files.delete(key)?;
        held.remove(key.as_str());
        Ok(())
    }

    /// Drops every spooled object under `prefix` (an erased candidate's): never uploaded.
    pub fn erase_prefix(&self, prefix: &str) -> Result<usize, StoreError> {
        let mut held = self.held();
        let n = self.files.erase_prefix(prefix)?;
        held.retain(|k, _| !k.starts_with(prefix));
        Ok(n)
    }

    /// Adds what other processes spooled since this one looked.
    pub fn rescan(&self) -> Result<(), StoreError> {
        let on_disk = self.files.list()?;
        let mut held = self.held();
        for key in on_disk {
            if !held.contains_key(key.as_str()) {
                let bytes = self.files.get(&key)?;
                held.insert(key.to_string(), (bytes.len() as u64, sha256(&bytes)));
            }
        }
        Ok(())
    }

    /// The uploader's claim on the spool: one process drains it at a time. `None` while
    /// another process holds it.
    pub fn claim(&self) -> Option<std::fs::File> {
        // Beside the objects folder, not in it: the folder holds spooled objects only.
        let root = self.files.root();
        let dir = root.parent().unwrap_or(root);
        std::fs::create_dir_all(dir).ok()?;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("uploader.lock"))
            .ok()?;
        f.try_lock().ok()?;
        Some(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CandidateId, InterviewId, RegionId};
    use crate::seal::{CandidateKey, ObjectIdentity, ObjectKind};

    fn sealed(text: &[u8]) -> SealedObject {
        let id = ObjectIdentity {
            kind: ObjectKind::Manifest,
            region: RegionId::parse("jp").unwrap(),
            candidate: CandidateId::new_random(),
            interview: InterviewId::new_random(),
            index: 0,
            key_version: 1,
        };
        crate::seal::seal(
            &CandidateKey::from_bytes([1; 32], 1),
            &id,
            false,
            text.to_vec(),
        )
        .unwrap()
    }

    #[test]
    fn a_spooled_copy_leaves_only_when_the_uploaded_bytes_are_still_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let key = ObjectKey::parse("candidates/c/interviews/i/manifest.krk").unwrap();
        let tags = serde_json::json!({"kind": "manifest"});
        spool.put(&key, &sealed(b"v1"), &tags).unwrap();
        let uploaded = spool.get(&key).unwrap();
        // A newer manifest arrives while v1 is on its way to S3.
        spool.put(&key, &sealed(b"v2"), &tags).unwrap();
        assert!(!spool.release_if_unchanged(&key, &uploaded).unwrap());
        assert!(spool.contains(&key));
        let newest = spool.get(&key).unwrap();
        assert!(spool.release_if_unchanged(&key, &newest).unwrap());
        assert!(!spool.contains(&key));
        assert_eq!(spool.bytes(), 0);
        assert!(spool.get(&key).is_err(), "the file is gone too");
    }

    #[test]
    fn a_restarted_spool_finds_what_the_last_run_left() {
        let dir = tempfile::tempdir().unwrap();
        let key = ObjectKey::parse("candidates/c/interviews/i/segments/00000001.krk").unwrap();
        {
            let spool = Spool::open(dir.path()).unwrap();
            spool
                .put(&key, &sealed(b"segment"), &serde_json::json!({}))
                .unwrap();
        }
        let again = Spool::open(dir.path()).unwrap();
        assert_eq!(again.keys(), vec![key.clone()]);
        assert!(again.bytes() > 0);
    }
}
