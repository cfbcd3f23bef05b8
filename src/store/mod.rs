//! Object stores: where sealed objects live, one store per region. The store sees sealed bytes
//! and their tags only; it accepts nothing but a [`SealedObject`], so plaintext cannot reach it.
//!
//! Object keys carry pseudonymous ids only:
//! `candidates/<candidate>/interviews/<interview>/<name>`. Tags are written beside each object
//! as `<key>.tags.json`, so an operator holding only the store can read them.

mod local;
mod s3;
mod spool;

pub use local::LocalStore;
pub use s3::{
    CheckError as S3CheckError, Recovered, S3Store, TagSupport, metadata as s3_metadata,
    standalone_client,
};
pub use spool::Spool;

use crate::ids::{CandidateId, InterviewId};
use crate::seal::SealedObject;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object {key} not found")]
    NotFound { key: String },
    #[error("store I/O on {key}: {source}")]
    Io { key: String, source: std::io::Error },
    #[error("invalid object key {0}")]
    BadKey(String),
    #[error("object store unavailable: {0}")]
    Unavailable(String),
    #[error(
        "region {region}: the local spool holds {held} bytes, over its limit of {limit}; new interviews wait until the bucket takes them"
    )]
    SpoolFull {
        region: String,
        held: u64,
        limit: u64,
    },
}

/// Where an object lives inside its region's store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct ObjectKey(String);

impl ObjectKey {
    pub fn segment(c: &CandidateId, i: &InterviewId, index: u32) -> ObjectKey {
        ObjectKey(format!(
            "candidates/{c}/interviews/{i}/segments/{index:08}.krk"
        ))
    }
    /// The folder every object of one candidate lives under (erasure removes it whole).
    pub fn candidate_prefix(c: &CandidateId) -> String {
        format!("candidates/{c}/")
    }
    pub fn manifest(c: &CandidateId, i: &InterviewId) -> ObjectKey {
        ObjectKey(format!("candidates/{c}/interviews/{i}/manifest.krk"))
    }
    /// A finished recording's header, served in place of segment 0.
    pub fn finished_header(c: &CandidateId, i: &InterviewId) -> ObjectKey {
        ObjectKey(format!("candidates/{c}/interviews/{i}/finished/header.krk"))
    }
    /// What follows a finished recording's last segment (Matroska's Cues).
    pub fn finished_trailer(c: &CandidateId, i: &InterviewId) -> ObjectKey {
        ObjectKey(format!(
            "candidates/{c}/interviews/{i}/finished/trailer.krk"
        ))
    }
    /// An analysis object: `analysis/<analyzer>/<%08d segment | interview>.<ext>.krk`.
    pub fn analysis(
        c: &CandidateId,
        i: &InterviewId,
        analyzer: &str,
        segment: Option<u32>,
        ext: &str,
    ) -> ObjectKey {
        let name = segment.map_or("interview".to_string(), |s| format!("{s:08}"));
        ObjectKey(format!(
            "candidates/{c}/interviews/{i}/analysis/{analyzer}/{name}.{ext}.krk"
        ))
    }
    /// Re-reads a key from the catalog, refusing anything that could leave the store's folder.
    pub fn parse(s: &str) -> Result<ObjectKey, StoreError> {
        let ok = !s.is_empty()
            && s.split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..")
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
        if ok {
            Ok(ObjectKey(s.to_owned()))
        } else {
            Err(StoreError::BadKey(s.chars().take(80).collect()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A region's store. One variant per backend, the same keys and sealed bytes on both.
pub enum Store {
    Local(LocalStore),
    S3(std::sync::Arc<S3Store>),
}

impl Store {
    /// Stores an object and its tags durably; when this returns Ok the object survives a crash.
    pub fn put(
        &self,
        key: &ObjectKey,
        object: &SealedObject,
        tags: &serde_json::Value,
    ) -> Result<(), StoreError> {
        match self {
            Store::Local(s) => s.put(key, object, tags),
            Store::S3(s) => s.put(key, object, tags),
        }
    }
    pub fn get(&self, key: &ObjectKey) -> Result<Vec<u8>, StoreError> {
        match self {
            Store::Local(s) => s.get(key),
            Store::S3(s) => s.get(key),
        }
    }
    /// `len` bytes of an object from `offset` (fewer only if the object is shorter).
    pub fn get_range(&self, key: &ObjectKey, offset: u64, len: u64) -> Result<Vec<u8>, StoreError> {
        match self {
            Store::Local(s) => s.get_range(key, offset, len),
            Store::S3(s) => s.get_range(key, offset, len),
        }
    }
    pub fn get_tags(&self, key: &ObjectKey) -> Result<serde_json::Value, StoreError> {
        match self {
            Store::Local(s) => s.get_tags(key),
            Store::S3(s) => s.get_tags(key),
        }
    }
    /// Deletes one object (and its spooled copy); a missing one is not an error.
    pub fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        match self {
            Store::Local(s) => s.delete(key),
            Store::S3(s) => s.delete(key),
        }
    }
    /// Deletes every object of a candidate's (segments, manifests, analysis, renditions),
    /// spooled copies included; returns how many were deleted. Idempotent.
    pub fn erase_candidate(&self, c: &CandidateId) -> Result<usize, StoreError> {
        let prefix = ObjectKey::candidate_prefix(c);
        match self {
            Store::Local(s) => s.erase_prefix(&prefix),
            Store::S3(s) => s.erase_prefix(&prefix),
        }
    }
    /// Whether the region takes new interviews (an S3 region refuses them while its spool is
    /// over its limit).
    pub fn accepting(&self) -> Result<(), StoreError> {
        match self {
            Store::Local(_) => Ok(()),
            Store::S3(s) => s.accepting(),
        }
    }
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Local(_) => "local",
            Store::S3(_) => "s3",
        }
    }
}
