//! The candidate's own API, behind their session cookie (the interview page and the privacy
//! center use it): what kiroku holds of them, their consents (granted here as the candidate,
//! the one online road for `share.*` and `transfer`), withdrawal, the receipts, the provision
//! records, an interview to record, and requests for disclosure or erasure.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::auth::CandidateSession;
use super::body::StrictJson;
use super::{ApiError, AppState, blocking};
use crate::audit::Actor;
use crate::consent::{
    Circumstances, ConsentError, GrantRequest, Method, Scope, WithdrawRequest, Withdrawal,
};
use crate::vocab::RightsRequestKind;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/me", get(overview))
        .route("/v1/me/consents", post(grant))
        .route("/v1/me/consents/{consent_id}/withdraw", post(withdraw))
        .route("/v1/me/consents/{consent_id}/receipt", get(receipt))
        .route("/v1/me/interviews", post(new_interview))
        .route("/v1/me/requests", post(request))
}

/// How the candidate's own page collects an event.
fn own_page(language: Option<String>) -> Circumstances {
    Circumstances {
        method: Method::WebForm,
        origin: "kiroku-candidate-page".into(),
        language,
        time_zone: None,
    }
}

/// `GET /v1/me`: the candidate's page in one answer.
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "candidate",
    responses((status = 200, description = "the candidate's page in one answer"), super::error::ErrorBody),
    security(("session_cookie" = []))
)]
async fn overview(me: CandidateSession, State(s): State<AppState>) -> Result<Response, ApiError> {
    let app = s.app.clone();
    let body = blocking(move || {
        let c = &me.candidate;
        let profile = app
            .catalog
            .candidate_profile(c)?
            .ok_or(ConsentError::UnknownCandidate)?;
        let ledger = app.ledger();
        let notice = app.catalog.notices()?.pop();
        let recruiter = match &me.recruiter {
            Some(h) => {
                let r = app.catalog.recipient(h)?;
                // Where the company receives data: the controller's own country unless
                // it was registered with another.
                let country = r
                    .country
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| app.config.controller.jurisdiction.clone());
                Some(json!({"handle": h, "country": country}))
            }
            None => None,
        };
        let interviews: Vec<_> = app
            .catalog
            .interviews_of_candidate(c)?
            .into_iter()
            .map(|i| {
                json!({"interview_id": i.id, "recruiter": i.recruiter, "state": i.state,
                       "created_at": i.created_at, "ended_at": i.ended_at})
            })
            .collect();
        Ok::<_, ApiError>(json!({
            "candidate_id": c,
            "home_country": profile.home_country,
            "language": me.session.language.or(profile.language),
            "recruiter": recruiter,
            "notice": notice.map(|n| json!({"id": n.id, "language": n.language, "url": n.url})),
            "consents": {"history": ledger.history(c)?, "current": ledger.current(c)?},
            "provisions": app.catalog.provisions(c)?,
            "requests": app.catalog.rights_requests(Some(c))?,
            "interviews": interviews,
        }))
    })
    .await?;
    Ok(Json(body).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    scope: String,
    recipient: Option<String>,
    country: Option<String>,
    notice: Option<String>,
    language: Option<String>,
}

/// `POST /v1/me/consents`: the candidate grants a purpose; the answer carries the signed
/// receipt.
#[utoipa::path(
    post,
    path = "/v1/me/consents",
    tag = "candidate",
    request_body = GrantBody,
    responses((status = 201, description = "the grant and its signed receipt"), super::error::ErrorBody),
    security(("session_cookie" = []))
)]
async fn grant(
    me: CandidateSession,
    State(s): State<AppState>,
    body: Result<StrictJson<GrantBody>, ApiError>,
) -> Result<Response, ApiError> {
    let StrictJson(b) = body?;
    let scope = Scope::parse(&b.scope, b.recipient.as_deref(), b.country.as_deref())
        .map_err(ConsentError::from)?;
    let scope = offered_here(me.recruiter.as_ref(), scope)?;
    let request = GrantRequest {
        scope,
        notice: b.notice,
        how: own_page(b.language),
    };
    let app = s.app.clone();
    let g = blocking(move || {
        app.clerk()
            .grant(&me.candidate, &request, &Actor::Candidate)
    })
    .await?;
    Ok(super::candidates::granted(g))
}

