//! Rows of the catalog as typed values.

use crate::ids::{CandidateId, CountryCode, InterviewId, RecruiterHandle, RegionId};
use crate::store::ObjectKey;
use crate::vocab::{
    ConsentAction, InterviewState, Item, LegalBasis, MediaKind, Method, OutboxKind, OutboxState,
    ProvisionBasis, Scope,
};

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
    pub action: ConsentAction,
    /// Serialised as the three columns `scope`, `recipient` and `country`.
    #[serde(flatten)]
    pub scope: Scope,
    /// RFC 3339 with the zone it was recorded in.
    pub at: String,
    /// The privacy-notice version a grant was given under.
    pub notice_id: Option<String>,
    pub method: Option<Method>,
    /// Where the event came from: the front-end or operator that reported it.
    pub origin: Option<String>,
    /// Language the candidate was addressed in (BCP 47).
    pub language: Option<String>,
    /// For a withdrawal: the grant it withdraws.
    pub withdraws: Option<String>,
    /// For a grant: the signed consent receipt.
    #[serde(skip)]
    pub receipt: Option<String>,
}

#[cfg(test)]
impl ConsentEventRow {
    /// An event with only what the consent rules read (for unit tests of those rules).
    pub fn bare(id: &str, candidate: CandidateId, action: ConsentAction, scope: Scope) -> Self {
        ConsentEventRow {
            id: id.into(),
            candidate,
            action,
            scope,
            at: "2026-11-29T10:00:00+09:00".into(),
            notice_id: None,
            method: None,
            origin: None,
            language: None,
            withdraws: None,
            receipt: None,
        }
    }
}

/// A registered privacy-notice version.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NoticeRow {
    pub id: String,
    pub language: String,
    pub url: String,
    pub text_sha256: String,
    pub registered_at: String,
}

/// One provision of personal data to a third party (APPI Art. 29).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProvisionRow {
    pub id: String,
    pub at: String,
    pub recipient: String,
    pub candidate: CandidateId,
    pub interview: InterviewId,
    pub item: Item,
    /// Segment indexes released, as `first-last`.
    pub segments: String,
    /// Byte range of the item released, `start-end` inclusive, when not the whole item.
    pub byte_range: Option<String>,
    pub basis: ProvisionBasis,
    pub consent_event_id: Option<String>,
    pub legal_basis: Option<LegalBasis>,
    pub reference: Option<String>,
    /// Unix seconds after which the record may be purged.
    pub keep_until: i64,
}

/// A push delivery waiting in (or gone from) the outbox.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutboxRow {
    pub id: String,
    pub recruiter: RecruiterHandle,
    pub kind: OutboxKind,
    pub candidate: CandidateId,
    pub interview: Option<InterviewId>,
    /// The consent scope the delivery rests on (stored as `share.recording:acme`).
    #[serde(serialize_with = "scope_tag")]
    pub scope: Scope,
    pub state: OutboxState,
    pub attempts: u32,
    pub next_at: i64,
    pub last_error: Option<String>,
    pub created_at: String,
    pub done_at: Option<String>,
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
    pub object_key: ObjectKey,
    pub media_kind: MediaKind,
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

/// A scope as its one-string tag form (`share.recording:acme`), as the API has always shown
/// an outbox row's scope.
fn scope_tag<S: serde::Serializer>(scope: &Scope, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(scope)
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
    let (
        job_ref,
        content_type,
        profile,
        state,
        key_version,
        created_at,
        ended_at,
        bytes_in,
        end_reason,
    ) = (
        r.get(3)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
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
            state,
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

/// A provision record from `SELECT {PROVISION_COLUMNS}` (release.rs's column order).
pub(super) fn provision_from_row(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<Result<ProvisionRow, CatalogError>> {
    let candidate: String = r.get(3)?;
    let interview: String = r.get(4)?;
    let (
        id,
        at,
        recipient,
        item,
        segments,
        byte_range,
        basis,
        consent_event_id,
        legal_basis,
        reference,
        keep_until,
    ) = (
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
    );
    Ok((|| {
        Ok(ProvisionRow {
            id,
            at,
            recipient,
            candidate: CandidateId::parse(&candidate).map_err(corrupt)?,
            interview: InterviewId::parse(&interview).map_err(corrupt)?,
            item,
            segments,
            byte_range,
            basis,
            consent_event_id,
            legal_basis,
            reference,
            keep_until,
        })
    })())
}

/// A delivery from `SELECT {OUTBOX_COLUMNS}` (release.rs's column order).
pub(super) fn outbox_from_row(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<Result<OutboxRow, CatalogError>> {
    let recruiter: String = r.get(1)?;
    let candidate: String = r.get(3)?;
    let interview: Option<String> = r.get(4)?;
    let (id, kind, scope, state, attempts, next_at, last_error, created_at, done_at) = (
        r.get(0)?,
        r.get(2)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
    );
    Ok((|| {
        Ok(OutboxRow {
            id,
            recruiter: RecruiterHandle::parse(&recruiter).map_err(corrupt)?,
            kind,
            candidate: CandidateId::parse(&candidate).map_err(corrupt)?,
            interview: interview
                .as_deref()
                .map(InterviewId::parse)
                .transpose()
                .map_err(corrupt)?,
            scope,
            state,
            attempts,
            next_at,
            last_error,
            created_at,
            done_at,
        })
    })())
}
