//! What the operator's console adds to the operator API (operator token or console session):
//! the candidates' rights requests and their closing, consents recorded from signed paper
//! forms, and the captures live on this node with the duration recorded so far.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::auth::Operator;
use super::body::StrictJson;
use super::{ApiError, AppState, blocking};
use crate::audit::Actor;
use crate::consent::{Circumstances, ConsentError, GrantRequest, Method, PAPER_ORIGIN, Scope};
use crate::ids::CandidateId;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/requests", get(requests))
        .route("/v1/admin/requests/{id}/close", post(close))
        .route("/v1/admin/candidates/{id}/consents", post(paper_grant))
        .route("/v1/admin/captures", get(captures))
}

/// `GET /v1/admin/requests`: every candidate's rights requests, newest first.
#[utoipa::path(
    get,
    path = "/v1/admin/requests",
    tag = "rights",
    responses((status = 200, description = "the rights requests"), super::error::ErrorBody),
    security(("operator_token" = []), ("session_cookie" = []))
)]
async fn requests(_: Operator, State(s): State<AppState>) -> Result<Response, ApiError> {
    let app = s.app.clone();
    let rows = blocking(move || app.catalog.rights_requests(None)).await?;
    Ok(Json(json!({"requests": rows})).into_response())
}

/// `POST /v1/admin/requests/{id}/close`: the operator carried the request out.
#[utoipa::path(
    post,
    path = "/v1/admin/requests/{id}/close",
    tag = "rights",
    params(("id" = String, Path, description = "the id the path names (candidate, interview or request)")),
    responses((status = 204, description = "closed"), super::error::ErrorBody),
    security(("operator_token" = []), ("session_cookie" = []))
)]
async fn close(
    _: Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let app = s.app.clone();
    let shown: String = id.chars().take(64).collect();
    if !blocking(move || crate::subject::requests::close(&app, &id)).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_request",
            format!("no open request `{shown}`"),
        ));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PaperBody {
    scope: String,
    recipient: Option<String>,
    country: Option<String>,
    notice: Option<String>,
    /// The signed form's reference in the operator's files.
    reference: String,
    language: Option<String>,
}

/// `POST /v1/admin/candidates/{id}/consents`: a consent from a signed paper form, recorded by
/// the operator with the form's reference (the way `share.*` and `transfer` are given
/// offline).
#[utoipa::path(
    post,
    path = "/v1/admin/candidates/{id}/consents",
    tag = "rights",
    params(("id" = String, Path, description = "the id the path names (candidate, interview or request)")),
    request_body = PaperBody,
    responses((status = 201, description = "the grant and its signed receipt"), super::error::ErrorBody),
    security(("operator_token" = []), ("session_cookie" = []))
)]
async fn paper_grant(
    _: Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Result<StrictJson<PaperBody>, ApiError>,
) -> Result<Response, ApiError> {
    let c = CandidateId::parse(&id)?;
    let StrictJson(b) = body?;
    let scope = Scope::parse(&b.scope, b.recipient.as_deref(), b.country.as_deref())
        .map_err(ConsentError::from)?;
    let request = GrantRequest {
        scope,
        notice: b.notice,
        how: Circumstances {
            method: Method::Paper,
            origin: format!("{PAPER_ORIGIN}{}", b.reference.trim()),
            language: b.language,
            time_zone: None,
        },
    };
    let app = s.app.clone();
    let g = blocking(move || app.clerk().grant(&c, &request, &Actor::Operator)).await?;
    Ok(super::candidates::granted(g))
}

/// `GET /v1/admin/captures`: the streams live on this node, each with the duration stored so
/// far (pseudonymous ids only).
#[utoipa::path(
    get,
    path = "/v1/admin/captures",
    tag = "operator",
    responses((status = 200, description = "the captures live on this node"), super::error::ErrorBody),
    security(("operator_token" = []), ("session_cookie" = []))
)]
async fn captures(_: Operator, State(s): State<AppState>) -> Result<Response, ApiError> {
    let ids: Vec<_> = s.live().keys().cloned().collect();
    let app = s.app.clone();
    let list = blocking(move || {
        let mut out = Vec::new();
        for id in ids {
            let Some(row) = app.catalog.interview(&id)? else {
                continue;
            };
            let segments = app.catalog.segments(&id)?;
            out.push(json!({
                "interview_id": id,
                "candidate": row.candidate,
                "recruiter": row.recruiter,
                "region": row.region,
                "state": row.state,
                "segments": segments.len(),
                "media_ms": segments.last().map(|x| x.end_ns / 1_000_000).unwrap_or(0),
            }));
        }
        Ok::<_, ApiError>(out)
    })
    .await?;
    Ok(Json(json!({"captures": list})).into_response())
}
