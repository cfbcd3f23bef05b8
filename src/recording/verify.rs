//! The one road from sealed objects to plaintext, for export and release alike.
//!
//! [`VerifiedRecording::verify`] opens the sealed manifest with the interview's key, requires it
//! sealed as complete, and checks it against the catalog's segment rows. Only then is a
//! segment opened, through the verified recording: whole ([`VerifiedRecording::open_segment`],
//! for export) or only the chunks a byte range needs ([`VerifiedRecording::open_range`], for
//! release). Either way the segment must carry the commitment the manifest lists, and the
//! final marker exactly where the recording ends. [`open_output`] does the same for one
//! analysis output against the commitment the catalog holds.
//!
//! What is served is the recording's [`Part`]s: its segments as recorded, or, once the
//! manifest lists a finished record, the finished header in place of segment 0, the media
//! segments, and the trailer. A finished header or trailer opens only under its own kind and
//! with the commitment the manifest lists, like a segment.

use crate::app::Kiroku;
use crate::catalog::{AnalysisRow, InterviewRow, SegmentRow};
use crate::seal::{self, CandidateKey, ChunkOpener, HEADER_LEN, ObjectIdentity, ObjectKind};
use crate::store::{ObjectKey, Store};

use super::finished::{FinishedObject, FinishedPart, FinishedRecord};
use super::{Manifest, RecordingError, finished_identity, output_identity, segment_identity};

/// A recording whose manifest opened, is complete, and agrees with the catalog.
pub struct VerifiedRecording {
    row: InterviewRow,
    key: CandidateKey,
    segments: Vec<SegmentRow>,
    /// Capture ended as `finished`: the last segment must then carry the final marker.
    finished: bool,
    /// The finished header and trailer the manifest lists, if it lists them.
    finished_record: Option<FinishedRecord>,
    parts: Vec<Part>,
}

/// Where one part of a served recording comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartSource {
    Segment(u32),
    Finished(FinishedPart),
}

/// One part of a served recording, in order: served whole, they are the recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub source: PartSource,
    pub plain_len: u64,
}

/// A sealed object of the recording: where it is, what it must prove on opening.
struct Expected<'a> {
    object: ObjectKey,
    identity: ObjectIdentity,
    plain_len: u64,
    check: Check<'a>,
}

/// What an opened object must carry besides its identity.
enum Check<'a> {
    /// The manifest's commitment and the final marker rule.
    Segment(&'a SegmentRow),
    /// The commitment the manifest's finished record lists; never the final marker.
    Finished(&'a FinishedObject),
}

/// The store an interview's objects live in and the key they are sealed under.
pub fn store_and_key<'a>(
    app: &'a Kiroku,
    row: &InterviewRow,
) -> Result<(&'a Store, CandidateKey), RecordingError> {
    if app.catalog.erased_at(&row.candidate)?.is_some() {
        return Err(RecordingError::CandidateErased);
    }
    if app.catalog.recording_expired_at(&row.id)?.is_some() {
        return Err(RecordingError::Expired);
    }
    let (region, key) = app.interview_key(row)?.ok_or(RecordingError::KeyGone)?;
    Ok((&region.store, key))
}

impl VerifiedRecording {
    /// Looks up the interview's store, key and segment rows, and verifies them.
    pub fn open(
        app: &Kiroku,
        row: InterviewRow,
    ) -> Result<(VerifiedRecording, &Store), RecordingError> {
        let (store, key) = store_and_key(app, &row)?;
        let segments = app.catalog.segments(&row.id)?;
        Ok((Self::verify(store, key, row, segments)?, store))
    }

