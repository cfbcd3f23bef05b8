//! The manifest of an interview: the ordered list of its sealed segments with each one's
//! commitment. Sealed like a segment (kind `Manifest`), rewritten every few stored segments
//! during capture, and sealed as final when capture ends (or, after a crash, from the
//! catalog's rows when kiroku restarts). It catches a segment that is missing, duplicated or
//! swapped for another valid one at the level of the whole recording.

use serde::{Deserialize, Serialize};

use super::FinishedRecord;
use crate::catalog::{InterviewRow, SegmentRow};
use crate::ids::{CandidateId, InterviewId};
use crate::seal::{self, CandidateKey, ObjectIdentity, ObjectKind, SealError, SealedObject};
use crate::store::{ObjectKey, Store, StoreError};

/// Why a manifest could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ManifestWriteError {
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub interview: InterviewId,
    pub candidate: CandidateId,
    pub region: String,
    pub key_version: u32,
    pub content_type: String,
    /// Capture is over and no segment will be added.
    pub complete: bool,
    /// How capture ended (`finished`, or the reason it stopped), once complete.
    pub end: Option<String>,
    pub segments: Vec<ManifestEntry>,
    /// The finished recording's header and trailer, when capture has ended and they were
    /// written: the recording is then served as finished header, media segments, trailer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<FinishedRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManifestEntry {
    pub index: u32,
    pub object_key: String,
    pub media_kind: String,
    pub plain_len: u64,
    pub sealed_len: u64,
    pub start_ns: u64,
    pub end_ns: u64,
    pub starts_on_keyframe: bool,
    /// Hex of the segment's key commitment.
    pub commitment: String,
}

impl ManifestEntry {
    pub fn from_row(s: &SegmentRow) -> ManifestEntry {
        ManifestEntry {
            index: s.index,
            object_key: s.object_key.to_string(),
            media_kind: s.media_kind.as_str().into(),
            plain_len: s.plain_len,
            sealed_len: s.sealed_len,
            start_ns: s.start_ns,
            end_ns: s.end_ns,
            starts_on_keyframe: s.starts_on_keyframe,
            commitment: hex::encode(s.commitment),
        }
    }
}

impl Manifest {
    pub fn new(i: &InterviewRow, segments: Vec<ManifestEntry>, end: Option<String>) -> Manifest {
        Manifest {
            interview: i.id,
            candidate: i.candidate,
            region: i.region.to_string(),
            key_version: i.key_version,
            content_type: i.content_type.clone(),
            complete: end.is_some(),
            end,
            segments,
            finished: None,
        }
    }

    pub fn identity(i: &InterviewRow) -> ObjectIdentity {
        ObjectIdentity {
            kind: ObjectKind::Manifest,
            region: i.region.clone(),
            candidate: i.candidate,
            interview: i.id,
            index: 0,
            key_version: i.key_version,
        }
    }

    /// Marks capture as over: no segment will be added.
    pub fn complete_with(&mut self, end: &str) {
        self.complete = true;
        self.end = Some(end.to_string());
    }

    /// Seals the manifest and stores it, with its tags, in the interview's region store.
    pub fn store(
        &self,
        key: &CandidateKey,
        i: &InterviewRow,
        store: &Store,
    ) -> Result<(), ManifestWriteError> {
        let sealed = self.seal(key, i)?;
        store.put(
            &ObjectKey::manifest(&i.candidate, &i.id),
            &sealed,
            &self.tags(),
        )?;
        Ok(())
    }

    /// The tags stored beside the sealed manifest: pseudonymous ids and its state only.
    fn tags(&self) -> serde_json::Value {
        serde_json::json!({
            "kiroku": 1,
            "kind": "manifest",
            "candidate": self.candidate.to_string(),
            "interview": self.interview.to_string(),
            "region": self.region,
            "key_version": self.key_version,
            "complete": self.complete,
            "segments": self.segments.len(),
        })
    }

    pub fn seal(&self, key: &CandidateKey, i: &InterviewRow) -> Result<SealedObject, SealError> {
        let json = serde_json::to_vec(self).expect("manifest serialises");
        seal::seal(key, &Manifest::identity(i), self.complete, json)
    }

    /// Opens a sealed manifest; its final flag must agree with its `complete` field.
    pub fn open(
        key: &CandidateKey,
        i: &InterviewRow,
        sealed: &[u8],
    ) -> Result<Manifest, SealError> {
        let opened = seal::open(key, &Manifest::identity(i), sealed)?;
        let m: Manifest =
            serde_json::from_slice(&opened.plaintext).map_err(|_| SealError::NotSealed)?;
        if m.complete != opened.is_final || m.interview != i.id || m.candidate != i.candidate {
            return Err(SealError::WrongIdentity("manifest contents"));
        }
        Ok(m)
    }
}
