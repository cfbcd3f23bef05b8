//! Every module's error mapped to an HTTP status and a JSON body, once, here.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::capture::CaptureError;
use crate::catalog::{CatalogError, TokenError};
use crate::consent::{ConsentError, Refusal};
use crate::ids::IdError;
use crate::recording::RecordingError;
use crate::recruiter::RecruiterError;
use crate::release::{RangeError, ReleaseError};
use crate::segment::SegmentError;
use crate::sessions::SessionError;
use crate::subject::SubjectError;

/// An error as the client sees it: status, stable code, message.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// More machine-readable fields for the body (a refusal's scope, say).
    pub details: Option<serde_json::Value>,
    /// For 416: the item's length, sent as `Content-Range: bytes */LEN`.
    pub item_len: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
            item_len: None,
        }
    }
    /// A 500 whose cause goes to the log, not to the client.
    pub fn internal(e: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    }
    /// 503 `shutting_down`: kiroku is stopping, so nothing new starts (the ingest token is not
    /// spent, so the client can `what` again once it is back).
    pub fn shutting_down(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            format!("kiroku is shutting down; {what} again once it is back"),
        )
    }
    pub fn unauthorized(message: &str) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
}

/// Every refusal's body, as the OpenAPI document describes it (each operation lists it as
/// its `4XX` answer).
#[derive(serde::Serialize, utoipa::ToSchema, utoipa::IntoResponses)]
#[response(status = "4XX", description = "refused: `{error, message, details?}`")]
pub struct ErrorBody {
    /// A stable machine-readable code, e.g. `share_consent_withdrawn`.
    pub error: String,
    /// The reason in words.
    pub message: String,
    /// What the refusal carries besides (the scope, the time of a withdrawal, ...).
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, message = %self.message, "request failed");
        }
        let mut body = json!({"error": self.code, "message": self.message});
        if let Some(serde_json::Value::Object(extra)) = self.details {
            for (k, v) in extra {
                body[k] = v;
            }
        }
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(len) = self.item_len
            && let Ok(v) = axum::http::HeaderValue::from_str(&format!("bytes */{len}"))
        {
            resp.headers_mut()
                .insert(axum::http::header::CONTENT_RANGE, v);
        }
        resp
    }
}

