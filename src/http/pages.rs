//! The pages for people, served from files embedded in the binary (`web/`, no build step):
//! the candidate's interview page and privacy center, the recruiter's viewer, the operator's
//! console, and the reference recorder module front-ends can copy. Every page is sent under a
//! strict Content-Security-Policy: scripts and styles from kiroku's own origin only, nothing
//! inline, no framing.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use super::{ApiError, AppState};

/// The policy every page is served under. `connect-src 'self'` covers the API and the
/// WebSocket of the same origin; `media-src` admits the recorder's preview (`blob:`).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The page a candidate link shows (`GET /c/{token}`); `{action}` is the link itself, which
/// its button POSTs to.
pub const LINK_PAGE: &str = include_str!("../../web/link.html");

/// Each file: its name under `/pages/`, its content type and its bytes.
const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../../web/index.html"),
    ),
    (
        "interview.html",
        "text/html; charset=utf-8",
        include_str!("../../web/interview.html"),
    ),
    (
        "privacy.html",
        "text/html; charset=utf-8",
        include_str!("../../web/privacy.html"),
    ),
    (
        "recruiter.html",
        "text/html; charset=utf-8",
        include_str!("../../web/recruiter.html"),
    ),
    (
        "console.html",
        "text/html; charset=utf-8",
        include_str!("../../web/console.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../web/style.css"),
    ),
    (
        "i18n.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/i18n.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/api.js"),
    ),
    (
        "kiroku-recorder.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/kiroku-recorder.js"),
    ),
    (
        "interview.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/interview.js"),
    ),
    (
        "privacy.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/privacy.js"),
    ),
    (
        "recruiter.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/recruiter.js"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/console.js"),
    ),
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/pages/{file}", get(file))
}

/// `GET /`: the pages' index.
#[utoipa::path(
    get,
    path = "/",
    tag = "pages",
    responses((status = 303, description = "to /pages/index.html"), super::error::ErrorBody)
)]
async fn home() -> Redirect {
    Redirect::to("/pages/index.html")
}

/// `GET /pages/{file}`
#[utoipa::path(
    get,
    path = "/pages/{file}",
    tag = "pages",
    params(("file" = String, Path, description = "a page file name")),
    responses((status = 200, description = "the page file, under the Content-Security-Policy"), super::error::ErrorBody)
)]
async fn file(Path(name): Path<String>) -> Result<Response, ApiError> {
    let Some((_, content_type, body)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_such_page",
            "no such page",
        ));
    };
    let mut r = (*body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(r)
}
