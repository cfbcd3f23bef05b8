//! The recruiter-side API (a recruiter's API key): what may be received now, the recording with
//! Range support, the analysis, the webhook endpoint; and the download links deliveries carry.
//! Every release goes through the decision point first; an interview of another recruiter is
//! answered exactly like one that does not exist.

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, AppState, json_body, require_recruiter};
use crate::catalog::{InterviewRow, InterviewState};
use crate::consent::decision::{Allows, Analysis, Recording};
use crate::consent::{Item, Proof, decision};
use crate::ids::{InterviewId, RecruiterHandle};
use crate::release::{self, RangeError, ReleaseError};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/recruiter/interviews", get(list))
        .route("/v1/recruiter/interviews/{id}/recording", get(recording))
        .route("/v1/recruiter/interviews/{id}/analysis", get(analysis))
        .route(
            "/v1/recruiter/webhook",
            put(set_webhook).delete(remove_webhook),
        )
        .route("/v1/links/{token}", get(link))
}

/// `GET /v1/recruiter/interviews`: the interviews this recruiter may receive now.
async fn list(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let me = require_recruiter(&s, &headers)?;
    let ledger = s.app.ledger();
    let mut out = Vec::new();
    for i in s.app.catalog.interviews_of_recruiter(&me)? {
        if i.state != InterviewState::Finished && i.state != InterviewState::Stopped {
            continue;
        }
        let mut items = Vec::new();
        for item in [Item::Recording, Item::Analysis] {
            if let Some(g) = ledger.standing_grant(&i.candidate, &item.scope(&me))? {
                items.push(json!({"item": item, "consent_id": g.id}));
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
            }));
        }
    }
    Ok(Json(json!({"interviews": out})).into_response())
}

/// The interview a recruiter names, or the same 404 whether it is unknown or not theirs. An
/// unknown id is audited as a refusal just as another recruiter's interview is, so the two
/// take the same work and the same time.
fn interview(s: &AppState, me: &RecruiterHandle, id: &str) -> Result<InterviewRow, ApiError> {
    let unknown = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_interview",
            "unknown interview",
        )
    };
    let id = InterviewId::parse(id).map_err(|_| unknown())?;
    match s.app.catalog.interview(&id)? {
        Some(row) => Ok(row),
        None => {
            s.app
                .audit
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

/// HEAD would write a provision record for bytes never sent: refused.
fn refuse_head(method: &Method) -> Result<(), ApiError> {
    if *method == Method::HEAD {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "use GET; a release is recorded, so there is no HEAD",
        ));
    }
    Ok(())
}

async fn decide<I: Allows + Send + 'static>(
    s: &AppState,
    me: RecruiterHandle,
    row: InterviewRow,
    item: I,
) -> Result<Proof<I>, ApiError> {
    let app = s.app.clone();
    let decided = tokio::task::spawn_blocking(move || {
        decision::decide(&app.catalog, &app.audit, &me, &row, item)
    })
    .await
    .map_err(|e| ApiError::internal(&e))??;
    Ok(decided?)
}

/// `GET /v1/recruiter/interviews/{id}/recording`
async fn recording(
    State(s): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    refuse_head(&method)?;
    let me = require_recruiter(&s, &headers)?;
    let row = interview(&s, &me, &id)?;
    let proof = decide(&s, me, row, Recording).await?;
    recording_response(&s, proof, &headers).await
}

/// `GET /v1/recruiter/interviews/{id}/analysis`
async fn analysis(
    State(s): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    refuse_head(&method)?;
    let me = require_recruiter(&s, &headers)?;
    let row = interview(&s, &me, &id)?;
    let proof = decide(&s, me, row, Analysis).await?;
    let app = s.app.clone();
    let (body, provision) =
        tokio::task::spawn_blocking(move || release::release_analysis(&app, proof))
            .await
            .map_err(|e| ApiError::internal(&e))??;
    let mut resp = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&provision) {
        resp.headers_mut().insert("kiroku-provision-id", v);
    }
    Ok(resp)
}

/// `GET /v1/links/{token}`: a delivered download link; decided and recorded like a pull.
async fn link(
    State(s): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    refuse_head(&method)?;
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
    let (me, id) = s
        .app
        .catalog
        .download_link(&crate::delivery::link_hash(&token), crate::util::now_unix())?
        .ok_or_else(gone)?;
    let row = s.app.catalog.interview(&id)?.ok_or_else(gone)?;
    let proof = decide(&s, me, row, Recording).await?;
    recording_response(&s, proof, &headers).await
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
    let app = s.app.clone();
    let prepared = tokio::task::spawn_blocking(move || {
        release::prepare_recording(&app, proof, range.as_deref())
    })
    .await
    .map_err(|e| ApiError::internal(&e))??;
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
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let app = s.app.clone();
    tokio::task::spawn_blocking(move || {
        let sent = release::stream_recording(&app, prepared, |part| {
            tx.blocking_send(Ok(Bytes::from(part))).is_ok()
        });
        if let Err(e) = sent {
            tracing::warn!(error = %e, "a release stopped before its end");
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok((status, h, Body::from_stream(stream)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookBody {
    url: String,
}

/// `PUT /v1/recruiter/webhook`: registers the endpoint; returns the signing secret once.
async fn set_webhook(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let me = require_recruiter(&s, &headers)?;
    let b: WebhookBody = json_body(body)?;
    let secret = crate::recruiter::set_webhook(&s.app, &me, &b.url)?;
    Ok(Json(json!({"url": b.url, "signing_secret": secret, "signature_header": "Kiroku-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, \"<t>.<body>\")>"})).into_response())
}

/// `DELETE /v1/recruiter/webhook`
async fn remove_webhook(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let me = require_recruiter(&s, &headers)?;
    if crate::recruiter::remove_webhook(&s.app, &me)? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_webhook",
            "no webhook endpoint is registered",
        ))
    }
}
