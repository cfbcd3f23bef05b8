//! Finishing a recording when its capture ends (finished, cut short, or sealed by crash
//! recovery): the finished header and trailer ([`crate::segment::finish`]) written from the
//! live header and the catalog's cluster index, each sealed as its own object kind and stored
//! beside the segments. The final manifest lists them with their commitments, so they are
//! verified like every segment; release and export then serve
//! `finished header | media segments | trailer`.
//!
//! Finishing never costs a recording: when it cannot be done (an empty recording, segments
//! stored before kiroku kept a cluster index, a store that fails) the manifest lists no
//! finished record and the recording is served as it was recorded.

use serde::{Deserialize, Serialize};

use super::{finished_identity, segment_identity};
use crate::catalog::{InterviewRow, SegmentRow};
use crate::seal::{self, CandidateKey, ObjectKind, SealError};
use crate::segment::{Container, FinishError, MediaSpan};
use crate::store::{ObjectKey, Store, StoreError};
use crate::vocab::MediaKind;

/// A finished recording's ends as the manifest lists them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FinishedRecord {
    pub header: FinishedObject,
    pub trailer: Option<FinishedObject>,
    /// The duration the header declares (the end of the last frame), in nanoseconds.
    pub duration_ns: u64,
    /// Cue points or `sidx` references written.
    pub seek_points: usize,
}

/// One sealed object of a finished recording.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FinishedObject {
    pub plain_len: u64,
    pub sealed_len: u64,
    /// Hex of the object's key commitment.
    pub commitment: String,
}

/// The objects finishing adds to a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishedPart {
    /// Served in place of segment 0.
    Header,
    /// Served after the last segment (Matroska's Cues).
    Trailer,
}

impl FinishedPart {
    pub fn kind(self) -> ObjectKind {
        match self {
            FinishedPart::Header => ObjectKind::FinishedHeader,
            FinishedPart::Trailer => ObjectKind::FinishedTrailer,
        }
    }

    /// Where it is stored, beside the interview's segments.
    pub fn key(self, row: &InterviewRow) -> ObjectKey {
        match self {
            FinishedPart::Header => ObjectKey::finished_header(&row.candidate, &row.id),
            FinishedPart::Trailer => ObjectKey::finished_trailer(&row.candidate, &row.id),
        }
    }

    /// Its name in errors (`header`, `trailer`).
    pub fn name(self) -> &'static str {
        match self {
            FinishedPart::Header => "header",
            FinishedPart::Trailer => "trailer",
        }
    }
}

/// Why a recording could not be finished.
#[derive(Debug, thiserror::Error)]
pub enum FinishWriteError {
    #[error("the live header fails to open: {0}")]
    Header(String),
    #[error(transparent)]
    Finish(#[from] FinishError),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Writes the finished header and trailer of `row`'s recording, whose catalogued `segments`
/// are all stored, in the container of `content_type` (the recording's output type), from
/// `live_header` (segment 0's plaintext, which capture keeps in memory) or, when that is not
/// at hand (crash recovery), from segment 0 read back. `None` when there is nothing to
/// finish: no media segment, or an unknown container.
pub fn write_finished(
    store: &Store,
    key: &CandidateKey,
    row: &InterviewRow,
    segments: &[SegmentRow],
    content_type: &str,
    live_header: Option<&[u8]>,
) -> Result<Option<FinishedRecord>, FinishWriteError> {
    let Some(container) = Container::of(content_type) else {
        return Ok(None);
    };
    let Some((first, media)) = segments.split_first() else {
        return Ok(None);
    };
    if first.media_kind != MediaKind::Header || media.is_empty() {
        return Ok(None);
    }
    let live = match live_header {
        Some(h) => h.to_vec(),
        None => read_live_header(store, key, row, first)?,
    };
    let spans: Vec<MediaSpan> = media
        .iter()
        .map(|s| MediaSpan {
            len: s.plain_len,
            clusters: &s.clusters,
            starts_on_keyframe: s.starts_on_keyframe,
        })
        .collect();
    let duration_ns = media.iter().map(|s| s.end_ns).max().unwrap_or(0);
    let ends = crate::segment::finish(container, &live, &spans, duration_ns)?;
    let header = put(store, key, row, FinishedPart::Header, ends.header)?;
    let trailer = ends
        .trailer
        .map(|t| put(store, key, row, FinishedPart::Trailer, t))
        .transpose()?;
    Ok(Some(FinishedRecord {
        header,
        trailer,
        duration_ns,
        seek_points: ends.seek_points,
    }))
}

/// Segment 0, opened and checked against the commitment the catalog holds.
fn read_live_header(
    store: &Store,
    key: &CandidateKey,
    row: &InterviewRow,
    first: &SegmentRow,
) -> Result<Vec<u8>, FinishWriteError> {
    let sealed = store.get(&first.object_key)?;
    let opened = seal::open(key, &segment_identity(row, 0), &sealed)
        .map_err(|e| FinishWriteError::Header(e.to_string()))?;
    if opened.commitment != first.commitment {
        return Err(FinishWriteError::Header(
            "it is not the segment the catalog lists".into(),
        ));
    }
    Ok(opened.plaintext)
}

fn put(
    store: &Store,
    key: &CandidateKey,
    row: &InterviewRow,
    part: FinishedPart,
    plain: Vec<u8>,
) -> Result<FinishedObject, FinishWriteError> {
    let sealed = seal::seal(key, &finished_identity(row, part.kind()), false, plain)?;
    // Pseudonymous ids and the object's kind only, as beside every other object.
    let tags = serde_json::json!({
        "kiroku": 1,
        "kind": format!("finished_{}", part.name()),
        "candidate": row.candidate.to_string(),
        "interview": row.id.to_string(),
        "region": row.region.to_string(),
        "key_version": row.key_version,
    });
    store.put(&part.key(row), &sealed, &tags)?;
    Ok(FinishedObject {
        plain_len: sealed.plain_len(),
        sealed_len: sealed.len(),
        commitment: hex::encode(sealed.commitment()),
    })
}
