//! The operator API (operator token): privacy-notice versions, recruiters and their keys,
//! legal-exception releases, the delivery outbox and the audit log's state; and the public
//! key anyone may fetch to check receipts and checkpoints.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::auth::Operator;
use super::body::StrictJson;
use super::recruiters::recording_response;
use super::{ApiError, AppState, blocking};
use crate::app::Kiroku;
use crate::consent::decision::{Proof, Recording};
use crate::consent::{LegalBasis, decision};
use crate::ids::{InterviewId, RecruiterHandle};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/notices", post(add_notice).get(notices))
        .route("/v1/admin/recruiters", post(add_recruiter))
        .route("/v1/admin/recruiters/{handle}/rotate", post(rotate))
        .route("/v1/admin/recruiters/{handle}/revoke", post(revoke))
        .route("/v1/admin/releases", post(legal_release))
        .route("/v1/admin/deliveries", get(deliveries))
        .route("/v1/admin/audit", get(audit))
}

/// `GET /v1/keys`: the operator's public signing key (anyone).
pub async fn keys(State(s): State<AppState>) -> Response {
    Json(json!({"alg": "Ed25519", "kid": s.app.signer.kid(), "public_key": s.app.signer.public_key_hex()}))
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoticeBody {
    id: String,
    language: String,
    url: String,
    text_sha256: String,
}

async fn add_notice(
    _: Operator,
    State(s): State<AppState>,
    StrictJson(b): StrictJson<NoticeBody>,
) -> Result<Response, ApiError> {
    let app = s.app.clone();
    let n = blocking(move || {
        app.clerk()
            .register_notice(&b.id, &b.language, &b.url, &b.text_sha256)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(n)).into_response())
}

async fn notices(_: Operator, State(s): State<AppState>) -> Result<Response, ApiError> {
    let app = s.app.clone();
    let notices = blocking(move || app.catalog.notices()).await?;
    Ok(Json(json!({"notices": notices})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecruiterBody {
    handle: String,
}

async fn add_recruiter(
    _: Operator,
    State(s): State<AppState>,
    StrictJson(b): StrictJson<RecruiterBody>,
) -> Result<Response, ApiError> {
    let h = RecruiterHandle::parse(&b.handle)?;
    let (app, handle) = (s.app.clone(), h.clone());
    let key = blocking(move || crate::recruiter::add(&app, &handle)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"recruiter": h, "api_key": key})),
    )
        .into_response())
}

async fn rotate(
    _: Operator,
    State(s): State<AppState>,
    Path(handle): Path<String>,
) -> Result<Response, ApiError> {
    let h = RecruiterHandle::parse(&handle)?;
    let (app, handle) = (s.app.clone(), h.clone());
    let key = blocking(move || crate::recruiter::rotate(&app, &handle)).await?;
    Ok(Json(json!({"recruiter": h, "api_key": key})).into_response())
}

async fn revoke(
    _: Operator,
    State(s): State<AppState>,
    Path(handle): Path<String>,
) -> Result<Response, ApiError> {
    let h = RecruiterHandle::parse(&handle)?;
    let (app, handle) = (s.app.clone(), h.clone());
    let n = blocking(move || crate::recruiter::revoke(&app, &handle)).await?;
    Ok(Json(json!({"recruiter": h, "revoked": n})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegalReleaseBody {
    interview: String,
    /// The receiving body (a court, a ministry).
    recipient: String,
    legal_basis: LegalBasis,
    reference: String,
}

/// `POST /v1/admin/releases`: a legal-exception release (APPI Art. 27(1)); the response is
/// the recording, with its provision record's id in `Kiroku-Provision-Id`.
async fn legal_release(
    _: Operator,
    State(s): State<AppState>,
    headers: HeaderMap,
    StrictJson(b): StrictJson<LegalReleaseBody>,
) -> Result<Response, ApiError> {
    let id = InterviewId::parse(&b.interview)?;
    let app = s.app.clone();
    let proof = blocking(move || legal_proof(&app, &id, b)).await?;
    recording_response(&s, proof, &headers).await
}

/// The decision point's proof for a legal-exception release of an ended interview (blocking).
fn legal_proof(
    app: &Kiroku,
    id: &InterviewId,
    b: LegalReleaseBody,
) -> Result<Proof<Recording>, ApiError> {
    let row = app.catalog.interview(id)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_interview",
            "unknown interview",
        )
    })?;
    if !row.state.is_ended() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "still_capturing",
            "the interview is still being captured",
        ));
    }
    Ok(decision::legal_exception(
        &app.audit,
        &row,
        &b.recipient,
        Recording,
        b.legal_basis,
        &b.reference,
    )?)
}

async fn deliveries(_: Operator, State(s): State<AppState>) -> Result<Response, ApiError> {
    let app = s.app.clone();
    let deliveries = blocking(move || app.catalog.deliveries()).await?;
    Ok(Json(json!({"deliveries": deliveries})).into_response())
}

/// `GET /v1/admin/audit`: verifies the log; 200 with the report, or 409 naming the first fault.
async fn audit(_: Operator, State(s): State<AppState>) -> Result<Response, ApiError> {
    let app = s.app.clone();
    let result = blocking(move || {
        Ok::<_, ApiError>(crate::audit::verify(
            &app.data_dir().join("audit"),
            &app.signer.public_key_hex(),
        ))
    })
    .await?;
    match result {
        Ok(report) => Ok(Json(report).into_response()),
        Err(e) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "audit_log_tampered",
            e.to_string(),
        )),
    }
}
