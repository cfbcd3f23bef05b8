//! Capture: one interview from its creation to its last acknowledged segment.
//!
//! [`create_interview`] places the interview and hands out its single-use ingest token;
//! [`Capture::start`] checks the `record` consent and starts the profile's pipeline; the
//! capture thread then takes each plain segment, asks the consent gate again, seals it, stores
//! it with its tags, records it in the catalog, rewrites the sealed manifest and only then
//! acknowledges it. A failure after an acknowledgement never touches what was acknowledged.

mod session;
mod tags;

use std::sync::Arc;

pub use session::{Capture, CaptureEvent, CaptureOutcome, Feeder, Pushed, SegmentAck};

/// How a front-end's bytes arrive, which decides the layouts a stream may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// As they are recorded (the WebSocket): only media that can be cut as it arrives.
    Live,
    /// A finished file, sent in one request body or read from disk (`PUT`, `kiroku ingest`):
    /// also a plain MP4 whose index (`moov`) comes last.
    Upload,
}

use crate::app::{KeyLookupError, Kiroku};
use crate::catalog::SegmentRow;
use crate::catalog::{CatalogError, InterviewRow, InterviewState, TokenError};
use crate::consent::ConsentError;
use crate::ids::{CandidateId, InterviewId, RecruiterHandle};
use crate::recording::{FinishedRecord, Manifest, ManifestEntry, write_finished};
use crate::seal::{CandidateKey, SealError};
use crate::segment::SegmentError;
use crate::store::{Store, StoreError};

/// Why an interview could not be created, started or captured to its end.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("unknown candidate")]
    UnknownCandidate,
    #[error("unknown interview")]
    UnknownInterview,
    #[error("no recruiter `{0}` is registered")]
    UnknownRecruiter(String),
    #[error(transparent)]
    Placement(#[from] crate::placement::PlacementError),
    #[error("the candidate has no standing `record` consent")]
    NoRecordConsent,
    #[error("the candidate was erased; capture stopped at the segment boundary")]
    CandidateErased,
    #[error("the candidate withdrew the `record` consent; capture stopped at the segment boundary")]
    ConsentWithdrawn,
    #[error(
        "the candidate withdrew the `transfer:{country}` consent the interview's region rests \
         on; capture stopped at the segment boundary"
    )]
    TransferConsentWithdrawn { country: String },
    #[error("{0}")]
    Token(#[from] TokenError),
    #[error("this interview already has a stream")]
    AlreadyStreamed,
    #[error("too many interviews are being captured right now")]
    TooManyCaptures,
    #[error("the stream is over the limit of {limit} bytes per interview")]
    TooManyBytes { limit: u64 },
    #[error("the stream is over the limit of {limit} s of media per interview")]
    TooLong { limit: u64 },
    #[error("the stream's bitrate is over the limit of {limit} kbit/s")]
    BitrateTooHigh { limit: u64 },
    #[error(
        "a WebSocket message is over the limit of {limit} bytes; send the media in smaller \
         messages (a shorter MediaRecorder timeslice)"
    )]
    MessageTooLarge { limit: u64 },
    #[error("the media stream is truncated: {0}")]
    Truncated(String),
    #[error(
        "this MP4 is not fragmented (its samples are indexed at the end), so it cannot be \
         streamed live; record fragmented MP4 (MediaRecorder does), or upload the finished \
         file with PUT /v1/interviews/{{id}}/media"
    )]
    NotStreamable,
    #[error("the client went away before finishing the stream")]
    ClientGone,
    #[error(transparent)]
    Media(#[from] SegmentError),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Manifest(#[from] crate::recording::ManifestWriteError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Consent(#[from] ConsentError),
    #[error(transparent)]
    Keys(KeyLookupError),
    #[error(transparent)]
    Random(#[from] crate::util::secret::RandomFailed),
}

/// A key lookup that failed in the catalog is a catalog failure (`catalog_failed`), never
/// reported as `sealing_failed`: the operator looks at the database, not at the keys.
impl From<KeyLookupError> for CaptureError {
    fn from(e: KeyLookupError) -> Self {
        match e {
            KeyLookupError::Catalog(c) => CaptureError::Catalog(c),
            other => CaptureError::Keys(other),
        }
    }
}

impl CaptureError {
    /// A short stable code for clients and the catalog's `end_reason`.
    pub fn code(&self) -> &'static str {
        match self {
            CaptureError::UnknownCandidate => "unknown_candidate",
            CaptureError::UnknownInterview => "unknown_interview",
            CaptureError::UnknownRecruiter(_) => "unknown_recruiter",
            CaptureError::Placement(crate::placement::PlacementError::NoAllowedRegion {
                ..
            }) => "no_allowed_region",
            CaptureError::Placement(_) => "placement_failed",
            CaptureError::Store(StoreError::SpoolFull { .. }) => "region_spool_full",
            CaptureError::NoRecordConsent => "no_record_consent",
            CaptureError::CandidateErased => "candidate_erased",
            CaptureError::ConsentWithdrawn => "consent_withdrawn",
            CaptureError::Token(TokenError::Expired) => "ingest_token_expired",
            CaptureError::Token(TokenError::Used) => "ingest_token_used",
            CaptureError::Token(_) => "ingest_token_invalid",
            CaptureError::AlreadyStreamed => "already_streamed",
            CaptureError::TooManyCaptures => "too_many_captures",
            CaptureError::TooManyBytes { .. } => "too_many_bytes",
            CaptureError::TransferConsentWithdrawn { .. } => "transfer_consent_withdrawn",
            CaptureError::MessageTooLarge { .. } => "message_too_large",
            CaptureError::TooLong { .. } => "too_long",
            CaptureError::BitrateTooHigh { .. } => "bitrate_too_high",
            CaptureError::Truncated(_) => "media_truncated",
            CaptureError::NotStreamable => "mp4_not_fragmented",
            CaptureError::ClientGone => "client_gone",
            CaptureError::Media(SegmentError::UnsupportedContentType(_)) => {
                "unsupported_content_type"
            }
            CaptureError::Media(SegmentError::CodecNotAllowed { .. }) => "codec_not_allowed",
            CaptureError::Media(SegmentError::Unreadable(_)) => "media_unreadable",
            CaptureError::Media(SegmentError::BadOffer(_)) => "whip_offer_refused",
            CaptureError::Media(SegmentError::SegmentTooLarge { .. }) => "segment_too_large",
            CaptureError::Media(_) => "media_pipeline_failed",
            CaptureError::Seal(_) | CaptureError::Keys(_) => "sealing_failed",
            CaptureError::Store(_) | CaptureError::Manifest(_) => "store_failed",
            CaptureError::Catalog(_) => "catalog_failed",
            CaptureError::Consent(_) => "consent_check_failed",
            CaptureError::Random(_) => "random_failed",
        }
    }
}

