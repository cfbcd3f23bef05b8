//! The candidate-side API, called by the front-end's backend with the service token:
//! register candidates, grant and withdraw consents, show the consent history and the
//! provision records (APPI Art. 33(5)).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, AppState, json_body, require_service};
use crate::audit::Actor;
use crate::consent::{
    Circumstances, ConsentError, GrantRequest, Method, Scope, WithdrawRequest, Withdrawal,
};
use crate::ids::{CandidateId, CountryCode};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/candidates", post(create))
        .route("/v1/candidates/{id}/consents", post(grant).get(consents))
        .route(
            "/v1/candidates/{id}/consents/{consent_id}/withdraw",
            post(withdraw),
        )
        .route(
            "/v1/candidates/{id}/consents/{consent_id}/receipt",
            get(receipt),
        )
        .route("/v1/candidates/{id}/provisions", get(provisions))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    /// The front-end's own reference; kept in the catalog only, never in traces or keys.
    external_ref: String,
    home_country: String,
}

/// `POST /v1/candidates`
async fn create(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_service(&s, &headers)?;
    let b: CreateBody = json_body(body)?;
    let home = CountryCode::parse(&b.home_country)?;
    let id = s
        .app
        .clerk()
        .register_candidate(&b.external_ref, &home, &Actor::Service)?;
    Ok((StatusCode::CREATED, Json(json!({"candidate_id": id}))).into_response())
}

/// How an event was collected, as the front-end reports it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HowBody {
    method: Option<Method>,
    origin: Option<String>,
    language: Option<String>,
    time_zone: Option<String>,
}

impl HowBody {
    fn into_circumstances(self) -> Circumstances {
        Circumstances {
            method: self.method.unwrap_or(Method::WebForm),
            origin: self.origin.unwrap_or_else(|| "service-api".into()),
            language: self.language,
            time_zone: self.time_zone,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    scope: String,
    recipient: Option<String>,
    country: Option<String>,
    notice: Option<String>,
    method: Option<Method>,
    origin: Option<String>,
    language: Option<String>,
    time_zone: Option<String>,
}

fn candidate(s: &AppState, id: &str) -> Result<CandidateId, ApiError> {
    let c = CandidateId::parse(id)?;
    if s.app.catalog.candidate(&c)?.is_none() {
        return Err(ConsentError::UnknownCandidate.into());
    }
    Ok(c)
}

/// `POST /v1/candidates/{id}/consents`: records a grant, returns it with its signed receipt.
async fn grant(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_service(&s, &headers)?;
    let c = candidate(&s, &id)?;
    let b: GrantBody = json_body(body)?;
    let scope = Scope::parse(&b.scope, b.recipient.as_deref(), b.country.as_deref())
        .map_err(ConsentError::from)?;
    let g = s.app.clerk().grant(
        &c,
        &GrantRequest {
            scope,
            notice: b.notice,
            how: HowBody {
                method: b.method,
                origin: b.origin,
                language: b.language,
                time_zone: b.time_zone,
            }
            .into_circumstances(),
        },
        &Actor::Service,
    )?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"consent_id": g.event.id, "event": g.event, "receipt": g.receipt})),
    )
        .into_response())
}

/// `POST /v1/candidates/{id}/consents/{consent_id}/withdraw`: one call, like granting; applies
/// to the next decision.
async fn withdraw(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((id, consent_id)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_service(&s, &headers)?;
    let c = candidate(&s, &id)?;
    let how: HowBody = json_body(body)?;
    let e = s.app.clerk().withdraw(
        &c,
        &WithdrawRequest {
            target: Withdrawal::Grant(consent_id),
            how: how.into_circumstances(),
        },
        &Actor::Service,
    )?;
    Ok(Json(json!({"withdrawal_id": e.id, "event": e})).into_response())
}

/// `GET /v1/candidates/{id}/consents`: the whole history and what stands now.
async fn consents(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_service(&s, &headers)?;
    let c = candidate(&s, &id)?;
    let ledger = s.app.ledger();
    Ok(Json(json!({
        "candidate_id": c,
        "history": ledger.history(&c)?,
        "current": ledger.current(&c)?,
    }))
    .into_response())
}

/// `GET /v1/candidates/{id}/consents/{consent_id}/receipt`: the grant's signed receipt again.
async fn receipt(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((id, consent_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    require_service(&s, &headers)?;
    let c = candidate(&s, &id)?;
    let e = s
        .app
        .catalog
        .consent_event(&consent_id)?
        .filter(|e| e.candidate == c && e.action == crate::vocab::ConsentAction::Grant)
        .and_then(|e| e.receipt)
        .ok_or_else(|| ConsentError::UnknownConsent(consent_id.chars().take(64).collect()))?;
    let v: serde_json::Value = serde_json::from_str(&e).map_err(|e| ApiError::internal(&e))?;
    Ok(Json(v).into_response())
}

/// `GET /v1/candidates/{id}/provisions`: every provision of this candidate's data.
async fn provisions(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_service(&s, &headers)?;
    let c = candidate(&s, &id)?;
    Ok(
        Json(json!({"candidate_id": c, "provisions": s.app.catalog.provisions(&c)?}))
            .into_response(),
    )
}
