//! The candidate-side API, called by the front-end's backend with the service token:
//! register candidates, grant and withdraw consents, show the consent history and the
//! provision records (APPI Art. 33(5)).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::auth::ServiceCaller;
use super::body::StrictJson;
use super::{ApiError, AppState, blocking};
use crate::app::Kiroku;
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    /// The front-end's own reference; kept in the catalog only, never in traces or keys.
    external_ref: String,
    home_country: String,
    /// The language kiroku addresses the candidate in: `ja` or `en` (default: none given).
    #[serde(default)]
    language: Option<String>,
}

/// A `language` field: `ja` or `en`, when given.
pub(super) fn language(given: Option<&str>) -> Result<Option<crate::vocab::Language>, ApiError> {
    given
        .map(|l| {
            crate::vocab::Language::parse(l).ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_field",
                    "`language`: `ja` or `en`",
                )
            })
        })
        .transpose()
}

/// `POST /v1/candidates`
#[utoipa::path(
    post,
    path = "/v1/candidates",
    tag = "candidates",
    request_body = CreateBody,
    responses((status = 201, description = "the candidate id"), super::error::ErrorBody),
    security(("service_token" = []))
)]
async fn create(
    _: ServiceCaller,
    State(s): State<AppState>,
    StrictJson(b): StrictJson<CreateBody>,
) -> Result<Response, ApiError> {
    let home = CountryCode::parse(&b.home_country)?;
    let language = language(b.language.as_deref())?;
    let app = s.app.clone();
    let id = blocking(move || {
        let id = app
            .clerk()
            .register_candidate(&b.external_ref, &home, &Actor::Service)?;
        if language.is_some() {
            app.catalog.correct_candidate(&id, None, None, language)?;
        }
        Ok::<_, ApiError>(id)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(json!({"candidate_id": id}))).into_response())
}

/// How an event was collected, as the front-end reports it.
#[derive(Deserialize, utoipa::ToSchema)]
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

#[derive(Deserialize, utoipa::ToSchema)]
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

/// The candidate a path names, known to the catalog.
async fn candidate(s: &AppState, id: &str) -> Result<CandidateId, ApiError> {
    let c = CandidateId::parse(id)?;
    let app = s.app.clone();
    if blocking(move || app.catalog.candidate(&c)).await?.is_none() {
        return Err(ConsentError::UnknownCandidate.into());
    }
    Ok(c)
}

/// `POST /v1/candidates/{id}/consents`: records a grant, returns it with its signed receipt.
#[utoipa::path(
    post,
    path = "/v1/candidates/{id}/consents",
    tag = "candidates",
    params(("id" = String, Path, description = "the id the path names (candidate, interview or request)")),
    request_body = GrantBody,
    responses((status = 201, description = "the grant and its signed receipt"), super::error::ErrorBody),
    security(("service_token" = []))
)]
async fn grant(
    _: ServiceCaller,
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Result<StrictJson<GrantBody>, ApiError>,
) -> Result<Response, ApiError> {
    let c = candidate(&s, &id).await?;
    let StrictJson(b) = body?;
    let scope = Scope::parse(&b.scope, b.recipient.as_deref(), b.country.as_deref())
        .map_err(ConsentError::from)?;
    let request = GrantRequest {
        scope,
        notice: b.notice,
        how: HowBody {
            method: b.method,
            origin: b.origin,
            language: b.language,
            time_zone: b.time_zone,
        }
        .into_circumstances(),
    };
    let app = s.app.clone();
    let g = blocking(move || app.clerk().grant(&c, &request, &Actor::Service)).await?;
    Ok(granted(g))
}

/// `POST /v1/candidates/{id}/consents/{consent_id}/withdraw`: one call, like granting; applies
/// to the next decision.
#[utoipa::path(
    post,
    path = "/v1/candidates/{id}/consents/{consent_id}/withdraw",
    tag = "candidates",
    params(("id" = String, Path, description = "the id the path names (candidate, interview or request)"), ("consent_id" = String, Path, description = "a consent event id")),
    request_body = HowBody,
    responses((status = 200, description = "the withdrawal"), super::error::ErrorBody),
    security(("service_token" = []))
)]
async fn withdraw(
    _: ServiceCaller,
    State(s): State<AppState>,
    Path((id, consent_id)): Path<(String, String)>,
    body: Result<StrictJson<HowBody>, ApiError>,
) -> Result<Response, ApiError> {
    let c = candidate(&s, &id).await?;
    let StrictJson(how) = body?;
    let request = WithdrawRequest {
        target: Withdrawal::Grant(consent_id),
        how: how.into_circumstances(),
    };
    let app = s.app.clone();
    let e = blocking(move || app.clerk().withdraw(&c, &request, &Actor::Service)).await?;
    Ok(withdrawn(e))
}

