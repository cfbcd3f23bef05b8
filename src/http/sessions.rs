//! Sessions at the edge: the candidate link a front-end asks for and its opening, the
//! recruiter's and the operator's sign-in, `GET /v1/session` (what a page learns of its
//! session, the CSRF token included) and signing out. The cookie is HttpOnly and
//! SameSite=Strict, and Secure when `[release] public_url` is https.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::auth::{PageSession, SESSION_COOKIE, ServiceCaller, session_cookie};
use super::body::StrictJson;
use super::{ApiError, AppState, blocking};
use crate::app::Kiroku;
use crate::ids::{CandidateId, RecruiterHandle};
use crate::sessions::Issued;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/candidates/{id}/sessions", post(candidate_link))
        .route("/c/{token}", get(link_page).post(open_link))
        .route("/v1/session", get(show))
        .route("/v1/session/recruiter", post(recruiter_sign_in))
        .route("/v1/session/operator", post(operator_sign_in))
        .route("/v1/session/logout", post(sign_out))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct LinkBody {
    /// The company the interview is for: the page offers sharing with it.
    recruiter: Option<String>,
    /// `ja` or `en`; default the candidate's own.
    language: Option<String>,
}

/// `POST /v1/candidates/{id}/sessions` (service token): a single-use link for the candidate.
#[utoipa::path(
    post,
    path = "/v1/candidates/{id}/sessions",
    tag = "sessions",
    params(("id" = String, Path, description = "the id the path names (candidate, interview or request)")),
    request_body = LinkBody,
    responses((status = 201, description = "the candidate's single-use link"), super::error::ErrorBody),
    security(("service_token" = []))
)]
async fn candidate_link(
    _: ServiceCaller,
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Result<StrictJson<LinkBody>, ApiError>,
) -> Result<Response, ApiError> {
    let c = CandidateId::parse(&id)?;
    let StrictJson(b) = body?;
    let recruiter = b
        .recruiter
        .as_deref()
        .map(RecruiterHandle::parse)
        .transpose()?;
    let language = super::candidates::language(b.language.as_deref())?;
    let app = s.app.clone();
    let link =
        blocking(move || crate::sessions::candidate_link(&app, &c, recruiter, language)).await?;
    let base = s
        .app
        .config
        .release
        .public_url
        .trim_end_matches('/')
        .to_string();
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "url": format!("{base}/c/{}", link.token),
            "path": format!("/c/{}", link.token),
            "expires_at": link.expires_at,
        })),
    )
        .into_response())
}

/// The `Set-Cookie` of a session just opened.
fn cookie(app: &Kiroku, issued: &Issued) -> HeaderValue {
    let secure = if app.config.release.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let max_age = (issued.expires_at - crate::util::now_unix()).max(0);
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
        issued.token
    ))
    .expect("a token is a valid header value")
}