    /// Opens the interview's manifest from `store`, requires it complete, and checks it
    /// against the catalog's `segments`.
    pub fn verify(
        store: &Store,
        key: CandidateKey,
        row: InterviewRow,
        segments: Vec<SegmentRow>,
    ) -> Result<VerifiedRecording, RecordingError> {
        let sealed = store
            .get(&ObjectKey::manifest(&row.candidate, &row.id))
            .map_err(|e| RecordingError::Manifest(e.to_string()))?;
        let manifest = Manifest::open(&key, &row, &sealed)
            .map_err(|e| RecordingError::Manifest(e.to_string()))?;
        if !manifest.complete {
            return Err(RecordingError::Manifest(
                "the manifest was never sealed as complete".into(),
            ));
        }
        check_against_manifest(&manifest, &segments)?;
        if segments.is_empty() {
            return Err(RecordingError::Empty);
        }
        let as_recorded = |s: &SegmentRow| Part {
            source: PartSource::Segment(s.index),
            plain_len: s.plain_len,
        };
        let parts = match &manifest.finished {
            Some(f) => std::iter::once(Part {
                source: PartSource::Finished(FinishedPart::Header),
                plain_len: f.header.plain_len,
            })
            .chain(segments[1..].iter().map(as_recorded))
            .chain(f.trailer.as_ref().map(|t| Part {
                source: PartSource::Finished(FinishedPart::Trailer),
                plain_len: t.plain_len,
            }))
            .collect(),
            None => segments.iter().map(as_recorded).collect(),
        };
        Ok(VerifiedRecording {
            finished: manifest.end.as_deref() == Some("finished"),
            finished_record: manifest.finished,
            parts,
            row,
            key,
            segments,
        })
    }

    /// What is served, in order: the finished header, media segments and trailer, or the
    /// segments as recorded when the recording was not finished.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The segment part `i` stands for in provision records and audit entries: a finished
    /// header for segment 0, whose place it takes, a trailer for the last segment.
    pub fn segment_of(&self, i: usize) -> u32 {
        match self.parts.get(i).map(|p| p.source) {
            Some(PartSource::Segment(index)) => index,
            Some(PartSource::Finished(FinishedPart::Header)) => 0,
            _ => self.segments.len().saturating_sub(1) as u32,
        }
    }

    /// The finished record the manifest lists (duration, seek points), if any.
    pub fn finished_record(&self) -> Option<&FinishedRecord> {
        self.finished_record.as_ref()
    }

    /// Opens part `i` whole from `store`.
    pub fn open_part(&self, store: &Store, i: usize) -> Result<Vec<u8>, RecordingError> {
        let e = self.expected(i)?;
        let fail = |why: String| self.failure(i, why);
        let sealed = store.get(&e.object).map_err(|x| fail(x.to_string()))?;
        let opened =
            seal::open(&self.key, &e.identity, &sealed).map_err(|x| fail(x.to_string()))?;
        self.check(&e.check, &opened.commitment, opened.is_final)
            .map_err(fail)?;
        Ok(opened.plaintext)
    }

    /// Opens `len` bytes from `offset` of part `i`'s plaintext, reading from `store` only the
    /// header and the chunks the range needs. Returns the plaintext chunk by chunk.
    pub fn open_part_range(
        &self,
        store: &Store,
        i: usize,
        offset: u64,
        len: u64,
    ) -> Result<Vec<Vec<u8>>, RecordingError> {
        let e = self.expected(i)?;
        let fail = |why: String| self.failure(i, why);
        let header = store
            .get_range(&e.object, 0, HEADER_LEN as u64)
            .map_err(|x| fail(x.to_string()))?;
        let opener = ChunkOpener::new(&self.key, &e.identity, &header, e.plain_len)
            .map_err(|x| fail(x.to_string()))?;
        self.check(&e.check, opener.commitment(), opener.is_final())
            .map_err(fail)?;
        let Some(range) = opener.range(offset, len) else {
            return Ok(Vec::new());
        };
        let (at, span) = range.sealed_span();
        let stored = store
            .get_range(&e.object, at, span)
            .map_err(|x| fail(x.to_string()))?;
        if stored.len() as u64 != span {
            return Err(fail(
                "the stored object is shorter than the catalog says".into(),
            ));
        }
        opener
            .open_range(&range, &stored)
            .map_err(|x| fail(x.to_string()))
    }