/// Where the WHIP ICE agent gathers, from the operator's `[whip]` config.
fn ice_settings(config: &crate::config::Config) -> crate::segment::IceSettings {
    crate::segment::IceSettings {
        addresses: config.whip.ice_addresses.clone(),
        ports: config.whip.ice_port_min.zip(config.whip.ice_port_max),
    }
}

/// The catalog row of an interview, or `UnknownInterview`.
pub fn interview_row(app: &Kiroku, id: &InterviewId) -> Result<InterviewRow, CaptureError> {
    app.catalog
        .interview(id)?
        .ok_or(CaptureError::UnknownInterview)
}

/// What a front-end gets back when it creates an interview.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CreatedInterview {
    pub interview_id: InterviewId,
    pub region: String,
    pub ingest_token: String,
    /// Unix seconds.
    pub expires_at: i64,
    pub content_type: String,
    /// Reconnects a WebSocket stream whose connection dropped (`?resume=`), within
    /// `resume_grace_seconds`; never spent, valid only for this interview.
    pub resume_token: String,
}

/// Creates an interview for a candidate in the region placement chooses (see
/// [`crate::placement`]) and its single-use ingest token.
/// The content type picks the ingest profile now, so an unsupported one fails here, before any
/// byte is sent.
pub fn create_interview(
    app: &Arc<Kiroku>,
    candidate: &CandidateId,
    recruiter: &RecruiterHandle,
    job_ref: Option<String>,
    content_type: &str,
) -> Result<CreatedInterview, CaptureError> {
    let Some(who) = app.catalog.candidate(candidate)? else {
        return Err(CaptureError::UnknownCandidate);
    };
    if app.catalog.erased_at(candidate)?.is_some() {
        return Err(CaptureError::CandidateErased);
    }
    if !app.catalog.recruiter_exists(recruiter)? {
        return Err(CaptureError::UnknownRecruiter(recruiter.to_string()));
    }
    let profile = app.profiles.for_content_type(content_type)?;
    let policy = crate::placement::Policy {
        preferred: &app.preferred_region(&who.home_country).region.id,
        regions: app
            .regions
            .values()
            .map(|r| (&r.region.id, &r.region.country))
            .collect(),
    };
    let consents = app.ledger().state(candidate)?;
    let placed = crate::placement::place(&policy, &who.home_country, &consents)?;
    let region = app.region(&placed.region).ok_or_else(|| {
        crate::placement::PlacementError::UnknownRegion(placed.region.to_string())
    })?;
    region.store.accepting()?;
    let key = app.candidate_key(candidate, region)?;
    let id = InterviewId::new_random();
    app.catalog.insert_interview(&InterviewRow {
        id,
        candidate: *candidate,
        recruiter: recruiter.clone(),
        job_ref,
        region: region.region.id.clone(),
        content_type: crate::segment::bare_content_type(content_type),
        profile: profile.name.clone(),
        state: InterviewState::Created,
        key_version: key.version(),
        created_at: crate::util::now_rfc3339(),
        ended_at: None,
        bytes_in: 0,
        end_reason: None,
    })?;
    let token = new_token()?;
    let expires_at = crate::util::now_unix() + app.config.ingest_token_ttl_seconds as i64;
    app.catalog
        .insert_ingest_token(&crate::util::secret::token_hash(&token), &id, expires_at)?;
    let resume_token = new_token()?;
    app.catalog
        .insert_resume_token(&id, &crate::util::secret::token_hash(&resume_token))?;
    tracing::info!(interview = %id, candidate = %candidate, region = %region.region.id, profile = %profile.name, "interview created");
    app.audit.record_or_warn(
        crate::audit::Event::InterviewCreated {
            interview: id,
            candidate: *candidate,
            recruiter: recruiter.clone(),
            region: region.region.id.clone(),
            placement: placed.why,
        },
        &crate::audit::Actor::Service,
    );
    Ok(CreatedInterview {
        interview_id: id,
        region: region.region.id.to_string(),
        ingest_token: token,
        expires_at,
        content_type: profile.content_types[0].clone(),
        resume_token,
    })
}

