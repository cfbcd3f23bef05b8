//! Release: the only road from sealed bytes to a recipient. Every function here takes, by
//! value, a [`Proof`] from the decision point ([`crate::consent::decision`]) typed by the item
//! it allows, writes the provision record APPI Art. 29 asks for before the first byte leaves,
//! and asks the decision point again before each segment, so a withdrawal stops a download
//! under way at the next segment.
//!
//! A recording is served as the concatenation of its parts (exactly what `kiroku recording
//! export` writes): the finished header, the media segments and the trailer, or the segments as
//! recorded if it was never finished. It goes through the same verification as export
//! ([`VerifiedRecording`]): the sealed manifest is checked first, and every opened part must
//! carry the commitment the manifest lists. A byte range opens only the parts it touches, and
//! of those only the 64 KiB chunks it touches ([`crate::seal::ChunkRange`]).

pub mod range;

use std::sync::Arc;

pub use range::{ByteRange, RangeError};

use crate::app::{KeyLookupError, Kiroku};
use crate::audit::{Actor, Event};
use crate::catalog::{CatalogError, ProvisionRow};
use crate::consent::decision::{Allows, Analysis, Recording};
use crate::consent::{Basis, ConsentError, Proof};
use crate::recording::{RecordingError, VerifiedRecording};
use crate::vocab::{AnalysisStatus, OutputFormat, ProvisionBasis};

