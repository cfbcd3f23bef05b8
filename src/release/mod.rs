//! Release: the only road from sealed bytes to a recipient. Every function here takes a
//! [`Proof`] from the decision point ([`crate::consent::decision`]), writes the provision record
//! APPI Art. 29 asks for before the first byte leaves, and asks the decision point again before
//! each segment, so a withdrawal stops a download under way at the next segment.
//!
//! A recording is served as the concatenation of its segments (exactly what `kiroku recording
//! export` writes). A byte range opens only the segments it touches, and of those only the
//! 64 KiB chunks it touches ([`crate::seal::ChunkOpener`]). The sealed manifest is checked
//! first, and every opened segment's commitment must be the one the manifest lists.

pub mod range;

use std::sync::Arc;

pub use range::{ByteRange, RangeError};

use crate::app::{Kiroku, RegionRuntime, StartError};
use crate::audit::Actor;
use crate::catalog::{CatalogError, InterviewRow, ProvisionRow, SegmentRow};
use crate::consent::{Basis, ConsentError, Item, Proof};
use crate::recording::{Manifest, check_against_manifest, segment_identity};
use crate::seal::{CandidateKey, ChunkOpener, HEADER_LEN, SealError};
use crate::store::{ObjectKey, StoreError};

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
    Unverifiable(String),
    #[error("the recipient went away")]
    RecipientGone,
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
            ReleaseError::Catalog(_) | ReleaseError::Consent(_) | ReleaseError::Audit(_) => {
                "internal"
            }
        }
    }
}

impl From<StartError> for ReleaseError {
    fn from(e: StartError) -> ReleaseError {
        ReleaseError::Unverifiable(e.to_string())
    }
}

/// One segment's share of a release: `len` bytes from `offset` of its plaintext.
#[derive(Debug, Clone)]
struct Piece {
    segment: SegmentRow,
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
    proof: Proof,
    row: InterviewRow,
    key: CandidateKey,
    finished: bool,
    segment_count: u32,
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

/// Checks the manifest, resolves the range to segments, and writes the provision record.
pub fn prepare_recording(
    app: &Arc<Kiroku>,
    proof: Proof,
    range_header: Option<&str>,
) -> Result<RecordingRelease, ReleaseError> {
    assert_eq!(
        proof.item(),
        Item::Recording,
        "a recording needs a recording proof"
    );
    let row = app
        .catalog
        .interview(proof.interview())?
        .ok_or_else(|| ReleaseError::Unverifiable("the interview is gone".into()))?;
    let (region, key) = app.interview_key(&row)?.ok_or_else(|| {
        ReleaseError::Unverifiable("the interview's region or the candidate's key is gone".into())
    })?;
    let manifest = Manifest::open(
        &key,
        &row,
        &region
            .store
            .get(&ObjectKey::manifest(&row.candidate, &row.id))
            .map_err(|e| ReleaseError::Unverifiable(format!("manifest: {e}")))?,
    )
    .map_err(|e| ReleaseError::Unverifiable(format!("manifest: {e}")))?;
    if !manifest.complete {
        return Err(ReleaseError::Unverifiable(
            "the manifest was never sealed as complete".into(),
        ));
    }
    let segments = app.catalog.segments(&row.id)?;
    check_against_manifest(&manifest, &segments)
        .map_err(|e| ReleaseError::Unverifiable(e.to_string()))?;
    if segments.is_empty() {
        return Err(ReleaseError::Empty);
    }
    let total_len: u64 = segments.iter().map(|s| s.plain_len).sum();
    let range = range::parse(range_header, total_len)?;
    let (from, to) = range.map_or((0, total_len.saturating_sub(1)), |r| (r.start, r.end));
    let mut pieces = Vec::new();
    let mut at = 0u64;
    for s in &segments {
        let (seg_start, seg_end) = (at, at + s.plain_len);
        at = seg_end;
        if s.plain_len == 0 || seg_end <= from || seg_start > to {
            continue;
        }
        let offset = from.saturating_sub(seg_start);
        let last = (to + 1).min(seg_end) - seg_start;
        pieces.push(Piece {
            segment: s.clone(),
            offset,
            len: last - offset,
        });
    }
    let content_type = app
        .profiles
        .by_name(&row.profile)
        .map(|p| p.output_content_type.clone())
        .unwrap_or_else(|| "application/octet-stream".into());
    let seg_list = match (pieces.first(), pieces.last()) {
        (Some(a), Some(b)) => format!("{}-{}", a.segment.index, b.segment.index),
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
        finished: manifest.end.as_deref() == Some("finished"),
        segment_count: segments.len() as u32,
        row,
        key,
        pieces,
        next: 0,
        sent: 0,
    })
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
        let region = app
            .region(&self.row.region)
            .ok_or_else(|| ReleaseError::Unverifiable("the interview's region is gone".into()))?;
        if !self.proof.still_stands(app)? {
            app.audit.record(
                "release.interrupted",
                &Actor::System,
                serde_json::json!({
                    "provision": self.provision_id,
                    "interview": self.row.id.to_string(),
                    "candidate": self.row.candidate.to_string(),
                    "recipient": self.proof.recipient(),
                    "segment": piece.segment.index,
                    "bytes_sent": self.sent,
                }),
            )?;
            return Err(ReleaseError::Withdrawn);
        }
        let parts = open_piece(region, self, piece)?;
        self.next += 1;
        self.sent += parts.iter().map(|p| p.len() as u64).sum::<u64>();
        Ok(Some(parts))
    }
}