/// The status that goes with a capture error.
pub fn capture_status(e: &CaptureError) -> StatusCode {
    use CaptureError::*;
    match e {
        UnknownCandidate | UnknownInterview | UnknownRecruiter(_) => StatusCode::NOT_FOUND,
        NoRecordConsent | ConsentWithdrawn | TransferConsentWithdrawn { .. } => {
            StatusCode::FORBIDDEN
        }
        Token(_) => StatusCode::UNAUTHORIZED,
        AlreadyStreamed => StatusCode::CONFLICT,
        Placement(crate::placement::PlacementError::NoAllowedRegion { .. }) => {
            StatusCode::FORBIDDEN
        }
        Placement(_) => StatusCode::INTERNAL_SERVER_ERROR,
        Store(crate::store::StoreError::SpoolFull { .. }) => StatusCode::SERVICE_UNAVAILABLE,
        TooManyCaptures => StatusCode::TOO_MANY_REQUESTS,
        TooManyBytes { .. } | TooLong { .. } | BitrateTooHigh { .. } | MessageTooLarge { .. } => {
            StatusCode::PAYLOAD_TOO_LARGE
        }
        Truncated(_) | NotStreamable => StatusCode::UNPROCESSABLE_ENTITY,
        ClientGone => StatusCode::BAD_REQUEST,
        Media(SegmentError::UnsupportedContentType(_) | SegmentError::CodecNotAllowed { .. }) => {
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        }
        Media(SegmentError::Unreadable(_)) => StatusCode::UNPROCESSABLE_ENTITY,
        Media(SegmentError::BadOffer(_)) => StatusCode::BAD_REQUEST,
        Media(SegmentError::SegmentTooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
        Consent(ConsentError::Catalog(_) | ConsentError::Audit(_)) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        Consent(ConsentError::UnknownCandidate) => StatusCode::NOT_FOUND,
        Consent(ConsentError::CandidateErased) | CandidateErased => StatusCode::GONE,
        Consent(_) => StatusCode::BAD_REQUEST,
        Media(_) | Seal(_) | Store(_) | Manifest(_) | Catalog(_) | Keys(_) | Random(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

impl From<CaptureError> for ApiError {
    fn from(e: CaptureError) -> ApiError {
        let status = capture_status(&e);
        let message = if status.is_server_error() {
            "internal error; see the server log".to_string()
        } else {
            e.to_string()
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "capture failed");
        }
        ApiError::new(status, e.code(), message)
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> ApiError {
        CaptureError::Token(e).into()
    }
}

impl From<IdError> for ApiError {
    fn from(e: IdError) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_id", e.to_string())
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> ApiError {
        CaptureError::Catalog(e).into()
    }
}

impl From<SegmentError> for ApiError {
    fn from(e: SegmentError) -> ApiError {
        CaptureError::Media(e).into()
    }
}

impl From<RecordingError> for ApiError {
    fn from(e: RecordingError) -> ApiError {
        use RecordingError::*;
        let (status, code) = match &e {
            UnknownInterview => (StatusCode::NOT_FOUND, "unknown_interview"),
            CandidateErased => (StatusCode::GONE, "candidate_erased"),
            Expired => (StatusCode::GONE, "recording_expired"),
            StillCapturing => (StatusCode::CONFLICT, "still_capturing"),
            Empty => (StatusCode::NOT_FOUND, "no_segments"),
            Catalog(_) | KeyLookup(_) | Output { .. } => return ApiError::internal(&e),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "recording_unverifiable"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<ConsentError> for ApiError {
    fn from(e: ConsentError) -> ApiError {
        use ConsentError::*;
        let status = match &e {
            UnknownCandidate | UnknownConsent(_) => StatusCode::NOT_FOUND,
            CandidateErased => StatusCode::GONE,
            UnknownRecruiter(_) | UnknownNotice(_) | NoNotice => StatusCode::UNPROCESSABLE_ENTITY,
            NothingToWithdraw(_) | NoticeExists(_) => StatusCode::CONFLICT,
            Scope(_) | Invalid { .. } | NoReference | PaperReferenceRequired(_) | Id(_) => {
                StatusCode::BAD_REQUEST
            }
            CandidateSessionRequired(_) => StatusCode::FORBIDDEN,
            Audit(_) | Catalog(_) => return ApiError::internal(&e),
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

impl From<SubjectError> for ApiError {
    fn from(e: SubjectError) -> ApiError {
        let e = match e {
            SubjectError::Consent(c) => return c.into(),
            SubjectError::Recording(r) => return r.into(),
            other => other,
        };
        match &e {
            SubjectError::UnknownCandidate => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_candidate", e.to_string())
            }
            SubjectError::UnknownRegion(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_region", e.to_string())
            }
            // A store that is down: the erasure is recorded as far as it went and finishes
            // when it is asked again.
            SubjectError::Store { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                format!("{e}; the candidate is marked erased, ask again to finish"),
            ),
            SubjectError::Recording(_)
            | SubjectError::Keyring(_)
            | SubjectError::Export(_)
            | SubjectError::Catalog(_)
            | SubjectError::Audit(_)
            | SubjectError::Consent(_) => ApiError::internal(&e),
        }
    }
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> ApiError {
        use SessionError::*;
        let e = match e {
            Recruiter(r) => return r.into(),
            other => other,
        };
        let (status, code) = match &e {
            NoSession => (StatusCode::UNAUTHORIZED, "session_required"),
            WrongOperatorToken => (StatusCode::UNAUTHORIZED, "unauthorized"),
            WrongKind { .. } => (StatusCode::FORBIDDEN, "wrong_session"),
            Csrf => (StatusCode::FORBIDDEN, "csrf_failed"),
            LinkSpent => (StatusCode::GONE, "link_spent"),
            UnknownCandidate => (StatusCode::NOT_FOUND, "unknown_candidate"),
            CandidateErased => (StatusCode::GONE, "candidate_erased"),
            Catalog(_) | Random(_) | Recruiter(_) => return ApiError::internal(&e),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<RecruiterError> for ApiError {
    fn from(e: RecruiterError) -> ApiError {
        use RecruiterError::*;
        let status = match &e {
            Exists(_) => StatusCode::CONFLICT,
            Unknown(_) => StatusCode::NOT_FOUND,
            NoKey | WrongKey | Revoked => StatusCode::UNAUTHORIZED,
            BadUrl(_) | NoCountry => StatusCode::BAD_REQUEST,
            Catalog(_) | Audit(_) | Random(_) => return ApiError::internal(&e),
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

impl From<ReleaseError> for ApiError {
    fn from(e: ReleaseError) -> ApiError {
        use ReleaseError::*;
        let status = match &e {
            Range(RangeError::Malformed) => StatusCode::BAD_REQUEST,
            Range(RangeError::MultipleRanges) => StatusCode::RANGE_NOT_SATISFIABLE,
            Range(RangeError::Unsatisfiable { total }) => {
                let mut a =
                    ApiError::new(StatusCode::RANGE_NOT_SATISFIABLE, e.code(), e.to_string());
                a.item_len = Some(*total);
                return a;
            }
            NoAnalysis | Empty => StatusCode::NOT_FOUND,
            Withdrawn => StatusCode::FORBIDDEN,
            RecipientGone => StatusCode::BAD_REQUEST,
            Unverifiable(_) | KeyLookup(_) | Catalog(_) | Consent(_) | Audit(_) => {
                return ApiError::internal(&e);
            }
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> ApiError {
        match &r {
            // To a recruiter, another recruiter's interview does not exist: the very same 404
            // as an id nobody has.
            Refusal::NotRecipientsInterview => ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_interview",
                "unknown interview",
            ),
            Refusal::AnalyzeConsentWithdrawn => {
                let mut a = ApiError::new(
                    StatusCode::FORBIDDEN,
                    r.code(),
                    "the candidate withdrew consent to analysis; its outputs are no longer released",
                );
                a.details = Some(json!({"reason": r.code(), "scope": "analyze"}));
                a
            }
            Refusal::NoTransferConsent { country } => {
                let mut a = ApiError::new(
                    StatusCode::FORBIDDEN,
                    r.code(),
                    format!(
                        "you receive data in {country}, outside the candidate's country, and the \
                         candidate has not consented to its transfer there"
                    ),
                );
                a.details =
                    Some(json!({"reason": r.code(), "scope": format!("transfer:{country}")}));
                a
            }
            Refusal::CandidateErased => ApiError::new(
                StatusCode::GONE,
                r.code(),
                "the candidate's data was erased at their request",
            ),
            Refusal::RecordingExpired => ApiError::new(
                StatusCode::GONE,
                r.code(),
                "the recording was deleted when its retention ran out",
            ),
            Refusal::RecipientRevoked => ApiError::new(
                StatusCode::FORBIDDEN,
                r.code(),
                "the operator revoked this recipient; nothing more is released to it",
            ),
            Refusal::NotEnded => ApiError::new(
                StatusCode::CONFLICT,
                r.code(),
                "the interview is still being captured",
            ),
            Refusal::NoShareConsent { scope } => {
                let mut a = ApiError::new(
                    StatusCode::FORBIDDEN,
                    r.code(),
                    "the candidate has not consented to share this with you",
                );
                a.details = Some(json!({"reason": r.code(), "scope": scope}));
                a
            }
            Refusal::ShareConsentWithdrawn {
                scope,
                withdrawn_at,
            } => {
                let why = match withdrawn_at {
                    Some(at) => {
                        format!("the candidate withdrew consent to share this with you on {at}")
                    }
                    None => "the candidate withdrew consent to share this with you".into(),
                };
                let mut a = ApiError::new(StatusCode::FORBIDDEN, r.code(), why);
                a.details =
                    Some(json!({"reason": r.code(), "scope": scope, "withdrawn_at": withdrawn_at}));
                a
            }
        }
    }
}