/// A link token as kiroku makes them (URL-safe base64); anything else is no link.
fn plausible(token: &str) -> bool {
    (16..=128).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `GET /c/{token}`: the link's page, which spends nothing: a mail scanner or a link
/// preview that fetches the link leaves it for the candidate. Its one button POSTs to the
/// same address.
#[utoipa::path(
    get,
    path = "/c/{token}",
    tag = "sessions",
    params(("token" = String, Path, description = "the single-use token")),
    responses((status = 200, description = "a page whose button opens the session"), super::error::ErrorBody)
)]
async fn link_page(
    State(s): State<AppState>,
    Path(token): Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<Response, ApiError> {
    if !plausible(&token) {
        return Err(crate::sessions::SessionError::LinkSpent.into());
    }
    let app = s.app.clone();
    let checked = token.clone();
    blocking(move || crate::sessions::link_standing(&app, &checked)).await?;
    let to = if query.as_deref() == Some("to=privacy") {
        "?to=privacy"
    } else {
        ""
    };
    let html = super::pages::LINK_PAGE.replace("{action}", &format!("/c/{token}{to}"));
    let mut r = axum::response::Html(html).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(super::pages::CONTENT_SECURITY_POLICY),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(r)
}

/// `POST /c/{token}`: opens the link once, sets the session cookie and sends the candidate to
/// their interview page (or `?to=privacy`, their privacy center).
#[utoipa::path(
    post,
    path = "/c/{token}",
    tag = "sessions",
    params(("token" = String, Path, description = "the single-use token")),
    responses((status = 303, description = "the session cookie set, to the interview page"), super::error::ErrorBody)
)]
async fn open_link(
    State(s): State<AppState>,
    Path(token): Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    // Only the link's own page may press its button: a form on another site must not swap
    // a visitor into someone else's session (browsers say where a request came from).
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() != b"same-origin")
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_site",
            "open the link itself; another site cannot open it for you",
        ));
    }
    if !plausible(&token) {
        return Err(crate::sessions::SessionError::LinkSpent.into());
    }
    let app = s.app.clone();
    let issued = blocking(move || crate::sessions::open_link(&app, &token)).await?;
    let to = if query.as_deref() == Some("to=privacy") {
        "/pages/privacy.html"
    } else {
        "/pages/interview.html"
    };
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, cookie(&s.app, &issued));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// `GET /v1/session`: who this page's session is for, and the CSRF token its changing
/// requests carry; `{"signed_in": false}` when the page has none (a page asks before it
/// shows its sign-in form, and that is no error).
#[utoipa::path(
    get,
    path = "/v1/session",
    tag = "sessions",
    responses((status = 200, description = "the page's session, or signed_in false"), super::error::ErrorBody)
)]
async fn show(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let token = session_cookie(&headers);
    let app = s.app.clone();
    let found = match token {
        Some(t) => {
            blocking(move || match crate::sessions::lookup(&app, &t) {
                Ok(session) => Ok(Some(session)),
                Err(crate::sessions::SessionError::NoSession) => Ok(None),
                Err(e) => Err(e),
            })
            .await?
        }
        None => None,
    };
    let body = match found {
        Some(session) => json!({
            "signed_in": true,
            "kind": session.kind,
            "candidate_id": session.candidate,
            "recruiter": session.recruiter,
            "language": session.language,
            "csrf": session.csrf,
            "expires_at": session.expires_at,
        }),
        None => json!({"signed_in": false}),
    };
    let mut r = Json(body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RecruiterSignIn {
    api_key: String,
}

/// `POST /v1/session/recruiter {api_key}`: the key is exchanged for a session cookie; the
/// page never keeps the key.
#[utoipa::path(
    post,
    path = "/v1/session/recruiter",
    tag = "sessions",
    request_body = RecruiterSignIn,
    responses((status = 201, description = "the session cookie set"), super::error::ErrorBody)
)]
async fn recruiter_sign_in(
    State(s): State<AppState>,
    StrictJson(b): StrictJson<RecruiterSignIn>,
) -> Result<Response, ApiError> {
    let app = s.app.clone();
    let issued = blocking(move || crate::sessions::sign_in_recruiter(&app, &b.api_key)).await?;
    Ok(signed_in(&s.app, &issued))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct OperatorSignIn {
    token: String,
}

/// `POST /v1/session/operator {token}`: the operator token for a console session.
#[utoipa::path(
    post,
    path = "/v1/session/operator",
    tag = "sessions",
    request_body = OperatorSignIn,
    responses((status = 201, description = "the session cookie set"), super::error::ErrorBody)
)]
async fn operator_sign_in(
    State(s): State<AppState>,
    StrictJson(b): StrictJson<OperatorSignIn>,
) -> Result<Response, ApiError> {
    let app = s.app.clone();
    let issued = blocking(move || crate::sessions::sign_in_operator(&app, &b.token)).await?;
    Ok(signed_in(&s.app, &issued))
}

fn signed_in(app: &Kiroku, issued: &Issued) -> Response {
    let mut r = (StatusCode::CREATED, Json(json!(issued))).into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, cookie(app, issued));
    r
}

/// `POST /v1/session/logout` (CSRF): ends the session and clears the cookie.
#[utoipa::path(
    post,
    path = "/v1/session/logout",
    tag = "sessions",
    responses((status = 204, description = "signed out"), super::error::ErrorBody),
    security(("session_cookie" = []))
)]
async fn sign_out(
    State(s): State<AppState>,
    _: PageSession,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let token = session_cookie(&headers).unwrap_or_default();
    let app = s.app.clone();
    blocking(move || crate::sessions::sign_out(&app, &token)).await?;
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("kiroku_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(r)
}
