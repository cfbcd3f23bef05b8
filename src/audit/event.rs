//! The compliance schema: every kind of entry the audit log holds, with the fields it carries,
//! in one enum. An entry's `event` is the variant's name below and its `data` the variant's
//! fields; pseudonymous ids only, never a candidate's external reference.
//!
//! Decisions and their reasons ([`Event::ReleaseAllowed`]'s `basis`, `release.refused`'s
//! `refusal`) are recorded as the decision point serialises them; the shapes are documented
//! on [`crate::consent::Basis`] and [`crate::consent::Refusal`].

use serde::Serialize;
use serde_json::Value;

use crate::catalog::InterviewState;
use crate::ids::{CandidateId, CountryCode, InterviewId, RecruiterHandle, RegionId};
use crate::vocab::{
    Item, LegalBasis, Method, OutboxKind, ProvisionBasis, RightsRequestKind, Scope, SessionKind,
};

/// One auditable thing that decided or moved personal data.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", content = "data")]
pub enum Event {
    // ── candidates and consent ───────────────────────────────────────────────────────────
    #[serde(rename = "candidate.registered")]
    CandidateRegistered {
        candidate: CandidateId,
        home_country: CountryCode,
    },
    /// A candidate erased at their request: keys destroyed in every region, objects deleted,
    /// recipients told. Counts and pseudonymous ids only.
    #[serde(rename = "candidate.erased")]
    CandidateErased {
        candidate: CandidateId,
        interviews: Vec<InterviewId>,
        keys_destroyed: usize,
        objects_deleted: usize,
        segments: usize,
        analysis_outputs: usize,
        download_links: usize,
        deliveries_cancelled: Vec<String>,
        recipients_told: Vec<String>,
    },
    /// Everything kept of a candidate exported for them (disclosure, portability).
    #[serde(rename = "candidate.exported")]
    CandidateExported {
        candidate: CandidateId,
        interviews: usize,
        /// Encrypted to the requester (age), or written in the clear at the operator's say.
        encrypted: bool,
    },
    /// A region's key epoch rotated: live candidate keys rewrapped, old epoch keys destroyed.
    #[serde(rename = "keys.rotated")]
    KeysRotated {
        region: RegionId,
        from_epoch: u32,
        to_epoch: u32,
        rewrapped: usize,
        destroyed_epochs: Vec<u32>,
    },
    /// A candidate's key rotated: the new version per region (new interviews use it).
    #[serde(rename = "candidate.key_rotated")]
    CandidateKeyRotated {
        candidate: CandidateId,
        versions: Vec<(RegionId, u32)>,
    },
    /// Data past its retention deleted by a sweep.
    #[serde(rename = "retention.swept")]
    RetentionSwept {
        recordings: Vec<InterviewId>,
        analysis_outputs: usize,
        objects_deleted: usize,
    },
    /// A candidate's profile corrected: the fields' names, never a value.
    #[serde(rename = "candidate.corrected")]
    CandidateCorrected {
        candidate: CandidateId,
        fields: Vec<&'static str>,
    },
    /// Use and/or provision suspended at the candidate's request: the withdrawals it made.
    #[serde(rename = "candidate.suspended")]
    CandidateSuspended {
        candidate: CandidateId,
        #[serde(rename = "use")]
        use_: bool,
        provision: bool,
        withdrawals: Vec<String>,
    },
    #[serde(rename = "notice.registered")]
    NoticeRegistered {
        notice: String,
        language: String,
        text_sha256: String,
    },
    #[serde(rename = "consent.granted")]
    ConsentGranted(ConsentChange),
    #[serde(rename = "consent.withdrawn")]
    ConsentWithdrawn(ConsentChange),

    // ── capture ──────────────────────────────────────────────────────────────────────────
    #[serde(rename = "interview.created")]
    InterviewCreated {
        interview: InterviewId,
        candidate: CandidateId,
        recruiter: RecruiterHandle,
        region: RegionId,
        /// `home_country`, or `transfer_consent:<consent id>`.
        placement: String,
    },
    #[serde(rename = "capture.started")]
    CaptureStarted {
        interview: InterviewId,
        candidate: CandidateId,
    },
    #[serde(rename = "capture.ended")]
    CaptureEnded {
        interview: InterviewId,
        candidate: CandidateId,
        state: InterviewState,
        /// `finished`, or the code of why capture stopped.
        reason: &'static str,
        segments: usize,
    },
    /// A request's handler panicked: the request ended with 500, the process served on.
    #[serde(rename = "request.panicked")]
    RequestPanicked {
        method: String,
        /// The route's template (`/v1/interviews/{id}`), never the path itself.
        route: String,
    },
    /// The finished header and trailer of an ended interview's recording were sealed and
    /// stored beside its segments.
    #[serde(rename = "recording.finished")]
    RecordingFinished {
        interview: InterviewId,
        candidate: CandidateId,
        duration_ms: u64,
        seek_points: usize,
        /// Hex commitments of the sealed finished header and trailer.
        header: String,
        trailer: Option<String>,
    },
    #[serde(rename = "segment.stored")]
    SegmentStored {
        interview: InterviewId,
        candidate: CandidateId,
        segment: u32,
        /// Hex SHA-256 commitment of the plain segment.
        commitment: String,
        region: RegionId,
    },