/// Opens only the chunks of one segment that the piece covers.
fn open_piece(
    region: &RegionRuntime,
    release: &RecordingRelease,
    piece: &Piece,
) -> Result<Vec<Vec<u8>>, ReleaseError> {
    let seg = &piece.segment;
    let fail = |why: String| {
        ReleaseError::Unverifiable(format!("segment {} fails to open: {why}", seg.index))
    };
    let object = ObjectKey::parse(&seg.object_key).map_err(|e| fail(e.to_string()))?;
    let header = region
        .store
        .get_range(&object, 0, HEADER_LEN as u64)
        .map_err(|e: StoreError| fail(e.to_string()))?;
    let opener = ChunkOpener::new(
        &release.key,
        &segment_identity(&release.row, seg.index),
        &header,
        seg.plain_len,
    )
    .map_err(|e: SealError| fail(e.to_string()))?;
    if *opener.commitment() != seg.commitment {
        return Err(fail("it is not the segment the manifest lists".into()));
    }
    let is_last = seg.index + 1 == release.segment_count;
    if opener.is_final() && !is_last {
        return Err(fail("it is marked final but segments follow it".into()));
    }
    if is_last && release.finished && !opener.is_final() {
        return Err(fail(
            "the recording finished but its last segment is not marked final".into(),
        ));
    }
    let first = opener.chunk_of(piece.offset);
    let last = opener.chunk_of(piece.offset + piece.len - 1);
    let (span_start, _) = opener.sealed_span(first);
    let (last_start, last_len) = opener.sealed_span(last);
    let bytes = region
        .store
        .get_range(&object, span_start, last_start + last_len - span_start)
        .map_err(|e| fail(e.to_string()))?;
    let mut out = Vec::with_capacity((last - first + 1) as usize);
    let mut at = 0usize;
    for i in first..=last {
        let (_, len) = opener.sealed_span(i);
        let chunk = bytes
            .get(at..at + len as usize)
            .ok_or_else(|| fail("the stored object is shorter than the catalog says".into()))?
            .to_vec();
        at += len as usize;
        let plain = opener
            .open_chunk(i, chunk)
            .map_err(|e| fail(e.to_string()))?;
        let chunk_start = i * crate::seal::CHUNK_SIZE as u64;
        let from = piece.offset.max(chunk_start) - chunk_start;
        let to = (piece.offset + piece.len).min(chunk_start + plain.len() as u64) - chunk_start;
        out.push(plain[from as usize..to as usize].to_vec());
    }
    Ok(out)
}

