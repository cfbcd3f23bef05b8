//! Who is calling, as extractors: a handler names the role it admits in its arguments
//! ([`ServiceCaller`], [`Operator`], [`Recruiter`], [`CandidateSession`]) and is never
//! reached by anyone else. Every refusal is a 401 or 403 with a JSON body, decided before the
//! request body is read.
//!
//! The operator and recruiters call with a bearer token, or from a page with the session
//! cookie its sign-in set (`kiroku_session`); a candidate only ever with the cookie their
//! link set. A request from a page that changes anything (not GET or HEAD) must carry the
//! session's CSRF token in `X-CSRF-Token`: the cookie alone is what a forged cross-site form
//! would have.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};

use super::{ApiError, AppState, bearer, blocking};
use crate::ids::{CandidateId, RecruiterHandle};
use crate::sessions::{Session, SessionError};
use crate::vocab::SessionKind;

/// The cookie a page's session lives in.
pub const SESSION_COOKIE: &str = "kiroku_session";

/// The session token in the request's cookies, if any.
pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
}

/// The live session the request's cookie names; changing requests must echo its CSRF token.
async fn cookie_session(parts: &Parts, s: &AppState) -> Result<Session, ApiError> {
    let token = session_cookie(&parts.headers).ok_or(SessionError::NoSession)?;
    let app = s.app.clone();
    let session = blocking(move || crate::sessions::lookup(&app, &token)).await?;
    if !matches!(parts.method, Method::GET | Method::HEAD) {
        let presented = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok());
        session.check_csrf(presented)?;
    }
    Ok(session)
}

/// A session of the given kind, or a refusal naming the kind wanted.
async fn session_of(
    parts: &Parts,
    s: &AppState,
    kind: SessionKind,
    wanted: &'static str,
) -> Result<Session, ApiError> {
    let session = cookie_session(parts, s).await?;
    if session.kind != kind {
        return Err(SessionError::WrongKind {
            wanted,
            had: session.kind,
        }
        .into());
    }
    Ok(session)
}

/// The candidate in their own session (opened from their link).
pub struct CandidateSession {
    pub candidate: CandidateId,
    /// The company their interview is for, when the front-end named one.
    pub recruiter: Option<RecruiterHandle>,
    pub session: Session,
}

/// Any live page session, its CSRF token checked (signing out).
pub struct PageSession;

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
        if bearer(&parts.headers).is_none() && session_cookie(&parts.headers).is_some() {
            session_of(parts, s, SessionKind::Operator, "operator").await?;
            return Ok(Operator);
        }
        shared_secret(parts, &s.app.operator_token.value, "operator").map(|()| Operator)
    }
}

impl FromRequestParts<AppState> for CandidateSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        let session = session_of(parts, s, SessionKind::Candidate, "candidate").await?;
        let candidate = session.candidate.ok_or(SessionError::NoSession)?;
        Ok(CandidateSession {
            candidate,
            recruiter: session.recruiter.clone(),
            session,
        })
    }
}

impl FromRequestParts<AppState> for PageSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        cookie_session(parts, s).await?;
        Ok(PageSession)
    }
}

impl FromRequestParts<AppState> for Recruiter {
    type Rejection = ApiError;

    /// The key is looked up in the catalog, off the async workers. Without a key, a recruiter
    /// session's cookie (the viewer page) stands for it.
    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        if bearer(&parts.headers).is_none() && session_cookie(&parts.headers).is_some() {
            let session = session_of(parts, s, SessionKind::Recruiter, "recruiter").await?;
            let me = session.recruiter.ok_or(SessionError::NoSession)?;
            return Ok(Recruiter(me));
        }
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