    // ── analysis ─────────────────────────────────────────────────────────────────────────
    #[serde(rename = "analysis.stopped")]
    AnalysisStopped {
        interview: InterviewId,
        candidate: CandidateId,
        /// The segment it stopped before; absent when it stopped before the whole report.
        #[serde(skip_serializing_if = "Option::is_none")]
        segment: Option<u32>,
        reason: AnalysisStop,
    },
    #[serde(rename = "analysis.completed")]
    AnalysisCompleted {
        interview: InterviewId,
        candidate: CandidateId,
        segments: u32,
        analyzer: String,
        version: String,
    },
    #[serde(rename = "analysis.failed")]
    AnalysisFailed {
        interview: InterviewId,
        analyzer: String,
        /// The segment; `null` for the whole-interview output.
        segment: Option<u32>,
    },

    /// A candidate asked the operator for a disclosure or an erasure from their privacy
    /// center.
    #[serde(rename = "candidate.rights_requested")]
    CandidateRightsRequested {
        candidate: CandidateId,
        request: String,
        kind: RightsRequestKind,
    },

    // ── pages ────────────────────────────────────────────────────────────────────────────
    /// A candidate link was issued to a front-end (`candidate_link`), or a page session
    /// opened: a candidate's from their link, a recruiter's or the operator's sign-in.
    #[serde(rename = "session.opened")]
    SessionOpened {
        kind: SessionKind,
        #[serde(skip_serializing_if = "Option::is_none")]
        candidate: Option<CandidateId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        recruiter: Option<RecruiterHandle>,
    },

    // ── recruiters ───────────────────────────────────────────────────────────────────────
    #[serde(rename = "recruiter.added")]
    RecruiterAdded {
        recruiter: RecruiterHandle,
        key_id: String,
        country: CountryCode,
    },
    #[serde(rename = "recruiter.key_rotated")]
    RecruiterKeyRotated {
        recruiter: RecruiterHandle,
        key_id: String,
        revoked: usize,
    },
    /// The recruiter is no longer a recipient: keys, webhook, links and pending deliveries
    /// gone with it.
    #[serde(rename = "recruiter.revoked")]
    RecruiterRevoked {
        recruiter: RecruiterHandle,
        keys_revoked: usize,
        deliveries_cancelled: Vec<String>,
    },
    #[serde(rename = "recruiter.webhook_set")]
    RecruiterWebhookSet {
        recruiter: RecruiterHandle,
        url_sha256: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        previous_url_sha256: Option<String>,
    },
    #[serde(rename = "recruiter.webhook_removed")]
    RecruiterWebhookRemoved {
        recruiter: RecruiterHandle,
        url_sha256: Option<String>,
    },

    // ── release ──────────────────────────────────────────────────────────────────────────
    #[serde(rename = "release.allowed")]
    ReleaseAllowed {
        candidate: CandidateId,
        interview: InterviewId,
        recipient: String,
        item: Item,
        /// Why: the consent event, or the operator's legal basis and reference.
        basis: Value,
    },
    #[serde(rename = "release.refused")]
    ReleaseRefused {
        /// Absent when the interview is not the recipient's (it learns nothing of it).
        #[serde(skip_serializing_if = "Option::is_none")]
        candidate: Option<CandidateId>,
        interview: InterviewId,
        recipient: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        item: Option<Item>,
        /// `{"reason": …}` and the scope it concerns.
        refusal: Value,
    },
    #[serde(rename = "release.legal_exception")]
    ReleaseLegalException {
        candidate: CandidateId,
        interview: InterviewId,
        recipient: String,
        item: Item,
        legal_basis: LegalBasis,
        reference: String,
    },
    /// An operator wrote a recording out in plaintext (`kiroku recording export`).
    #[serde(rename = "recording.exported")]
    RecordingExported {
        candidate: CandidateId,
        interview: InterviewId,
        segments: u32,
        bytes: u64,
    },
    #[serde(rename = "release.provided")]
    ReleaseProvided {
        provision: String,
        candidate: CandidateId,
        interview: InterviewId,
        recipient: String,
        item: Item,
        /// Segment indexes released, `first-last`.
        segments: String,
        byte_range: Option<String>,
        basis: ProvisionBasis,
        consent_event: Option<String>,
        legal_basis: Option<LegalBasis>,
    },
    #[serde(rename = "release.interrupted")]
    ReleaseInterrupted {
        provision: String,
        interview: InterviewId,
        candidate: CandidateId,
        recipient: String,
        /// The segment that was not sent.
        segment: u32,
        bytes_sent: u64,
    },
    #[serde(rename = "provisions.purged")]
    ProvisionsPurged { count: usize },

