//! Recordings: an interview's sealed objects and the one road from them to plaintext.
//!
//! - `identity`: the identity each sealed object of an interview is sealed under.
//! - `manifest`: the sealed, ordered list of an interview's segments.
//! - `verify` ([`VerifiedRecording`]): the verification export and release share: the
//!   manifest opened, complete and checked against the catalog, then every segment checked
//!   against it as it is opened.
//! - `playback` ([`Playback`]): which browsers may not play a recording as recorded.
//!
//! [`rebuild`] and [`export`] open every segment before a byte is written, and the first one
//! that fails is named.

mod finished;
mod identity;
mod manifest;
mod playback;
mod verify;

use std::io::Write;
use std::path::Path;

pub use finished::{
    FinishWriteError, FinishedObject, FinishedPart, FinishedRecord, write_finished,
};
pub use identity::{finished_identity, output_identity, segment_identity};
pub use manifest::{Manifest, ManifestEntry, ManifestWriteError};
pub use playback::{Browser, MayNotPlay, Playback, playback};
pub use verify::{
    Part, PartSource, VerifiedRecording, check_against_manifest, open_output, store_and_key,
};

use crate::app::{KeyLookupError, Kiroku};
use crate::catalog::{CatalogError, InterviewRow};
use crate::ids::InterviewId;

/// Why a recording (or an analysis output) could not be opened, or its export written.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("unknown interview")]
    UnknownInterview,
    #[error("the interview is still being captured")]
    StillCapturing,
    #[error("the candidate's data was erased at their request")]
    CandidateErased,
    #[error("the recording was deleted when its retention ran out")]
    Expired,
    #[error("the interview has no stored segments")]
    Empty,
    #[error("the interview's region or the candidate's key is gone")]
    KeyGone,
    #[error("segment {index} fails to open: {why}")]
    Segment { index: u32, why: String },
    #[error("the finished recording's {object} fails to open: {why}")]
    Finished { object: &'static str, why: String },
    #[error("the manifest fails to open: {0}")]
    Manifest(String),
    #[error("the manifest and the catalog disagree: {0}")]
    Mismatch(String),
    #[error("{analyzer} output: {why}")]
    AnalysisOutput { analyzer: String, why: String },
    #[error("output {path}: {source}")]
    Output {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The key could not be looked up: a fault of this system, not of the recording.
    #[error("the interview's key could not be looked up: {0}")]
    KeyLookup(#[from] KeyLookupError),
}

impl RecordingError {
    /// True when the stored objects failed verification (as opposed to a missing interview,
    /// or a catalog, key lookup or output failure).
    pub fn is_unverifiable(&self) -> bool {
        matches!(
            self,
            RecordingError::KeyGone
                | RecordingError::Segment { .. }
                | RecordingError::Finished { .. }
                | RecordingError::Manifest(_)
                | RecordingError::Mismatch(_)
                | RecordingError::AnalysisOutput { .. }
        )
    }
}

/// A verified recording in memory: its content type and bytes.
pub struct Recording {
    pub content_type: String,
    pub bytes: Vec<u8>,
    pub segments: u32,
}

/// Opens and verifies every segment of an ended interview, in order.
pub fn rebuild(app: &Kiroku, id: &InterviewId) -> Result<Recording, RecordingError> {
    let row = app
        .catalog
        .interview(id)?
        .ok_or(RecordingError::UnknownInterview)?;
    if !row.state.is_ended() {
        return Err(RecordingError::StillCapturing);
    }
    let content_type = content_type(app, &row);
    let (verified, store) = VerifiedRecording::open(app, row)?;
    let mut bytes = Vec::with_capacity(verified.plain_len() as usize);
    for i in 0..verified.parts().len() {
        bytes.extend_from_slice(&verified.open_part(store, i)?);
    }
    Ok(Recording {
        content_type,
        bytes,
        segments: verified.segments().len() as u32,
    })
}

/// The content type the interview's recording is served and exported as (its profile's).
pub fn content_type(app: &Kiroku, row: &InterviewRow) -> String {
    app.profiles
        .by_name(&row.profile)
        .map(|p| p.output_content_type.clone())
        .unwrap_or_else(|| "application/octet-stream".into())
}

/// What the interview's status says about playing its recording: its content type, codecs
/// (empty until the first media segment is stored) and the browsers that may not play it.
pub fn playback_of(app: &Kiroku, row: &InterviewRow) -> Result<Playback, CatalogError> {
    Ok(playback(
        &content_type(app, row),
        &app.catalog.codecs(&row.id)?,
    ))
}

/// Rebuilds and writes the recording to `out` atomically: the file appears whole or not at all.
pub fn export(app: &Kiroku, id: &InterviewId, out: &Path) -> Result<Recording, RecordingError> {
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
    // Plaintext left kiroku's seal on the operator's say: recorded like a release.
    if let Some(row) = app.catalog.interview(id)? {
        app.audit.record_or_warn(
            crate::audit::Event::RecordingExported {
                candidate: row.candidate,
                interview: *id,
                segments: rec.segments,
                bytes: rec.bytes.len() as u64,
            },
            &crate::audit::Actor::Operator,
        );
    }
    Ok(rec)
}
