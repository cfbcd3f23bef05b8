//! The one way a handler reads a JSON body: strictly. A body over the size limit keeps axum's
//! status (413) as `body_rejected`; malformed JSON, a missing field or, for the bodies that
//! refuse them (`#[serde(deny_unknown_fields)]`), an unknown field is a 400 `malformed_json`
//! naming the problem. An empty body reads as `{}`, so bodies whose fields are all optional
//! may be left out.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::ApiError;

/// A JSON request body of type `T`.
pub struct StrictJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for StrictJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(e.status(), "body_rejected", e.body_text()))?;
        let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &body
        };
        serde_json::from_slice(body)
            .map(StrictJson)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", e.to_string()))
    }
}