    // ── push delivery ────────────────────────────────────────────────────────────────────
    /// A withdrawal cancelled deliveries not yet made.
    #[serde(rename = "delivery.cancelled")]
    DeliveriesCancelled {
        deliveries: Vec<String>,
        candidate: CandidateId,
        consent_event: String,
    },
    #[serde(rename = "delivery.delivered")]
    DeliveryDelivered(DeliveryAttempt),
    #[serde(rename = "delivery.retrying")]
    DeliveryRetrying(DeliveryAttempt),
    #[serde(rename = "delivery.failed")]
    DeliveryFailed(DeliveryAttempt),
    /// One delivery found cancelled when its attempt settled.
    #[serde(rename = "delivery.cancelled")]
    DeliveryCancelled(DeliveryAttempt),
}

/// A grant or withdrawal.
#[derive(Debug, Clone, Serialize)]
pub struct ConsentChange {
    pub candidate: CandidateId,
    pub consent_event: String,
    /// Written in its tag form: `record`, `share.recording:acme`, `transfer:US`…
    #[serde(serialize_with = "tag_form")]
    pub scope: Scope,
    pub notice: Option<String>,
    pub method: Option<Method>,
    /// For a withdrawal: the grant it withdraws.
    pub withdraws: Option<String>,
}

/// One settled attempt of a push delivery.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryAttempt {
    pub delivery: String,
    pub kind: OutboxKind,
    pub recipient: RecruiterHandle,
    pub candidate: CandidateId,
    pub interview: Option<InterviewId>,
    pub attempts: u32,
    pub error: Option<String>,
}

/// Why analysis stopped early.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnalysisStop {
    AnalyzeConsentWithdrawn,
}

/// A value written in its one-string `Display` form.
fn tag_form<S: serde::Serializer>(v: &impl std::fmt::Display, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

impl Event {
    /// The entry's `event` and `data`. Every variant is plain fields under a tag, so this
    /// always yields a name; were serialising ever to fail, the entry still records that an
    /// event happened, with the failure as its data, rather than panicking in a request.
    pub(super) fn into_parts(self) -> (String, Value) {
        match serde_json::to_value(&self) {
            Ok(Value::Object(mut m)) => {
                let name = match m.remove("event") {
                    Some(Value::String(s)) => s,
                    _ => "audit.unnamed".to_string(),
                };
                (name, m.remove("data").unwrap_or(Value::Null))
            }
            Ok(other) => ("audit.unnamed".into(), other),
            Err(e) => (
                "audit.unserialisable".into(),
                serde_json::json!({"error": e.to_string()}),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_becomes_its_dotted_name_and_its_fields() {
        let c = CandidateId::from_bytes([3; 16]);
        let (name, data) = Event::CandidateRegistered {
            candidate: c,
            home_country: CountryCode::parse("JP").unwrap(),
        }
        .into_parts();
        assert_eq!(name, "candidate.registered");
        assert_eq!(
            data,
            serde_json::json!({"candidate": c.to_string(), "home_country": "JP"})
        );
    }

    #[test]
    fn an_absent_segment_is_left_out_of_analysis_stopped() {
        let i = InterviewId::from_bytes([1; 16]);
        let c = CandidateId::from_bytes([2; 16]);
        let (name, data) = Event::AnalysisStopped {
            interview: i,
            candidate: c,
            segment: None,
            reason: AnalysisStop::AnalyzeConsentWithdrawn,
        }
        .into_parts();
        assert_eq!(name, "analysis.stopped");
        assert_eq!(
            data,
            serde_json::json!({"interview": i.to_string(), "candidate": c.to_string(), "reason": "analyze_consent_withdrawn"})
        );
    }
}
