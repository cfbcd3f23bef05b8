//! WHIP (RFC 9725), for front-ends that publish with WebRTC:
//!
//! - `POST /v1/interviews/{id}/whip` with the interview's single-use ingest token as
//!   `Authorization: Bearer` and an SDP offer (`application/sdp`) answers 201 with the SDP
//!   answer (every candidate in it, no trickle) and the session's `Location`.
//! - `DELETE` on that `Location`, with the same token, ends the recording where it stands, as
//!   `finish` does.
//! - `OPTIONS` on either answers CORS preflights for `[whip] allowed_origins`, since browsers
//!   publish from the front-end's own origin; responses to those origins carry the CORS
//!   headers, `Location` exposed.
//!
//! The session is captured like any stream: segments sealed and acknowledged in the
//! interview's status, consent checked at every boundary. A peer that leaves without `DELETE`
//! (its RTCP BYE, or ten seconds without media) ends it as `client_gone`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use super::stream::{OpenStream, TICK, ended_from_outside};
use super::{ApiError, AppState, bearer, blocking};
use crate::capture::{self, Capture};
use crate::ids::InterviewId;
use crate::util::secret;

/// The largest offer taken; browsers' offers are a few kilobytes.
const MAX_OFFER_BYTES: usize = 64 * 1024;

/// A running WHIP session: its interview and the hash of the token that may end it.
#[derive(Clone)]
pub(super) struct WhipSession {
    interview: InterviewId,
    token_hash: Vec<u8>,
}

/// Sessions by their id (the last part of their `Location`).
pub(super) type Sessions = Arc<Mutex<HashMap<String, WhipSession>>>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/interviews/{id}/whip",
            post(publish)
                .options(preflight)
                .layer(DefaultBodyLimit::max(MAX_OFFER_BYTES)),
        )
        .route(
            "/v1/interviews/{id}/whip/{session}",
            axum::routing::delete(end)
                .options(preflight)
                .patch(no_trickle),
        )
}

/// The `Origin` of a request, when it is one of `[whip] allowed_origins`.
fn allowed_origin<'h>(s: &AppState, headers: &'h HeaderMap) -> Option<&'h str> {
    let origin = headers.get(header::ORIGIN)?.to_str().ok()?;
    s.app
        .config
        .whip
        .allowed_origins
        .iter()
        .any(|o| o == origin)
        .then_some(origin)
}

/// Adds the CORS headers for an allowed origin (success or error alike, so the page can read
/// why it was refused).
fn with_cors(s: &AppState, headers: &HeaderMap, mut resp: Response) -> Response {
    if let Some(origin) = allowed_origin(s, headers)
        && let Ok(v) = HeaderValue::from_str(origin)
    {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Location"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    resp
}

/// `OPTIONS`: a CORS preflight from an allowed origin gets 204 with what it may send; one
/// from another origin 403. Without an `Origin`, it says what the endpoint accepts.
async fn preflight(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let mut resp = match (headers.get(header::ORIGIN), allowed_origin(&s, &headers)) {
        (Some(_), None) => ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "this origin may not publish here; an operator lists it in [whip] allowed_origins",
        )
        .into_response(),
        _ => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            let h = r.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("POST, DELETE, OPTIONS"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("Authorization, Content-Type"),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
            h.insert("accept-post", HeaderValue::from_static("application/sdp"));
            r
        }
    };
    resp.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Origin"));
    with_cors(&s, &headers, resp)
}

/// `PATCH` (trickle ICE, optional in WHIP): not offered; every candidate is in the answer.
#[utoipa::path(
    patch,
    path = "/v1/interviews/{id}/whip/{session}",
    tag = "ingest",
    params(("id" = String, Path, description = "the interview id"), ("session" = String, Path, description = "the WHIP session id")),
    responses((status = 405, description = "kiroku does not take trickled ICE candidates"))
)]
async fn no_trickle() -> Response {
    let mut r = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "trickle_not_supported",
        "kiroku answers with every candidate; send the offer once ICE gathering is complete",
    )
    .into_response();
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("DELETE, OPTIONS"));
    r
}

