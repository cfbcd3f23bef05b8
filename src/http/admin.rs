//! The operator API (operator token): privacy-notice versions, recruiters and their keys,
//! legal-exception releases, the delivery outbox and the audit log's state; and the public
//! key anyone may fetch to check receipts and checkpoints.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::recruiters::recording_response;
use super::{ApiError, AppState, json_body, require_operator};
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
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_operator(&s, &headers)?;
    let b: NoticeBody = json_body(body)?;
    let n = s
        .app
        .clerk()
        .register_notice(&b.id, &b.language, &b.url, &b.text_sha256)?;
    Ok((StatusCode::CREATED, Json(n)).into_response())
}

async fn notices(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    require_operator(&s, &headers)?;
    Ok(Json(json!({"notices": s.app.catalog.notices()?})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecruiterBody {
    handle: String,
}

async fn add_recruiter(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_operator(&s, &headers)?;
    let b: RecruiterBody = json_body(body)?;
    let h = RecruiterHandle::parse(&b.handle)?;
    let key = crate::recruiter::add(&s.app, &h)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"recruiter": h, "api_key": key})),
    )
        .into_response())
}

async fn rotate(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(handle): Path<String>,
) -> Result<Response, ApiError> {
    require_operator(&s, &headers)?;
    let h = RecruiterHandle::parse(&handle)?;
    let key = crate::recruiter::rotate(&s.app, &h)?;
    Ok(Json(json!({"recruiter": h, "api_key": key})).into_response())
}

async fn revoke(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(handle): Path<String>,
) -> Result<Response, ApiError> {
    require_operator(&s, &headers)?;
    let h = RecruiterHandle::parse(&handle)?;
    let n = crate::recruiter::revoke(&s.app, &h)?;
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
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_operator(&s, &headers)?;
    let b: LegalReleaseBody = json_body(body)?;
    let id = InterviewId::parse(&b.interview)?;
    let row = s.app.catalog.interview(&id)?.ok_or_else(|| {
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
    let proof = decision::legal_exception(
        &s.app.audit,
        &row,
        &b.recipient,
        decision::Recording,
        b.legal_basis,
        &b.reference,
    )?;
    recording_response(&s, proof, &headers).await
}

async fn deliveries(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    require_operator(&s, &headers)?;
    Ok(Json(json!({"deliveries": s.app.catalog.deliveries()?})).into_response())
}

/// `GET /v1/admin/audit`: verifies the log; 200 with the report, or 409 naming the first fault.
async fn audit(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    require_operator(&s, &headers)?;
    let app = s.app.clone();
    let result = tokio::task::spawn_blocking(move || {
        crate::audit::verify(&app.data_dir().join("audit"), &app.signer.public_key_hex())
    })
    .await
    .map_err(|e| ApiError::internal(&e))?;
    match result {
        Ok(report) => Ok(Json(report).into_response()),
        Err(e) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "audit_log_tampered",
            e.to_string(),
        )),
    }
}
