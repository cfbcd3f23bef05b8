//! Rows of the catalog as typed values.

use crate::ids::{CandidateId, CountryCode, InterviewId, RecruiterHandle, RegionId};

use super::CatalogError;

#[derive(Debug, Clone)]
pub struct CandidateRow {
    pub id: CandidateId,
    pub home_country: CountryCode,
    pub created_at: String,
}

/// One append-only consent event.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConsentEventRow {
    pub id: String,
    #[serde(skip)]
    pub candidate: CandidateId,
    /// `grant` or `withdraw`.
    pub action: String,
    pub scope: String,
    pub recipient: Option<String>,
    pub country: Option<String>,
    pub at: String,
}

/// Where an interview's capture stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InterviewState {
    /// Created; waiting for its one stream.
    Created,
    /// A stream is being captured.
    Capturing,
    /// The stream ended and every segment is stored.
    Finished,
    /// Capture stopped early (consent withdrawn, a limit reached, bad media, a lost client);
    /// the segments stored before stay recoverable.
    Stopped,
}

impl InterviewState {
    pub fn as_str(&self) -> &'static str {
        match self {
            InterviewState::Created => "created",
            InterviewState::Capturing => "capturing",
            InterviewState::Finished => "finished",
            InterviewState::Stopped => "stopped",
        }
    }
    fn parse(s: &str) -> Option<InterviewState> {
        [
            InterviewState::Created,
            InterviewState::Capturing,
            InterviewState::Finished,
            InterviewState::Stopped,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
    /// Capture is over, one way or another.
    pub fn is_ended(&self) -> bool {
        matches!(self, InterviewState::Finished | InterviewState::Stopped)
    }
}

#[derive(Debug, Clone)]
pub struct InterviewRow {
    pub id: InterviewId,
    pub candidate: CandidateId,
    pub recruiter: RecruiterHandle,
    pub job_ref: Option<String>,
    pub region: RegionId,
    pub content_type: String,
    pub profile: String,
    pub state: InterviewState,
    pub key_version: u32,
    pub created_at: String,
    pub ended_at: Option<String>,
    pub bytes_in: u64,
    pub end_reason: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SegmentRow {
    pub interview: InterviewId,
    pub index: u32,
    pub object_key: String,
    pub media_kind: String,
    pub plain_len: u64,
    pub sealed_len: u64,
    pub start_ns: u64,
    pub end_ns: u64,
    pub starts_on_keyframe: bool,
    pub is_final: bool,
    pub commitment: [u8; 32],
    /// The tags stored beside the object, as JSON.
    pub tags: serde_json::Value,
    pub stored_at: String,
}

fn corrupt(what: impl std::fmt::Display) -> CatalogError {
    CatalogError::Corrupt(what.to_string())
}

pub(super) fn interview_from_row(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<Result<InterviewRow, CatalogError>> {
    let id: String = r.get(0)?;
    let cand: String = r.get(1)?;
    let recruiter: String = r.get(2)?;
    let region: String = r.get(4)?;
    let state: String = r.get(7)?;
    let (job_ref, content_type, profile, key_version, created_at, ended_at, bytes_in, end_reason) = (
        r.get(3)?,
        r.get(5)?,
        r.get(6)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get::<_, i64>(11)?,
        r.get(12)?,
    );
    Ok((|| {
        Ok(InterviewRow {
            id: InterviewId::parse(&id).map_err(corrupt)?,
            candidate: CandidateId::parse(&cand).map_err(corrupt)?,
            recruiter: RecruiterHandle::parse(&recruiter).map_err(corrupt)?,
            job_ref,
            region: RegionId::parse(&region).map_err(corrupt)?,
            content_type,
            profile,
            state: InterviewState::parse(&state)
                .ok_or_else(|| corrupt(format!("interview state {state}")))?,
            key_version,
            created_at,
            ended_at,
            bytes_in: bytes_in as u64,
            end_reason,
        })
    })())
}

pub(super) fn segment_from_row(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<Result<SegmentRow, CatalogError>> {
    let interview: String = r.get(0)?;
    let commitment: String = r.get(10)?;
    let tags: String = r.get(11)?;
    let (
        index,
        object_key,
        media_kind,
        plain_len,
        sealed_len,
        start_ns,
        end_ns,
        keyframe,
        is_final,
        stored_at,
    ) = (
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get::<_, i64>(4)?,
        r.get::<_, i64>(5)?,
        r.get::<_, i64>(6)?,
        r.get::<_, i64>(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(12)?,
    );
    Ok((|| {
        let commitment: [u8; 32] = hex::decode(&commitment)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| corrupt("segment commitment"))?;
        Ok(SegmentRow {
            interview: InterviewId::parse(&interview).map_err(corrupt)?,
            index,
            object_key,
            media_kind,
            plain_len: plain_len as u64,
            sealed_len: sealed_len as u64,
            start_ns: start_ns as u64,
            end_ns: end_ns as u64,
            starts_on_keyframe: keyframe,
            is_final,
            commitment,
            tags: serde_json::from_str(&tags).map_err(corrupt)?,
            stored_at,
        })
    })())
}
