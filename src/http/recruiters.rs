//! The recruiter-side API (a recruiter's API key): what may be received now, the recording with
//! Range support, the analysis, the webhook endpoint; and the download links deliveries carry.
//! Every release goes through the decision point first; an interview of another recruiter is
//! answered exactly like one that does not exist.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

use super::auth::{NotHead, Recruiter};
use super::body::StrictJson;
use super::downloads::Slot;
use super::{ApiError, AppState, blocking};
use crate::app::Kiroku;
use crate::catalog::InterviewRow;
use crate::consent::decision::{Allows, Analysis, Recording};
use crate::consent::{Item, Proof, decision};
use crate::ids::{InterviewId, RecruiterHandle};
use crate::release::{self, RangeError, RecordingRelease, ReleaseError};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/recruiter/interviews", get(list))
        .route("/v1/recruiter/interviews/{id}", get(status))
        .route("/v1/recruiter/interviews/{id}/recording", get(recording))
        .route("/v1/recruiter/interviews/{id}/analysis", get(analysis))
        .route(
            "/v1/recruiter/webhook",
            put(set_webhook).delete(remove_webhook),
        )
        .route("/v1/links/{token}", get(link))
}

/// `GET /v1/recruiter/interviews`: the interviews this recruiter may receive now.
#[utoipa::path(
    get,
    path = "/v1/recruiter/interviews",
    tag = "recruiter",
    responses((status = 200, description = "the interviews released to this recruiter now"), super::error::ErrorBody),
    security(("recruiter_key" = []), ("session_cookie" = []))
)]
async fn list(Recruiter(me): Recruiter, State(s): State<AppState>) -> Result<Response, ApiError> {
    let app = s.app.clone();
    let out = blocking(move || receivable(&app, &me)).await?;
    Ok(Json(json!({"interviews": out})).into_response())
}

/// What `list` answers (blocking).
fn receivable(app: &Kiroku, me: &RecruiterHandle) -> Result<Vec<serde_json::Value>, ApiError> {
    let mut out = Vec::new();
    for i in app.catalog.interviews_of_recruiter(me)? {
        if !i.state.is_ended() {
            continue;
        }
        // Offered only what the decision point would allow now (the same rules).
        let mut items = Vec::new();
        for item in [Item::Recording, Item::Analysis] {
            if let Some(basis) = decision::would_allow(&app.catalog, me, &i, item)? {
                items.push(json!({"item": item, "consent_id": basis.consent_event_id()}));
            }
        }
        if !items.is_empty() {
            out.push(json!({
                "interview_id": i.id,
                "candidate_id": i.candidate,
                "job_ref": i.job_ref,
                "state": i.state,
                "ended_at": i.ended_at,
                "items": items,
                "playback": crate::recording::playback_of(app, &i)?,
            }));
        }
    }
    Ok(out)
}

/// The interview a recruiter names, or the same 404 whether it is unknown or not theirs. An
/// unknown id is audited as a refusal just as another recruiter's interview is, so the two
/// take the same work and the same time (blocking).
fn interview(app: &Kiroku, me: &RecruiterHandle, id: &str) -> Result<InterviewRow, ApiError> {
    let unknown = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_interview",
            "unknown interview",
        )
    };
    let id = InterviewId::parse(id).map_err(|_| unknown())?;
    match app.catalog.interview(&id)? {
        Some(row) => Ok(row),
        None => {
            app.audit
                .record(
                    crate::audit::Event::ReleaseRefused {
                        candidate: None,
                        interview: id,
                        recipient: me.to_string(),
                        item: None,
                        refusal: json!({"reason": "not_recipients_interview"}),
                    },
                    &crate::audit::Actor::Recruiter(me.to_string()),
                )
                .map_err(|e| ApiError::internal(&e))?;
            Err(unknown())
        }
    }
}

/// The decision point's answer for `item` of the interview `me` names: its proof, or the
/// refusal as the client sees it.
async fn decide<I: Allows + Send + 'static>(
    s: &AppState,
    me: RecruiterHandle,
    id: String,
    item: I,
) -> Result<Proof<I>, ApiError> {
    let app = s.app.clone();
    let decided = blocking(move || {
        let row = interview(&app, &me, &id)?;
        Ok::<_, ApiError>(decision::decide(&app.catalog, &app.audit, &me, &row, item)?)
    })
    .await?;
    Ok(decided?)
}