/// Whether `token` is `interview`'s resume credential (compared in constant time).
pub fn resume_token_matches(
    app: &Kiroku,
    interview: &InterviewId,
    token: &str,
) -> Result<bool, CaptureError> {
    Ok(app.catalog.resume_token_hash(interview)?.is_some_and(|h| {
        crate::util::secret::same_secret(&h, &crate::util::secret::token_hash(token))
    }))
}

/// The stream itself declares its content type (a PUT's `Content-Type`): it replaces the one
/// given at creation and picks the profile, as long as the interview has not streamed yet.
pub fn declare_content_type(
    app: &Kiroku,
    interview: &InterviewId,
    content_type: &str,
) -> Result<(), CaptureError> {
    let profile = app.profiles.for_content_type(content_type)?;
    let bare = crate::segment::bare_content_type(content_type);
    if !app
        .catalog
        .redeclare_content_type(interview, &bare, &profile.name)?
    {
        return Err(CaptureError::AlreadyStreamed);
    }
    Ok(())
}

/// Spends an ingest token for the interview.
pub fn spend_ingest_token(
    app: &Kiroku,
    interview: &InterviewId,
    token: &str,
) -> Result<(), CaptureError> {
    ingest_token(app, interview, token, true)
}

/// Whether the ingest token would be accepted, without spending it: a WebSocket is checked
/// before its upgrade, so a refusal is a plain HTTP answer, and spends the token after.
pub fn check_ingest_token(
    app: &Kiroku,
    interview: &InterviewId,
    token: &str,
) -> Result<(), CaptureError> {
    ingest_token(app, interview, token, false)
}

/// Whether the candidate's `record` consent stands, for a check before a WebSocket upgrade
/// (capture checks it again when it starts, and at every segment).
pub fn check_record_consent(app: &Kiroku, interview: &InterviewId) -> Result<(), CaptureError> {
    let row = interview_row(app, interview)?;
    if app.catalog.erased_at(&row.candidate)?.is_some() {
        Err(CaptureError::CandidateErased)
    } else if app.ledger().allows_record(&row.candidate)? {
        Ok(())
    } else {
        Err(CaptureError::NoRecordConsent)
    }
}

fn ingest_token(
    app: &Kiroku,
    interview: &InterviewId,
    token: &str,
    spend: bool,
) -> Result<(), CaptureError> {
    let row = interview_row(app, interview)?;
    let hash = crate::util::secret::token_hash(token);
    let now = crate::util::now_unix();
    let standing = if spend {
        app.catalog.spend_ingest_token(&hash, interview, now)?
    } else {
        app.catalog.check_ingest_token(&hash, interview, now)?
    };
    match standing {
        Ok(()) => Ok(()),
        // A used token for an interview that is streaming or streamed: say what really happened.
        Err(TokenError::Used) if row.state != InterviewState::Created => {
            Err(CaptureError::AlreadyStreamed)
        }
        Err(e) => Err(CaptureError::Token(e)),
    }
}