/// A candidate's page offers sharing only with the company its link named: a session cannot
/// be used to share with any other. (`transfer` is not limited so: it moves nothing to
/// anyone by itself, and is also what storage abroad rests on.)
fn offered_here(
    recruiter: Option<&crate::ids::RecruiterHandle>,
    scope: Scope,
) -> Result<Scope, ApiError> {
    match &scope {
        Scope::ShareRecording(to) | Scope::ShareAnalysis(to) if Some(to) != recruiter => {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "not_offered",
                "this page offers sharing only with the company the interview is for",
            ))
        }
        _ => Ok(scope),
    }
}

/// `POST /v1/me/consents/{consent_id}/withdraw`: one click, like granting.
#[utoipa::path(
    post,
    path = "/v1/me/consents/{consent_id}/withdraw",
    tag = "candidate",
    params(("consent_id" = String, Path, description = "a consent event id")),
    responses((status = 200, description = "the withdrawal"), super::error::ErrorBody),
    security(("session_cookie" = []))
)]
async fn withdraw(
    me: CandidateSession,
    State(s): State<AppState>,
    Path(consent_id): Path<String>,
) -> Result<Response, ApiError> {
    let request = WithdrawRequest {
        target: Withdrawal::Grant(consent_id),
        how: own_page(None),
    };
    let app = s.app.clone();
    let e = blocking(move || {
        app.clerk()
            .withdraw(&me.candidate, &request, &Actor::Candidate)
    })
    .await?;
    Ok(super::candidates::withdrawn(e))
}

/// `GET /v1/me/consents/{consent_id}/receipt`: one of their grants' signed receipt.
#[utoipa::path(
    get,
    path = "/v1/me/consents/{consent_id}/receipt",
    tag = "candidate",
    params(("consent_id" = String, Path, description = "a consent event id")),
    responses((status = 200, description = "the signed receipt"), super::error::ErrorBody),
    security(("session_cookie" = []))
)]
async fn receipt(
    me: CandidateSession,
    State(s): State<AppState>,
    Path(consent_id): Path<String>,
) -> Result<Response, ApiError> {
    super::candidates::receipt_response(&s, me.candidate, consent_id).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct InterviewBody {
    /// What the page's MediaRecorder records (`recorder.mimeType`); default `video/webm`.
    content_type: Option<String>,
}

/// `POST /v1/me/interviews`: an interview for the company the link named, with its ingest
/// and resume tokens for the page's recorder.
#[utoipa::path(
    post,
    path = "/v1/me/interviews",
    tag = "candidate",
    request_body = InterviewBody,
    responses((status = 201, description = "the interview with its ingest and resume tokens"), super::error::ErrorBody),
    security(("session_cookie" = []))
)]
async fn new_interview(
    me: CandidateSession,
    State(s): State<AppState>,
    body: Result<StrictJson<InterviewBody>, ApiError>,
) -> Result<Response, ApiError> {
    let StrictJson(b) = body?;
    let recruiter = me.recruiter.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "no_recruiter",
            "this session's link named no company to interview for",
        )
    })?;
    let ct = b.content_type.unwrap_or_else(|| "video/webm".into());
    let app = s.app.clone();
    let created = blocking(move || {
        crate::capture::create_interview(&app, &me.candidate, &recruiter, None, &ct)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RequestBody {
    kind: RightsRequestKind,
}

/// `POST /v1/me/requests {kind: disclosure|erasure}`: a request the operator carries out.
#[utoipa::path(
    post,
    path = "/v1/me/requests",
    tag = "candidate",
    request_body = RequestBody,
    responses((status = 201, description = "the request"), super::error::ErrorBody),
    security(("session_cookie" = []))
)]
async fn request(
    me: CandidateSession,
    State(s): State<AppState>,
    body: Result<StrictJson<RequestBody>, ApiError>,
) -> Result<Response, ApiError> {
    let StrictJson(b) = body?;
    let app = s.app.clone();
    let row =
        blocking(move || crate::subject::requests::request(&app, &me.candidate, b.kind)).await?;
    Ok((StatusCode::CREATED, Json(row)).into_response())
}