/// `GET /v1/recruiter/interviews/{id}`: whether each item would be released now, and where
/// one is withheld, why (the refusal's code, words and details); nothing is released. Another
/// recruiter's interview is the same 404 as an unknown one.
#[utoipa::path(
    get,
    path = "/v1/recruiter/interviews/{id}",
    tag = "recruiter",
    params(("id" = String, Path, description = "the id the path names (candidate, interview or request)")),
    responses((status = 200, description = "for each item, released or the refusal"), super::error::ErrorBody),
    security(("recruiter_key" = []), ("session_cookie" = []))
)]
async fn status(
    Recruiter(me): Recruiter,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let app = s.app.clone();
    let body = blocking(move || {
        let row = interview(&app, &me, &id)?;
        if row.recruiter != me {
            return Err(decision::Refusal::NotRecipientsInterview.into());
        }
        let mut items = serde_json::Map::new();
        for item in [Item::Recording, Item::Analysis] {
            let answer = match decision::would_get(&app.catalog, &me, &row, item)? {
                Ok(basis) => json!({"released": true, "consent_id": basis.consent_event_id()}),
                Err(refusal) => {
                    let e = ApiError::from(refusal);
                    json!({"released": false, "error": e.code, "message": e.message,
                           "details": e.details})
                }
            };
            items.insert(item.as_str().to_string(), answer);
        }
        Ok::<_, ApiError>(json!({
            "interview_id": row.id, "state": row.state, "ended_at": row.ended_at,
            "items": items, "playback": crate::recording::playback_of(&app, &row)?,
        }))
    })
    .await?;
    Ok(Json(body).into_response())
}

/// `GET /v1/recruiter/interviews/{id}/recording`
#[utoipa::path(
    get,
    path = "/v1/recruiter/interviews/{id}/recording",
    tag = "recruiter",
    params(("id" = String, Path, description = "the id the path names (candidate, interview or request)")),
    responses((status = 200, description = "the recording (206 for a Range)"), super::error::ErrorBody),
    security(("recruiter_key" = []), ("session_cookie" = []))
)]
async fn recording(
    _: NotHead,
    Recruiter(me): Recruiter,
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let proof = decide(&s, me, id, Recording).await?;
    recording_response(&s, proof, &headers).await
}

/// `GET /v1/recruiter/interviews/{id}/analysis`
#[utoipa::path(
    get,
    path = "/v1/recruiter/interviews/{id}/analysis",
    tag = "recruiter",
    params(("id" = String, Path, description = "the id the path names (candidate, interview or request)")),
    responses((status = 200, description = "the analysis outputs"), super::error::ErrorBody),
    security(("recruiter_key" = []), ("session_cookie" = []))
)]
async fn analysis(
    _: NotHead,
    Recruiter(me): Recruiter,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let proof = decide(&s, me, id, Analysis).await?;
    let app = s.app.clone();
    let (body, provision) = blocking(move || release::release_analysis(&app, proof)).await?;
    let mut resp = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&provision) {
        resp.headers_mut().insert("kiroku-provision-id", v);
    }
    Ok(resp)
}

/// `GET /v1/links/{token}`: a delivered download link, used with the API key of the
/// recruiter it was delivered to (a link that leaks from a mailbox or a log opens nothing by
/// itself); decided and recorded like a pull.
#[utoipa::path(
    get,
    path = "/v1/links/{token}",
    tag = "recruiter",
    params(("token" = String, Path, description = "the single-use token")),
    responses((status = 200, description = "the recording, decided and recorded like a pull"), super::error::ErrorBody),
    security(("recruiter_key" = []))
)]
async fn link(
    _: NotHead,
    Recruiter(me): Recruiter,
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let gone = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_link",
            "unknown or expired download link",
        )
    };
    if token.len() > 100 {
        return Err(gone());
    }
    let app = s.app.clone();
    let decided = blocking(move || {
        let (_, id) = app
            .catalog
            .download_link(
                &crate::util::secret::token_hash(&token),
                crate::util::now_unix(),
            )?
            .filter(|(to, _)| *to == me)
            .ok_or_else(gone)?;
        let row = app.catalog.interview(&id)?.ok_or_else(gone)?;
        Ok::<_, ApiError>(decision::decide(
            &app.catalog,
            &app.audit,
            &me,
            &row,
            Recording,
        )?)
    })
    .await?;
    recording_response(&s, decided?, &headers).await
}

