//! Who is calling, as extractors: a handler names the role it admits in its arguments
//! ([`ServiceCaller`], [`Operator`], [`Recruiter`]) and is never reached by anyone else. Every
//! refusal is a 401 with a JSON body, decided before the request body is read.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};

use super::{ApiError, AppState, bearer, blocking};
use crate::ids::RecruiterHandle;

/// The front-end's backend, holding the service token.
pub struct ServiceCaller;

/// The operator, holding the operator token.
pub struct Operator;

/// A recruiter, by a live API key.
pub struct Recruiter(pub RecruiterHandle);

/// A GET that is not a HEAD: a release is recorded, so a HEAD would write a provision record
/// for bytes never sent.
pub struct NotHead;

/// Checks a shared bearer secret: the `role`'s token (`service`, `operator`).
fn shared_secret(parts: &Parts, expected: &str, role: &str) -> Result<(), ApiError> {
    match bearer(&parts.headers) {
        Some(t) if crate::util::secret::same_secret(t.as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::unauthorized(&format!("wrong {role} token"))),
        None => Err(ApiError::unauthorized(&format!(
            "a{} {role} token is required (Authorization: Bearer ...)",
            if role.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "n"
            } else {
                ""
            }
        ))),
    }
}

impl FromRequestParts<AppState> for ServiceCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        shared_secret(parts, &s.app.service_token.value, "service").map(|()| ServiceCaller)
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        shared_secret(parts, &s.app.operator_token.value, "operator").map(|()| Operator)
    }
}

impl FromRequestParts<AppState> for Recruiter {
    type Rejection = ApiError;

    /// The key is looked up in the catalog, off the async workers.
    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        let presented = bearer(&parts.headers).map(str::to_owned);
        let app = s.app.clone();
        let me =
            blocking(move || crate::recruiter::authenticate(&app, presented.as_deref())).await?;
        Ok(Recruiter(me))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for NotHead {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        if parts.method == Method::HEAD {
            return Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "use GET; a release is recorded, so there is no HEAD",
            ));
        }
        Ok(NotHead)
    }
}