/// Why a release could not go ahead or was cut short.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error(transparent)]
    Range(#[from] RangeError),
    #[error("the interview has no analysis yet")]
    NoAnalysis,
    #[error("the interview has no stored segments")]
    Empty,
    #[error("the consent this release rests on was withdrawn; the release stopped")]
    Withdrawn,
    #[error("the recording cannot be verified: {0}")]
    Unverifiable(RecordingError),
    #[error("the recipient went away")]
    RecipientGone,
    /// The interview's key could not be looked up: a fault here, not in the recording.
    #[error("the interview's key could not be looked up: {0}")]
    KeyLookup(KeyLookupError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Consent(#[from] ConsentError),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

impl ReleaseError {
    pub fn code(&self) -> &'static str {
        match self {
            ReleaseError::Range(RangeError::Malformed) => "range_malformed",
            ReleaseError::Range(RangeError::MultipleRanges) => "multiple_ranges_unsupported",
            ReleaseError::Range(RangeError::Unsatisfiable { .. }) => "range_not_satisfiable",
            ReleaseError::NoAnalysis => "no_analysis",
            ReleaseError::Empty => "no_segments",
            ReleaseError::Withdrawn => "share_consent_withdrawn",
            ReleaseError::RecipientGone => "recipient_gone",
            ReleaseError::Unverifiable(_) => "recording_unverifiable",
            ReleaseError::KeyLookup(_)
            | ReleaseError::Catalog(_)
            | ReleaseError::Consent(_)
            | ReleaseError::Audit(_) => "internal",
        }
    }
}

/// Sorts what the shared verification found: an empty recording, a fault of this system
/// (catalog, key lookup), or a recording that does not verify.
impl From<RecordingError> for ReleaseError {
    fn from(e: RecordingError) -> ReleaseError {
        match e {
            RecordingError::Empty => ReleaseError::Empty,
            RecordingError::Catalog(e) => ReleaseError::Catalog(e),
            RecordingError::KeyLookup(e) => ReleaseError::KeyLookup(e),
            other => ReleaseError::Unverifiable(other),
        }
    }
}

/// One part's share of a release: `len` bytes from `offset` of its plaintext.
#[derive(Debug, Clone, Copy)]
struct Piece {
    part: usize,
    offset: u64,
    len: u64,
}

/// A recording release, checked and recorded, ready to stream.
pub struct RecordingRelease {
    pub content_type: String,
    /// Length of the whole recording.
    pub total_len: u64,
    /// The range served, if the request named one.
    pub range: Option<ByteRange>,
    pub provision_id: String,
    proof: Proof<Recording>,
    recording: VerifiedRecording,
    pieces: Vec<Piece>,
    /// The piece [`RecordingRelease::next_piece`] opens next, and the bytes handed out so far.
    next: usize,
    sent: u64,
}

impl RecordingRelease {
    /// Bytes this release sends.
    pub fn body_len(&self) -> u64 {
        self.range.map_or(self.total_len, |r| r.len())
    }
}

/// Verifies the recording, resolves the range to segments, and writes the provision record.
pub fn prepare_recording(
    app: &Arc<Kiroku>,
    proof: Proof<Recording>,
    range_header: Option<&str>,
) -> Result<RecordingRelease, ReleaseError> {
    let row = app
        .catalog
        .interview(proof.interview())?
        .ok_or(ReleaseError::Unverifiable(RecordingError::UnknownInterview))?;
    let content_type = crate::recording::content_type(app, &row);
    let (recording, _) = VerifiedRecording::open(app, row)?;
    let total_len = recording.plain_len();
    let range = range::parse(range_header, total_len)?;
    let pieces = match range {
        Some(r) => pieces(&recording, r.start, r.end),
        None => pieces(&recording, 0, total_len.saturating_sub(1)),
    };
    let seg_list = match (pieces.first(), pieces.last()) {
        (Some(a), Some(b)) => format!(
            "{}-{}",
            recording.segment_of(a.part),
            recording.segment_of(b.part)
        ),
        _ => String::new(),
    };
    let byte_range = range.map(|r| format!("{}-{}", r.start, r.end));
    let provision_id = record_provision(app, &proof, &seg_list, byte_range.as_deref())?;
    Ok(RecordingRelease {
        content_type,
        total_len,
        range,
        provision_id,
        proof,
        recording,
        pieces,
        next: 0,
        sent: 0,
    })
}

/// The parts bytes `from..=to` of the recording fall in, and each one's share.
fn pieces(recording: &VerifiedRecording, from: u64, to: u64) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut at = 0u64;
    for (i, p) in recording.parts().iter().enumerate() {
        let (part_start, part_end) = (at, at + p.plain_len);
        at = part_end;
        if p.plain_len == 0 || part_end <= from || part_start > to {
            continue;
        }
        let offset = from.saturating_sub(part_start);
        let last = (to + 1).min(part_end) - part_start;
        pieces.push(Piece {
            part: i,
            offset,
            len: last - offset,
        });
    }
    pieces
}

/// Streams a prepared release into `sink` (blocking), piece by piece; `sink` returns false when
/// the recipient is gone. Before each segment the decision point is asked again.
pub fn stream_recording(
    app: &Arc<Kiroku>,
    mut release: RecordingRelease,
    mut sink: impl FnMut(Vec<u8>) -> bool,
) -> Result<u64, ReleaseError> {
    while let Some(parts) = release.next_piece(app)? {
        for part in parts {
            if !sink(part) {
                return Err(ReleaseError::RecipientGone);
            }
        }
    }
    Ok(release.sent)
}

impl RecordingRelease {
    /// The next segment's share of the release (blocking, one segment's work), or `None` after
    /// the last. The decision point is asked again first; a withdrawal ends the release here.
    /// For callers that must not hold a thread for the whole release (the HTTP edge).
    pub fn next_piece(&mut self, app: &Arc<Kiroku>) -> Result<Option<Vec<Vec<u8>>>, ReleaseError> {
        let Some(piece) = self.pieces.get(self.next) else {
            return Ok(None);
        };
        let row = self.recording.row();
        let store = &app
            .region(&row.region)
            .ok_or(ReleaseError::Unverifiable(RecordingError::KeyGone))?
            .store;
        if !self.proof.still_stands(&app.catalog)? {
            app.audit.record(
                Event::ReleaseInterrupted {
                    provision: self.provision_id.clone(),
                    interview: row.id,
                    candidate: row.candidate,
                    recipient: self.proof.recipient().into(),
                    segment: self.recording.segment_of(piece.part),
                    bytes_sent: self.sent,
                },
                &Actor::System,
            )?;
            return Err(ReleaseError::Withdrawn);
        }
        let parts = self
            .recording
            .open_part_range(store, piece.part, piece.offset, piece.len)?;
        self.next += 1;
        self.sent += parts.iter().map(|p| p.len() as u64).sum::<u64>();
        Ok(Some(parts))
    }
}

/// An analysis release: every analyzer's report for the whole interview and per segment,
/// opened and checked against the commitments the catalog holds. The provision record is
/// written before anything is returned. WAV renditions are inputs for analyzers, not released.
pub fn release_analysis(
    app: &Arc<Kiroku>,
    proof: Proof<Analysis>,
) -> Result<(serde_json::Value, String), ReleaseError> {
    let row = app
        .catalog
        .interview(proof.interview())?
        .ok_or(ReleaseError::Unverifiable(RecordingError::UnknownInterview))?;
    let outputs: Vec<_> = app
        .catalog
        .analysis_outputs(&row.id)?
        .into_iter()
        .filter(|o| o.kind == OutputFormat::Json && o.status == AnalysisStatus::Ok)
        .collect();
    if !outputs.iter().any(|o| o.segment.is_none()) {
        return Err(ReleaseError::NoAnalysis);
    }
    let (store, key) = crate::recording::store_and_key(app, &row)?;
    let mut analyzers = serde_json::Map::new();
    let mut segments: Vec<u32> = Vec::new();
    for o in &outputs {
        let plain = crate::recording::open_output(store, &key, &row, o)?;
        let report: serde_json::Value = serde_json::from_slice(&plain).map_err(|e| {
            ReleaseError::Unverifiable(RecordingError::AnalysisOutput {
                analyzer: o.analyzer.clone(),
                why: e.to_string(),
            })
        })?;
        let entry = analyzers
            .entry(o.analyzer.clone())
            .or_insert_with(|| serde_json::json!({"interview": null, "segments": []}));
        match o.segment {
            None => entry["interview"] = report,
            Some(n) => {
                segments.push(n);
                if let Some(list) = entry["segments"].as_array_mut() {
                    list.push(serde_json::json!({"segment": n, "report": report}));
                }
            }
        }
    }
    let seg_list = match (segments.iter().min(), segments.iter().max()) {
        (Some(a), Some(b)) => format!("{a}-{b}"),
        _ => String::new(),
    };
    // Asked again right before anything leaves: `analyze` and `share.analysis` may have been
    // withdrawn while the outputs were opened.
    if !proof.still_stands(&app.catalog)? {
        return Err(ReleaseError::Withdrawn);
    }
    let provision = record_provision(app, &proof, &seg_list, None)?;
    Ok((
        serde_json::json!({"interview_id": row.id, "analyzers": analyzers}),
        provision,
    ))
}

/// Writes the provision record (APPI Art. 29) and its audit entry; returns the record's id.
fn record_provision<I: Allows>(
    app: &Kiroku,
    proof: &Proof<I>,
    segments: &str,
    byte_range: Option<&str>,
) -> Result<String, ReleaseError> {
    let (basis, consent_event_id, legal_basis, reference) = match proof.basis() {
        Basis::Consent {
            consent_event_id, ..
        } => (
            ProvisionBasis::Consent,
            Some(consent_event_id.clone()),
            None,
            None,
        ),
        Basis::LegalException {
            legal_basis,
            reference,
        } => (
            ProvisionBasis::LegalException,
            None,
            Some(*legal_basis),
            Some(reference.clone()),
        ),
    };
    let keep_days = app.config.release.provision_retention_days as i64;
    let row = ProvisionRow {
        id: format!("pv_{}", uuid::Uuid::new_v4().simple()),
        at: crate::util::now_rfc3339(),
        recipient: proof.recipient().to_string(),
        candidate: *proof.candidate(),
        interview: *proof.interview(),
        item: proof.item(),
        segments: segments.into(),
        byte_range: byte_range.map(str::to_owned),
        basis,
        consent_event_id,
        transfer_consent_event_id: match proof.basis() {
            Basis::Consent {
                transfer_consent_event_id,
                ..
            } => transfer_consent_event_id.clone(),
            Basis::LegalException { .. } => None,
        },
        legal_basis,
        reference,
        keep_until: crate::util::now_unix() + keep_days * 86_400,
    };
    app.catalog.insert_provision(&row)?;
    let actor = match proof.basis() {
        Basis::Consent { .. } => Actor::Recruiter(proof.recipient().to_string()),
        Basis::LegalException { .. } => Actor::Operator,
    };
    app.audit.record(
        Event::ReleaseProvided {
            provision: row.id.clone(),
            candidate: row.candidate,
            interview: row.interview,
            recipient: row.recipient.clone(),
            item: row.item,
            segments: row.segments.clone(),
            byte_range: row.byte_range.clone(),
            basis,
            consent_event: row.consent_event_id.clone(),
            legal_basis: row.legal_basis,
        },
        &actor,
    )?;
    Ok(row.id)
}

/// Deletes provision records past their keeping time, and says so in the audit log.
pub fn purge_expired_provisions(app: &Kiroku) -> Result<usize, ReleaseError> {
    let n = app.catalog.purge_provisions(crate::util::now_unix())?;
    if n > 0 {
        app.audit
            .record(Event::ProvisionsPurged { count: n }, &Actor::System)?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::CatalogError;

    #[test]
    fn a_catalog_failure_during_a_key_lookup_is_internal_not_unverifiable() {
        let lookup = RecordingError::KeyLookup(KeyLookupError::Catalog(CatalogError::Corrupt(
            "wrapped key".into(),
        )));
        assert!(!lookup.is_unverifiable());
        let e = ReleaseError::from(lookup);
        assert!(matches!(e, ReleaseError::KeyLookup(_)), "{e:?}");
        assert_eq!(e.code(), "internal");
        let e = ReleaseError::from(RecordingError::Catalog(CatalogError::Corrupt("x".into())));
        assert_eq!(e.code(), "internal");
    }

    #[test]
    fn a_recording_that_fails_verification_is_unverifiable_and_an_empty_one_has_no_segments() {
        let bad = RecordingError::Segment {
            index: 2,
            why: "chunk 0 failed authentication".into(),
        };
        assert!(bad.is_unverifiable());
        assert_eq!(ReleaseError::from(bad).code(), "recording_unverifiable");
        assert_eq!(
            ReleaseError::from(RecordingError::KeyGone).code(),
            "recording_unverifiable"
        );
        assert_eq!(
            ReleaseError::from(RecordingError::Empty).code(),
            "no_segments"
        );
    }
}
