//! Every module's error mapped to an HTTP status and a JSON body, once, here.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::capture::CaptureError;
use crate::catalog::{CatalogError, TokenError};
use crate::consent::ConsentError;
use crate::ids::IdError;
use crate::recording::RecordingError;
use crate::segment::SegmentError;

/// An error as the client sees it: status, stable code, message.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn unauthorized(message: &str) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, message = %self.message, "request failed");
        }
        (
            self.status,
            Json(json!({"error": self.code, "message": self.message})),
        )
            .into_response()
    }
}

/// The status that goes with a capture error.
pub fn capture_status(e: &CaptureError) -> StatusCode {
    use CaptureError::*;
    match e {
        UnknownCandidate | UnknownInterview => StatusCode::NOT_FOUND,
        NoRecordConsent | ConsentWithdrawn => StatusCode::FORBIDDEN,
        Token(_) => StatusCode::UNAUTHORIZED,
        AlreadyStreamed => StatusCode::CONFLICT,
        TooManyCaptures => StatusCode::TOO_MANY_REQUESTS,
        TooManyBytes { .. } | TooLong { .. } | BitrateTooHigh { .. } => {
            StatusCode::PAYLOAD_TOO_LARGE
        }
        Truncated(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ClientGone => StatusCode::BAD_REQUEST,
        Media(SegmentError::UnsupportedContentType(_) | SegmentError::CodecNotAllowed { .. }) => {
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        }
        Media(SegmentError::Unreadable(_)) => StatusCode::UNPROCESSABLE_ENTITY,
        Consent(ConsentError::Catalog(_)) => StatusCode::INTERNAL_SERVER_ERROR,
        Consent(ConsentError::UnknownCandidate) => StatusCode::NOT_FOUND,
        Consent(_) => StatusCode::BAD_REQUEST,
        Media(_) | Seal(_) | Store(_) | Manifest(_) | Catalog(_) | Keys(_) => {
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
            StillCapturing => (StatusCode::CONFLICT, "still_capturing"),
            Empty => (StatusCode::NOT_FOUND, "no_segments"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "recording_unverifiable"),
        };
        ApiError::new(status, code, e.to_string())
    }
}