/// Streams an allowed recording release: 200 whole, or 206 for one Range. The provision
/// record is written before the first byte; a withdrawal cuts the stream at the next segment.
pub(super) async fn recording_response(
    s: &AppState,
    proof: Proof<Recording>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let range = match headers.get(header::RANGE) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ReleaseError::Range(RangeError::Malformed))?
                .to_string(),
        ),
    };
    let max = s.app.config.limits.max_downloads_per_recipient;
    let slot = s.downloads.take(proof.recipient(), max).ok_or_else(|| {
        crate::metrics::METRICS
            .refused
            .with_label_values(&["downloads_per_recipient"])
            .inc();
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_downloads",
            format!("at most {max} downloads of recordings at once; wait for one to end"),
        )
    })?;
    let app = s.app.clone();
    let prepared =
        blocking(move || release::prepare_recording(&app, proof, range.as_deref())).await?;
    let status = if prepared.range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let mut h = HeaderMap::new();
    let put = |h: &mut HeaderMap, k: header::HeaderName, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    put(&mut h, header::CONTENT_TYPE, prepared.content_type.clone());
    put(
        &mut h,
        header::CONTENT_LENGTH,
        prepared.body_len().to_string(),
    );
    put(&mut h, header::ACCEPT_RANGES, "bytes".into());
    if let Some(r) = prepared.range {
        put(
            &mut h,
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{}", r.start, r.end, prepared.total_len),
        );
    }
    put(
        &mut h,
        header::HeaderName::from_static("kiroku-provision-id"),
        prepared.provision_id.clone(),
    );
    Ok((
        status,
        h,
        Body::from_stream(pieces(s.app.clone(), prepared, slot)),
    )
        .into_response())
}

/// The body of a release, one segment's piece at a time, each read and opened in its own
/// short blocking task: a slow client holds no thread between pieces. A withdrawal or a
/// fault ends the body with an error, which cuts the response. The download's slot is held
/// until the body ends or is dropped.
fn pieces(
    app: Arc<Kiroku>,
    release: RecordingRelease,
    slot: Slot,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::unfold(Some((app, release, slot)), |state| async move {
        let (app, mut release, slot) = state?;
        let next = blocking(move || {
            let piece = release.next_piece(&app)?;
            Ok::<_, ApiError>(piece.map(|parts| (parts, app, release)))
        })
        .await;
        let parts: Vec<Result<Bytes, std::io::Error>> = match next {
            Ok(None) => return None,
            Ok(Some((parts, app, release))) => {
                let parts = parts.into_iter().map(|p| Ok(Bytes::from(p))).collect();
                return Some((parts, Some((app, release, slot))));
            }
            Err(e) => {
                tracing::warn!(error = %e.message, code = e.code, "a release stopped before its end");
                vec![Err(std::io::Error::other(e.message))]
            }
        };
        Some((parts, None))
    })
    .flat_map(futures_util::stream::iter)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct WebhookBody {
    url: String,
}

/// `PUT /v1/recruiter/webhook`: registers the endpoint; returns the signing secret once.
#[utoipa::path(
    put,
    path = "/v1/recruiter/webhook",
    tag = "recruiter",
    request_body = WebhookBody,
    responses((status = 200, description = "the signing secret (shown once)"), super::error::ErrorBody),
    security(("recruiter_key" = []))
)]
async fn set_webhook(
    Recruiter(me): Recruiter,
    State(s): State<AppState>,
    StrictJson(b): StrictJson<WebhookBody>,
) -> Result<Response, ApiError> {
    let (app, url) = (s.app.clone(), b.url.clone());
    let secret = blocking(move || crate::recruiter::set_webhook(&app, &me, &url)).await?;
    Ok(Json(json!({"url": b.url, "signing_secret": secret, "signature_header": "Kiroku-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, \"<t>.<body>\")>"})).into_response())
}

/// `DELETE /v1/recruiter/webhook`
#[utoipa::path(
    delete,
    path = "/v1/recruiter/webhook",
    tag = "recruiter",
    responses((status = 200, description = "removed"), super::error::ErrorBody),
    security(("recruiter_key" = []))
)]
async fn remove_webhook(
    Recruiter(me): Recruiter,
    State(s): State<AppState>,
) -> Result<Response, ApiError> {
    let app = s.app.clone();
    if blocking(move || crate::recruiter::remove_webhook(&app, &me)).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_webhook",
            "no webhook endpoint is registered",
        ))
    }
}