/// An analysis release: every analyzer's report for the whole interview and per segment,
/// opened and checked against the commitments the catalog holds. The provision record is
/// written before anything is returned. WAV renditions are inputs for analyzers, not released.
pub fn release_analysis(
    app: &Arc<Kiroku>,
    proof: Proof,
) -> Result<(serde_json::Value, String), ReleaseError> {
    assert_eq!(
        proof.item(),
        Item::Analysis,
        "analysis needs an analysis proof"
    );
    let row = app
        .catalog
        .interview(proof.interview())?
        .ok_or_else(|| ReleaseError::Unverifiable("the interview is gone".into()))?;
    let outputs: Vec<_> = app
        .catalog
        .analysis_outputs(&row.id)?
        .into_iter()
        .filter(|o| o.kind == "json" && o.status == "ok")
        .collect();
    if !outputs.iter().any(|o| o.segment.is_none()) {
        return Err(ReleaseError::NoAnalysis);
    }
    let (region, key) = app.interview_key(&row)?.ok_or_else(|| {
        ReleaseError::Unverifiable("the interview's region or the candidate's key is gone".into())
    })?;
    let mut analyzers = serde_json::Map::new();
    let mut segments: Vec<u32> = Vec::new();
    for o in &outputs {
        let fail =
            |why: String| ReleaseError::Unverifiable(format!("{} output: {why}", o.analyzer));
        let object = ObjectKey::parse(o.object_key.as_deref().unwrap_or_default())
            .map_err(|e| fail(e.to_string()))?;
        let sealed = region.store.get(&object).map_err(|e| fail(e.to_string()))?;
        let identity =
            crate::analysis::output_identity(&row, crate::seal::ObjectKind::Analysis, o.segment);
        let opened =
            crate::seal::open(&key, &identity, &sealed).map_err(|e| fail(e.to_string()))?;
        if o.commitment.as_deref() != Some(hex::encode(opened.commitment).as_str()) {
            return Err(fail("it is not the output the catalog lists".into()));
        }
        let report: serde_json::Value =
            serde_json::from_slice(&opened.plaintext).map_err(|e| fail(e.to_string()))?;
        let entry = analyzers
            .entry(o.analyzer.clone())
            .or_insert_with(|| serde_json::json!({"interview": null, "segments": []}));
        match o.segment {
            None => entry["interview"] = report,
            Some(n) => {
                segments.push(n);
                entry["segments"]
                    .as_array_mut()
                    .expect("segments is an array")
                    .push(serde_json::json!({"segment": n, "report": report}));
            }
        }
    }
    let seg_list = match (segments.iter().min(), segments.iter().max()) {
        (Some(a), Some(b)) => format!("{a}-{b}"),
        _ => String::new(),
    };
    let provision = record_provision(app, &proof, &seg_list, None)?;
    Ok((
        serde_json::json!({"interview_id": row.id, "analyzers": analyzers}),
        provision,
    ))
}

/// Writes the provision record (APPI Art. 29) and its audit entry; returns the record's id.
fn record_provision(
    app: &Kiroku,
    proof: &Proof,
    segments: &str,
    byte_range: Option<&str>,
) -> Result<String, ReleaseError> {
    let (basis, consent_event_id, legal_basis, reference) = match proof.basis() {
        Basis::Consent { consent_event_id } => {
            ("consent", Some(consent_event_id.clone()), None, None)
        }
        Basis::LegalException {
            legal_basis,
            reference,
        } => (
            "legal_exception",
            None,
            Some(legal_basis.as_str().to_string()),
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
        item: proof.item().as_str().into(),
        segments: segments.into(),
        byte_range: byte_range.map(str::to_owned),
        basis: basis.into(),
        consent_event_id,
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
        "release.provided",
        &actor,
        serde_json::json!({
            "provision": row.id,
            "candidate": row.candidate.to_string(),
            "interview": row.interview.to_string(),
            "recipient": row.recipient,
            "item": row.item,
            "segments": row.segments,
            "byte_range": row.byte_range,
            "basis": basis,
            "consent_event": row.consent_event_id,
            "legal_basis": row.legal_basis,
        }),
    )?;
    Ok(row.id)
}

/// Deletes provision records past their keeping time, and says so in the audit log.
pub fn purge_expired_provisions(app: &Kiroku) -> Result<usize, ReleaseError> {
    let n = app.catalog.purge_provisions(crate::util::now_unix())?;
    if n > 0 {
        app.audit.record(
            "provisions.purged",
            &Actor::System,
            serde_json::json!({"count": n}),
        )?;
    }
    Ok(n)
}
