//! Recordings: rebuilding an interview's recording from its sealed segments. Every segment is
//! opened and verified against the catalog and the sealed manifest before a byte is written,
//! and the first one that fails is named.

mod manifest;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

pub use manifest::{Manifest, ManifestEntry, ManifestWriteError};

use crate::app::{Kiroku, StartError};
use crate::catalog::{CatalogError, InterviewRow};
use crate::ids::InterviewId;
use crate::seal::{self, ObjectIdentity, ObjectKind, SealError};
use crate::store::{ObjectKey, StoreError};

/// Why a recording could not be rebuilt.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("unknown interview")]
    UnknownInterview,
    #[error("the interview is still being captured")]
    StillCapturing,
    #[error("the interview has no stored segments")]
    Empty,
    #[error("segment {index} fails to open: {why}")]
    Segment { index: u32, why: String },
    #[error("the manifest fails to open: {0}")]
    Manifest(String),
    #[error("the manifest and the catalog disagree: {0}")]
    Mismatch(String),
    #[error("output {path}: {source}")]
    Output {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Keys(#[from] StartError),
}

/// A verified recording in memory: its content type and bytes.
pub struct Recording {
    pub content_type: String,
    pub bytes: Vec<u8>,
    pub segments: u32,
}

/// Opens and verifies every segment of an ended interview, in order.
pub fn rebuild(app: &Arc<Kiroku>, id: &InterviewId) -> Result<Recording, RecordingError> {
    let row = app
        .catalog
        .interview(id)?
        .ok_or(RecordingError::UnknownInterview)?;
    if !row.state.is_ended() {
        return Err(RecordingError::StillCapturing);
    }
    let (region, key) = app.interview_key(&row)?.ok_or_else(|| {
        RecordingError::Manifest("the interview's region or the candidate's key is gone".into())
    })?;
    let manifest_bytes = region
        .store
        .get(&ObjectKey::manifest(&row.candidate, &row.id))
        .map_err(|e| RecordingError::Manifest(e.to_string()))?;
    let manifest = Manifest::open(&key, &row, &manifest_bytes)
        .map_err(|e| RecordingError::Manifest(e.to_string()))?;
    if !manifest.complete {
        return Err(RecordingError::Manifest(
            "the manifest was never sealed as complete".into(),
        ));
    }
    let rows = app.catalog.segments(id)?;
    check_against_manifest(&manifest, &rows)?;
    if rows.is_empty() {
        return Err(RecordingError::Empty);
    }
    let profile = app
        .profiles
        .by_name(&row.profile)
        .map(|p| p.output_content_type.clone());
    let mut bytes = Vec::with_capacity(rows.iter().map(|r| r.plain_len as usize).sum());
    for (entry, seg) in manifest.segments.iter().zip(&rows) {
        let fail = |why: String| RecordingError::Segment {
            index: seg.index,
            why,
        };
        let object = ObjectKey::parse(&seg.object_key).map_err(|e| fail(e.to_string()))?;
        let sealed = region
            .store
            .get(&object)
            .map_err(|e: StoreError| fail(e.to_string()))?;
        let opened = seal::open(&key, &segment_identity(&row, seg.index), &sealed)
            .map_err(|e: SealError| fail(e.to_string()))?;
        if hex::encode(opened.commitment) != entry.commitment {
            return Err(fail(
                "it is not the segment the manifest lists (commitment differs)".into(),
            ));
        }
        let last = seg.index as usize + 1 == rows.len();
        if opened.is_final && !last {
            return Err(fail("it is marked final but segments follow it".into()));
        }
        if last && !opened.is_final && manifest.end.as_deref() == Some("finished") {
            return Err(fail(
                "the recording finished but its last segment is not marked final".into(),
            ));
        }
        bytes.extend_from_slice(&opened.plaintext);
    }
    Ok(Recording {
        content_type: profile.unwrap_or_else(|| "application/octet-stream".into()),
        bytes,
        segments: rows.len() as u32,
    })
}

/// Rebuilds and writes the recording to `out` atomically: the file appears whole or not at all.
pub fn export(
    app: &Arc<Kiroku>,
    id: &InterviewId,
    out: &Path,
) -> Result<Recording, RecordingError> {
    let rec = rebuild(app, id)?;
    let err = |source| RecordingError::Output {
        path: out.display().to_string(),
        source,
    };
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".kiroku-export-{}.tmp",
        uuid::Uuid::new_v4().simple()
    ));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&rec.bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, out)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    Ok(rec)
}

pub fn segment_identity(row: &InterviewRow, index: u32) -> ObjectIdentity {
    ObjectIdentity {
        kind: ObjectKind::Segment,
        region: row.region.clone(),
        candidate: row.candidate,
        interview: row.id,
        index,
        key_version: row.key_version,
    }
}

pub fn check_against_manifest(
    m: &Manifest,
    rows: &[crate::catalog::SegmentRow],
) -> Result<(), RecordingError> {
    if m.segments.len() != rows.len() {
        return Err(RecordingError::Mismatch(format!(
            "the manifest lists {} segments, the catalog {}",
            m.segments.len(),
            rows.len()
        )));
    }
    for (i, (e, r)) in m.segments.iter().zip(rows).enumerate() {
        if e.index != i as u32 || r.index != i as u32 {
            return Err(RecordingError::Mismatch(format!(
                "segment {i} is missing or out of order"
            )));
        }
        if e.commitment != hex::encode(r.commitment) || e.object_key != r.object_key {
            return Err(RecordingError::Mismatch(format!(
                "segment {i} differs between manifest and catalog"
            )));
        }
    }
    Ok(())
}