/// After a crash or kill: interviews still marked as capturing by this node before its
/// restart, or by any node whose lease on them lapsed (it died), get a final manifest listing
/// the segments the catalog holds (each was durable before it was acknowledged) and are
/// marked stopped, so their recordings can be rebuilt. A capture another live node holds is
/// never touched. `kiroku serve` runs this at start and at every lease renewal.
pub fn recover_interrupted(app: &Arc<Kiroku>) {
    let Ok(found) = app
        .catalog
        .captures_to_recover(app.node(), crate::util::now_unix())
    else {
        return;
    };
    for (id, node) in found {
        // This process's own captures are alive: they renew their lease.
        if app.holds_lease(&id) {
            continue;
        }
        let reason = if node.as_deref() == Some(app.node()) {
            "kiroku_restarted"
        } else {
            "node_lost"
        };
        match recover_one(app, &id, node.as_deref(), reason) {
            Ok(false) => {} // its node renewed or concluded it meanwhile
            Ok(true) => {
                tracing::warn!(interview = %id, reason, "an interrupted capture was stopped; stored segments kept")
            }
            Err(e) => {
                tracing::error!(interview = %id, error = %e, "could not recover an interrupted capture")
            }
        }
    }
}

/// Marks an interrupted capture stopped with `reason`, if it still is interrupted (one
/// conditional statement), with its final manifest; false if it was not.
///
/// The manifest is written first: a node that dies between the two leaves the capture still
/// interrupted, to be recovered again, never one marked stopped without its manifest (which
/// would leave the recording unexportable). Once the stop holds, the recording is finished
/// (its finished header and trailer, from every segment the catalog then lists) and the
/// manifest written again with them: a capture another node still holds is never finished.
fn recover_one(
    app: &Arc<Kiroku>,
    id: &InterviewId,
    held_by: Option<&str>,
    reason: &str,
) -> Result<bool, CaptureError> {
    let row = interview_row(app, id)?;
    let (region, key) = app
        .interview_key(&row)?
        .ok_or(CaptureError::UnknownInterview)?;
    let seal = |segments: &[SegmentRow], finish: bool| {
        let entries = segments.iter().map(ManifestEntry::from_row).collect();
        let mut manifest = Manifest::new(&row, entries, Some(reason.into()));
        if finish {
            manifest.finished = finish_recording(app, &row, &key, &region.store, segments, None);
        }
        manifest.store(&key, &row, &region.store)
    };
    seal(&app.catalog.segments(id)?, false)?;
    let stopped =
        app.catalog
            .stop_interrupted(id, held_by, app.node(), crate::util::now_unix(), reason)?;
    if !stopped {
        return Ok(false);
    }
    seal(&app.catalog.segments(id)?, true)?;
    Ok(true)
}

/// Writes the finished header and trailer of an ended interview's recording beside its
/// segments, for its final manifest to list. `None` when they cannot be written: the recording
/// is then served as recorded, and the manifest is sealed all the same.
fn finish_recording(
    app: &Kiroku,
    row: &InterviewRow,
    key: &CandidateKey,
    store: &Store,
    segments: &[SegmentRow],
    live_header: Option<&[u8]>,
) -> Option<FinishedRecord> {
    let content_type = crate::recording::content_type(app, row);
    match write_finished(store, key, row, segments, &content_type, live_header) {
        Ok(finished) => {
            if let Some(f) = &finished {
                app.audit.record_or_warn(
                    crate::audit::Event::RecordingFinished {
                        interview: row.id,
                        candidate: row.candidate,
                        duration_ms: f.duration_ns / 1_000_000,
                        seek_points: f.seek_points,
                        header: f.header.commitment.clone(),
                        trailer: f.trailer.as_ref().map(|t| t.commitment.clone()),
                    },
                    &crate::audit::Actor::System,
                );
            }
            finished
        }
        Err(e) => {
            tracing::warn!(interview = %row.id, error = %e, "the recording could not be finished; it is served as recorded");
            None
        }
    }
}

fn new_token() -> Result<String, crate::util::secret::RandomFailed> {
    crate::util::secret::random_token(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_catalog_failure_during_key_lookup_is_reported_as_catalog_failed() {
        let e = CaptureError::from(KeyLookupError::Catalog(CatalogError::Corrupt(
            "key row".into(),
        )));
        assert_eq!(e.code(), "catalog_failed");
        let e = CaptureError::from(KeyLookupError::Key(crate::seal::KeyError::Random));
        assert_eq!(e.code(), "sealing_failed");
    }
}