/// `GET /v1/candidates/{id}/consents`: the whole history and what stands now.
#[utoipa::path(
    get,
    path = "/v1/candidates/{id}/consents",
    tag = "candidates",
    params(("id" = String, Path, description = "the id the path names (candidate, interview or request)")),
    responses((status = 200, description = "the history and what stands now"), super::error::ErrorBody),
    security(("service_token" = []))
)]
async fn consents(
    _: ServiceCaller,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let c = candidate(&s, &id).await?;
    let app = s.app.clone();
    let body = blocking(move || {
        let ledger = app.ledger();
        Ok::<_, ConsentError>(json!({
            "candidate_id": c,
            "history": ledger.history(&c)?,
            "current": ledger.current(&c)?,
        }))
    })
    .await?;
    Ok(Json(body).into_response())
}

/// `GET /v1/candidates/{id}/consents/{consent_id}/receipt`: the grant's signed receipt again.
#[utoipa::path(
    get,
    path = "/v1/candidates/{id}/consents/{consent_id}/receipt",
    tag = "candidates",
    params(("id" = String, Path, description = "the id the path names (candidate, interview or request)"), ("consent_id" = String, Path, description = "a consent event id")),
    responses((status = 200, description = "the signed receipt"), super::error::ErrorBody),
    security(("service_token" = []))
)]
async fn receipt(
    _: ServiceCaller,
    State(s): State<AppState>,
    Path((id, consent_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let c = candidate(&s, &id).await?;
    receipt_response(&s, c, consent_id).await
}

/// A grant recorded: 201 with its id, the event and the signed receipt (every road to a
/// grant answers the same).
pub(super) fn granted(g: crate::consent::Granted) -> Response {
    (
        StatusCode::CREATED,
        Json(json!({"consent_id": g.event.id, "event": g.event, "receipt": g.receipt})),
    )
        .into_response()
}

/// A withdrawal recorded: its id and the event.
pub(super) fn withdrawn(e: crate::catalog::ConsentEventRow) -> Response {
    Json(json!({"withdrawal_id": e.id, "event": e})).into_response()
}

/// The signed receipt of one of `c`'s grants, as JSON.
pub(super) async fn receipt_response(
    s: &AppState,
    c: CandidateId,
    consent_id: String,
) -> Result<Response, ApiError> {
    let app = s.app.clone();
    let text = blocking(move || receipt_of(&app, &c, &consent_id)).await?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| ApiError::internal(&e))?;
    Ok(Json(v).into_response())
}

/// A grant's stored receipt (blocking).
fn receipt_of(app: &Kiroku, c: &CandidateId, consent_id: &str) -> Result<String, ApiError> {
    Ok(app
        .catalog
        .consent_event(consent_id)?
        .filter(|e| e.candidate == *c && e.action == crate::vocab::ConsentAction::Grant)
        .and_then(|e| e.receipt)
        .ok_or_else(|| ConsentError::UnknownConsent(consent_id.chars().take(64).collect()))?)
}

/// `GET /v1/candidates/{id}/provisions`: every provision of this candidate's data.
#[utoipa::path(
    get,
    path = "/v1/candidates/{id}/provisions",
    tag = "candidates",
    params(("id" = String, Path, description = "the id the path names (candidate, interview or request)")),
    responses((status = 200, description = "the provision records"), super::error::ErrorBody),
    security(("service_token" = []))
)]
async fn provisions(
    _: ServiceCaller,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let c = candidate(&s, &id).await?;
    let app = s.app.clone();
    let provisions = blocking(move || app.catalog.provisions(&c)).await?;
    Ok(Json(json!({"candidate_id": c, "provisions": provisions})).into_response())
}