    /// Where part `i` is and what it must prove.
    fn expected<'a>(&'a self, i: usize) -> Result<Expected<'a>, RecordingError> {
        let part = self.parts.get(i).ok_or_else(|| RecordingError::Segment {
            index: i as u32,
            why: "the recording has no such part".into(),
        })?;
        match part.source {
            PartSource::Segment(index) => {
                let seg = self.segment(index)?;
                Ok(Expected {
                    object: seg.object_key.clone(),
                    identity: segment_identity(&self.row, index),
                    plain_len: seg.plain_len,
                    check: Check::Segment(seg),
                })
            }
            PartSource::Finished(which) => {
                let record = self.finished_record.as_ref();
                let object = match which {
                    FinishedPart::Header => record.map(|r| &r.header),
                    FinishedPart::Trailer => record.and_then(|r| r.trailer.as_ref()),
                }
                .ok_or_else(|| self.failure(i, "the manifest lists no such object".into()))?;
                Ok(Expected {
                    object: which.key(&self.row),
                    identity: finished_identity(&self.row, which.kind()),
                    plain_len: object.plain_len,
                    check: Check::Finished(object),
                })
            }
        }
    }

    /// The error naming part `i`: its segment, or the finished object it is.
    fn failure(&self, i: usize, why: String) -> RecordingError {
        match self.parts.get(i).map(|p| p.source) {
            Some(PartSource::Finished(which)) => RecordingError::Finished {
                object: which.name(),
                why,
            },
            Some(PartSource::Segment(index)) => RecordingError::Segment { index, why },
            None => RecordingError::Segment {
                index: i as u32,
                why,
            },
        }
    }

    fn check(&self, check: &Check, commitment: &[u8; 32], is_final: bool) -> Result<(), String> {
        match check {
            Check::Segment(seg) => self.check_marks(seg, commitment, is_final),
            Check::Finished(object) => {
                if object.commitment != hex::encode(commitment) {
                    return Err(
                        "it is not the object the manifest lists (commitment differs)".into(),
                    );
                }
                if is_final {
                    return Err(
                        "it is marked final, which a finished header or trailer never is".into(),
                    );
                }
                Ok(())
            }
        }
    }

    /// The candidate key the recording opens with (for its analysis outputs).
    pub fn key(&self) -> &CandidateKey {
        &self.key
    }

    pub fn row(&self) -> &InterviewRow {
        &self.row
    }

    /// The segments, in order, as the manifest and the catalog agree they are.
    pub fn segments(&self) -> &[SegmentRow] {
        &self.segments
    }

    /// Plaintext length of the whole recording as served (every part).
    pub fn plain_len(&self) -> u64 {
        self.parts.iter().map(|p| p.plain_len).sum()
    }

    fn segment(&self, index: u32) -> Result<&SegmentRow, RecordingError> {
        self.segments
            .get(index as usize)
            .ok_or_else(|| RecordingError::Segment {
                index,
                why: "the recording has no such segment".into(),
            })
    }

    /// The marks an opened segment must carry: the manifest's commitment, and the final
    /// marker on the last segment of a finished recording and nowhere before it.
    fn check_marks(
        &self,
        seg: &SegmentRow,
        commitment: &[u8; 32],
        is_final: bool,
    ) -> Result<(), String> {
        if *commitment != seg.commitment {
            return Err("it is not the segment the manifest lists (commitment differs)".into());
        }
        let last = seg.index as usize + 1 == self.segments.len();
        if is_final && !last {
            return Err("it is marked final but segments follow it".into());
        }
        if last && self.finished && !is_final {
            return Err("the recording finished but its last segment is not marked final".into());
        }
        Ok(())
    }
}

/// Opens one analysis output of `row` from `store`; it must be the analyzer's output the
/// catalog lists (same analyzer, segment and commitment).
pub fn open_output(
    store: &Store,
    key: &CandidateKey,
    row: &InterviewRow,
    output: &AnalysisRow,
) -> Result<Vec<u8>, RecordingError> {
    let fail = |why: String| RecordingError::AnalysisOutput {
        analyzer: output.analyzer.clone(),
        why,
    };
    let object = output
        .object_key
        .as_ref()
        .ok_or_else(|| fail("the catalog lists no object for it".into()))?;
    let sealed = store.get(object).map_err(|e| fail(e.to_string()))?;
    let kind = ObjectKind::Analysis {
        analyzer: output.analyzer.clone(),
    };
    let opened = seal::open(key, &output_identity(row, kind, output.segment), &sealed)
        .map_err(|e| fail(e.to_string()))?;
    if output.commitment.as_deref() != Some(hex::encode(opened.commitment).as_str()) {
        return Err(fail("it is not the output the catalog lists".into()));
    }
    Ok(opened.plaintext)
}

/// The manifest and the catalog list the same segments, in order, with the same commitments.
pub fn check_against_manifest(m: &Manifest, rows: &[SegmentRow]) -> Result<(), RecordingError> {
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
        if e.commitment != hex::encode(r.commitment) || e.object_key != r.object_key.as_str() {
            return Err(RecordingError::Mismatch(format!(
                "segment {i} differs between manifest and catalog"
            )));
        }
    }
    Ok(())
}
