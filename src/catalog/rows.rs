//! Rows of the catalog as typed values.

use crate::ids::{CandidateId, CountryCode, InterviewId, RecruiterHandle, RegionId};
use crate::segment::ClusterMark;
use crate::store::ObjectKey;
use crate::vocab::{
    ConsentAction, InterviewState, Item, LegalBasis, MediaKind, Method, OutboxKind, OutboxState,
    ProvisionBasis, Scope,
};

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
    /// The `transfer` consent a provision to another country rested on (APPI Art. 28).
    pub transfer_consent_event_id: Option<String>,
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
    /// Where each cluster or fragment starts in the segment: what a finished recording's
    /// Cues or `sidx` are written from. Empty for the header, and for segments stored before
    /// kiroku kept it.
    pub clusters: Vec<ClusterMark>,
}

/// A scope as its one-string tag form (`share.recording:acme`), as the API has always shown
/// an outbox row's scope.
fn scope_tag<S: serde::Serializer>(scope: &Scope, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(scope)
}

/// A column that holds text it cannot be read back from, as a bad value is reported.
fn corrupt_column(index: usize, what: String) -> crate::sqldb::Error {
    crate::sqldb::Error::FromSqlConversionFailure(
        index,
        crate::sqldb::FromSqlError::Other(format!("not a {what}").into()),
    )
}

pub(super) fn interview_from_row(r: &crate::sqldb::Row) -> crate::sqldb::Result<InterviewRow> {
    Ok(InterviewRow {
        id: r.get(0)?,
        candidate: r.get(1)?,
        recruiter: r.get(2)?,
        job_ref: r.get(3)?,
        region: r.get(4)?,
        content_type: r.get(5)?,
        profile: r.get(6)?,
        state: r.get(7)?,
        key_version: r.get(8)?,
        created_at: r.get(9)?,
        ended_at: r.get(10)?,
        bytes_in: r.get::<_, i64>(11)? as u64,
        end_reason: r.get(12)?,
    })
}

pub(super) fn segment_from_row(r: &crate::sqldb::Row) -> crate::sqldb::Result<SegmentRow> {
    let commitment: String = r.get(10)?;
    let tags: String = r.get(11)?;
    Ok(SegmentRow {
        interview: r.get(0)?,
        index: r.get(1)?,
        object_key: r.get(2)?,
        media_kind: r.get(3)?,
        plain_len: r.get::<_, i64>(4)? as u64,
        sealed_len: r.get::<_, i64>(5)? as u64,
        start_ns: r.get::<_, i64>(6)? as u64,
        end_ns: r.get::<_, i64>(7)? as u64,
        starts_on_keyframe: r.get(8)?,
        is_final: r.get(9)?,
        commitment: hex::decode(&commitment)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| corrupt_column(10, "segment commitment".into()))?,
        tags: serde_json::from_str(&tags)
            .map_err(|e| corrupt_column(11, format!("tags object: {e}")))?,
        stored_at: r.get(12)?,
        clusters: match r.get::<_, Option<String>>(13)? {
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| corrupt_column(13, format!("cluster index: {e}")))?,
            None => Vec::new(),
        },
    })
}

/// A provision record from `SELECT {PROVISION_COLUMNS}` (release.rs's column order).
pub(super) fn provision_from_row(r: &crate::sqldb::Row) -> crate::sqldb::Result<ProvisionRow> {
    Ok(ProvisionRow {
        id: r.get(0)?,
        at: r.get(1)?,
        recipient: r.get(2)?,
        candidate: r.get(3)?,
        interview: r.get(4)?,
        item: r.get(5)?,
        segments: r.get(6)?,
        byte_range: r.get(7)?,
        basis: r.get(8)?,
        consent_event_id: r.get(9)?,
        legal_basis: r.get(10)?,
        reference: r.get(11)?,
        keep_until: r.get(12)?,
        transfer_consent_event_id: r.get(13)?,
    })
}

/// A delivery from `SELECT {OUTBOX_COLUMNS}` (release.rs's column order).
pub(super) fn outbox_from_row(r: &crate::sqldb::Row) -> crate::sqldb::Result<OutboxRow> {
    Ok(OutboxRow {
        id: r.get(0)?,
        recruiter: r.get(1)?,
        kind: r.get(2)?,
        candidate: r.get(3)?,
        interview: r.get(4)?,
        scope: r.get(5)?,
        state: r.get(6)?,
        attempts: r.get(7)?,
        next_at: r.get(8)?,
        last_error: r.get(9)?,
        created_at: r.get(10)?,
        done_at: r.get(11)?,
    })
}