/// `POST /v1/interviews/{id}/whip`.
#[utoipa::path(
    post,
    path = "/v1/interviews/{id}/whip",
    tag = "ingest",
    params(("id" = String, Path, description = "the id the path names (candidate, interview or request)")),
    responses((status = 201, description = "the SDP answer, with Location"), super::error::ErrorBody),
    security(("ingest_token" = []))
)]
async fn publish(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let resp = match start(&s, &id, &headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    with_cors(&s, &headers, resp)
}

async fn start(
    s: &AppState,
    id: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if s.app.is_shutting_down() {
        return Err(ApiError::shutting_down("publish"));
    }
    let id = InterviewId::parse(id)?;
    let token = bearer(headers)
        .ok_or_else(|| ApiError::unauthorized("an ingest token is required"))?
        .to_string();
    let token_hash = secret::token_hash(&token);
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(crate::segment::bare_content_type);
    if declared.as_deref() != Some("application/sdp") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_content_type",
            "a WHIP offer is sent as application/sdp",
        ));
    }
    let offer = String::from_utf8(body.to_vec()).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_offer",
            "the offer is not UTF-8",
        )
    })?;
    let open = OpenStream::new(s);
    let app = s.app.clone();
    let (cap, answer) = blocking(move || {
        // Refused before the token is spent, so the client can retry with another offer.
        crate::segment::check_offer(&app.whip, &offer)?;
        capture::spend_ingest_token(&app, &id, &token)?;
        Capture::start_whip(&app, &id, &offer).map_err(ApiError::from)
    })
    .await?;
    let session = secret::random_hex(16).map_err(|e| ApiError::internal(&e))?;
    s.whip_sessions().insert(
        session.clone(),
        WhipSession {
            interview: id,
            token_hash,
        },
    );
    s.live().insert(id, cap.feeder());
    tokio::spawn(watch(s.clone(), cap, session.clone(), open));
    let location = format!("/v1/interviews/{id}/whip/{session}");
    let mut resp = (StatusCode::CREATED, answer).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(&location).map_err(|e| ApiError::internal(&e))?,
    );
    Ok(resp)
}

/// Follows a session until it ends (`DELETE`, `finish`, a withdrawal, the peer gone, a
/// shutdown), then concludes its capture.
async fn watch(s: AppState, cap: Capture, session: String, open: OpenStream) {
    let feeder = cap.feeder();
    let mut tick = tokio::time::interval(TICK);
    loop {
        tick.tick().await;
        if ended_from_outside(&s, &feeder) || cap.has_ended() {
            break;
        }
    }
    let interview = cap.interview;
    let outcome = blocking(move || Ok::<_, ApiError>(cap.finish())).await;
    s.live().remove(&interview);
    s.whip_sessions().remove(&session);
    match outcome {
        Ok(o) => {
            tracing::info!(interview = %interview, state = %o.state, segments = o.segments, "WHIP session ended")
        }
        Err(e) => {
            tracing::error!(interview = %interview, error = %e.message, "WHIP session did not conclude")
        }
    }
    drop(open);
}

/// `DELETE /v1/interviews/{id}/whip/{session}`: ends the recording where it stands.
#[utoipa::path(
    delete,
    path = "/v1/interviews/{id}/whip/{session}",
    tag = "ingest",
    params(("id" = String, Path, description = "the id the path names (candidate, interview or request)"), ("session" = String, Path, description = "the WHIP session id")),
    responses((status = 200, description = "the session ended"), super::error::ErrorBody),
    security(("ingest_token" = []))
)]
async fn end(
    State(s): State<AppState>,
    Path((id, session)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let resp = (|| {
        let id = InterviewId::parse(&id)?;
        let known = s
            .whip_sessions()
            .get(&session)
            .filter(|w| w.interview == id)
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "unknown_session",
                    "no WHIP session runs at this address (it may have ended)",
                )
            })?;
        let token = bearer(&headers)
            .ok_or_else(|| ApiError::unauthorized("the session's ingest token is required"))?;
        if !secret::same_secret(&secret::token_hash(token), &known.token_hash) {
            return Err(ApiError::unauthorized(
                "not the ingest token this session was started with",
            ));
        }
        if let Some(feeder) = s.live().get(&id) {
            feeder.end();
        }
        Ok::<_, ApiError>(
            (
                StatusCode::OK,
                axum::Json(json!({"interview_id": id, "state": "finishing"})),
            )
                .into_response(),
        )
    })()
    .unwrap_or_else(|e| e.into_response());
    with_cors(&s, &headers, resp)
}
