//! The operator API (operator token): privacy-notice versions, recruiters and their keys,
//! legal-exception releases, erasures, the delivery outbox and the audit log's state; and the public
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
use crate::ids::{CountryCode, InterviewId, RecruiterHandle};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/notices", post(add_notice).get(notices))
        .route("/v1/admin/recruiters", post(add_recruiter))
        .route("/v1/admin/recruiters/{handle}/rotate", post(rotate))
        .route("/v1/admin/recruiters/{handle}/revoke", post(revoke))
        .route("/v1/admin/candidates/{id}", axum::routing::patch(correct))
        .route("/v1/admin/candidates/{id}/erase", post(erase))
        .route("/v1/admin/candidates/{id}/suspend", post(suspend))
        .route("/v1/admin/releases", post(legal_release))
        .route("/v1/admin/deliveries", get(deliveries))
        .route("/v1/admin/audit", get(audit))
        .route("/metrics", get(metrics))
}

/// `GET /metrics`: the Prometheus text exposition (operator token, which Prometheus sends as
/// `authorization: { credentials_file: ... }`), with what only a scrape can read added: each
/// S3 region's spool depth and state, and the deliveries in each state.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operator",
    responses((status = 200, description = "Prometheus text exposition"), super::error::ErrorBody),
    security(("operator_token" = []))
)]
async fn metrics(_: Operator, State(s): State<AppState>) -> Result<Response, ApiError> {
    let app = s.app.clone();
    let text = blocking(move || {
        let mut extra = String::new();
        extra.push_str("# HELP kiroku_spool_bytes Sealed bytes waiting in an S3 region's local spool.\n# TYPE kiroku_spool_bytes gauge\n");
        let mut failing = String::from("# HELP kiroku_region_failing 1 while uploads to an S3 region are failing.\n# TYPE kiroku_region_failing gauge\n");
        for r in app.regions.values() {
            if let crate::store::Store::S3(store) = &r.store {
                let id = &r.region.id;
                extra.push_str(&format!("kiroku_spool_bytes{{region=\"{id}\"}} {}\n", store.spool().bytes()));
                let down = u8::from(store.failing().is_some());
                failing.push_str(&format!("kiroku_region_failing{{region=\"{id}\"}} {down}\n"));
            }
        }
        extra.push_str(&failing);
        extra.push_str("# HELP kiroku_deliveries Webhook deliveries in the outbox, by state.\n# TYPE kiroku_deliveries gauge\n");
        for (state, n) in app.catalog.deliveries_by_state()? {
            extra.push_str(&format!("kiroku_deliveries{{state=\"{}\"}} {n}\n", state.as_str()));
        }
        Ok::<_, ApiError>(crate::metrics::METRICS.render(&extra))
    })
    .await?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
        .into_response())
}

/// `GET /v1/keys`: the operator's public signing key (anyone).
#[utoipa::path(
    get,
    path = "/v1/keys",
    tag = "public",
    responses((status = 200, description = "the operator's Ed25519 public key"), super::error::ErrorBody)
)]
pub async fn keys(State(s): State<AppState>) -> Response {
    Json(json!({"alg": "Ed25519", "kid": s.app.signer.kid(), "public_key": s.app.signer.public_key_hex()}))
        .into_response()
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NoticeBody {
    id: String,
    language: String,
    url: String,
    text_sha256: String,
}

#[utoipa::path(
    post,
    path = "/v1/admin/notices",
    tag = "operator",
    request_body = NoticeBody,
    responses((status = 201, description = "the notice version registered"), super::error::ErrorBody),
    security(("operator_token" = []), ("session_cookie" = []))
)]
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

#[utoipa::path(
    get,
    path = "/v1/admin/notices",
    tag = "operator",
    responses((status = 200, description = "every notice version"), super::error::ErrorBody),
    security(("operator_token" = []), ("session_cookie" = []))
)]
async fn notices(_: Operator, State(s): State<AppState>) -> Result<Response, ApiError> {
    let app = s.app.clone();
    let notices = blocking(move || app.catalog.notices()).await?;
    Ok(Json(json!({"notices": notices})).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RecruiterBody {
    handle: String,
    /// Where the recruiter receives data (ISO 3166-1 alpha-2); default: the controller's.
    #[serde(default)]
    country: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/admin/recruiters",
    tag = "operator",
    request_body = RecruiterBody,
    responses((status = 201, description = "the recruiter, with its API key (shown once)"), super::error::ErrorBody),
    security(("operator_token" = []), ("session_cookie" = []))
)]
async fn add_recruiter(
    _: Operator,
    State(s): State<AppState>,
    StrictJson(b): StrictJson<RecruiterBody>,
) -> Result<Response, ApiError> {
    let h = RecruiterHandle::parse(&b.handle)?;
    let country = b.country.as_deref().map(CountryCode::parse).transpose()?;
    let (app, handle) = (s.app.clone(), h.clone());
    let key = blocking(move || crate::recruiter::add(&app, &handle, country)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"recruiter": h, "api_key": key})),
    )
        .into_response())
}

#[utoipa::path(
    post,
    path = "/v1/admin/recruiters/{handle}/rotate",
    tag = "operator",
    params(("handle" = String, Path, description = "a recruiter handle")),
    responses((status = 200, description = "the new API key (shown once)"), super::error::ErrorBody),
    security(("operator_token" = []), ("session_cookie" = []))
)]
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

#[utoipa::path(
    post,
    path = "/v1/admin/recruiters/{handle}/revoke",
    tag = "operator",
    params(("handle" = String, Path, description = "a recruiter handle")),
    responses((status = 200, description = "what the revocation cut"), super::error::ErrorBody),
    security(("operator_token" = []), ("session_cookie" = []))
)]
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

/// `POST /v1/admin/candidates/{id}/erase`: erases the candidate (see `subject`); 200 with
/// the report. Holds a blocking thread while the candidate's streams stop (bounded by a few
/// segment lengths), never as long as a client likes.
#[utoipa::path(
    post,
    path = "/v1/admin/candidates/{id}/erase",
    tag = "rights",
    params(("id" = String, Path, description = "the id the path names (candidate, interview or request)")),
    responses((status = 200, description = "the erasure report"), super::error::ErrorBody),
    security(("operator_token" = []), ("session_cookie" = []))
)]
async fn erase(
    _: Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let c = crate::ids::CandidateId::parse(&id)?;
    let app = s.app.clone();
    let report = blocking(move || {
        crate::subject::erase(&app, &c, &crate::audit::Actor::Operator).map_err(ApiError::from)
    })
    .await?;
    Ok(Json(report).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CorrectBody {
    external_ref: Option<String>,
    home_country: Option<String>,
    language: Option<String>,
}

/// `PATCH /v1/admin/candidates/{id}`: corrects the fields given (see `subject::correct`);
/// 200 with the fields corrected and the interviews a new home country leaves abroad.
#[utoipa::path(
    patch,
    path = "/v1/admin/candidates/{id}",
    tag = "rights",
    params(("id" = String, Path, description = "the id the path names (candidate, interview or request)")),
    request_body = CorrectBody,
    responses((status = 200, description = "the fields corrected and the interviews left abroad"), super::error::ErrorBody),
    security(("operator_token" = []), ("session_cookie" = []))
)]
async fn correct(
    _: Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
    StrictJson(b): StrictJson<CorrectBody>,
) -> Result<Response, ApiError> {
    let c = crate::ids::CandidateId::parse(&id)?;
    let language = super::candidates::language(b.language.as_deref())?;
    let correction = crate::subject::Correction {
        external_ref: b.external_ref,
        home_country: b
            .home_country
            .as_deref()
            .map(CountryCode::parse)
            .transpose()?,
        language,
    };
    let app = s.app.clone();
    let report = blocking(move || {
        crate::subject::correct(&app, &c, &correction, &crate::audit::Actor::Operator)
            .map_err(ApiError::from)
    })
    .await?;
    Ok(Json(report).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SuspendBody {
    #[serde(rename = "use", default)]
    use_: bool,
    #[serde(default)]
    provision: bool,
    /// How the request came in: `paper` (default), `web_form` or `api`.
    #[serde(default)]
    method: Option<String>,
    /// The request's reference (a ticket or letter number).
    #[serde(default)]
    reference: Option<String>,
}

/// `POST /v1/admin/candidates/{id}/suspend`: `{"use": true, "provision": true}` withdraws
/// every standing grant of those kinds (see `subject::suspend`); 200 with the withdrawals.
#[utoipa::path(
    post,
    path = "/v1/admin/candidates/{id}/suspend",
    tag = "rights",
    params(("id" = String, Path, description = "the id the path names (candidate, interview or request)")),
    request_body = SuspendBody,
    responses((status = 200, description = "the withdrawals made"), super::error::ErrorBody),
    security(("operator_token" = []), ("session_cookie" = []))
)]
async fn suspend(
    _: Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
    StrictJson(b): StrictJson<SuspendBody>,
) -> Result<Response, ApiError> {
    let c = crate::ids::CandidateId::parse(&id)?;
    if !b.use_ && !b.provision {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "nothing_to_suspend",
            "say what to suspend: \"use\", \"provision\" or both",
        ));
    }
    let method = match b.method.as_deref() {
        None => crate::consent::Method::Paper,
        Some(m) => crate::consent::Method::parse(m).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_field",
                "`method`: one of paper, web_form, api",
            )
        })?,
    };
    let how = crate::consent::Circumstances {
        method,
        origin: crate::subject::request_origin("suspension", b.reference.as_deref()),
        language: None,
        time_zone: None,
    };
    let what = crate::subject::Suspension {
        use_: b.use_,
        provision: b.provision,
    };
    let app = s.app.clone();
    let report = blocking(move || {
        crate::subject::suspend(&app, &c, what, &how, &crate::audit::Actor::Operator)
            .map_err(ApiError::from)
    })
    .await?;
    Ok(Json(report).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
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
#[utoipa::path(
    post,
    path = "/v1/admin/releases",
    tag = "operator",
    request_body = LegalReleaseBody,
    responses((status = 200, description = "the recording, released on the legal basis"), super::error::ErrorBody),
    security(("operator_token" = []), ("session_cookie" = []))
)]
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

#[utoipa::path(
    get,
    path = "/v1/admin/deliveries",
    tag = "operator",
    responses((status = 200, description = "the push outbox"), super::error::ErrorBody),
    security(("operator_token" = []), ("session_cookie" = []))
)]
async fn deliveries(_: Operator, State(s): State<AppState>) -> Result<Response, ApiError> {
    let app = s.app.clone();
    let deliveries = blocking(move || app.catalog.deliveries()).await?;
    Ok(Json(json!({"deliveries": deliveries})).into_response())
}

/// `GET /v1/admin/audit`: verifies the log; 200 with the report, or 409 naming the first fault.
#[utoipa::path(
    get,
    path = "/v1/admin/audit",
    tag = "operator",
    responses((status = 200, description = "the audit log's verification report"), super::error::ErrorBody),
    security(("operator_token" = []), ("session_cookie" = []))
)]
async fn audit(_: Operator, State(s): State<AppState>) -> Result<Response, ApiError> {
    let app = s.app.clone();
    let result = blocking(move || {
        let key = app
            .config
            .audit
            .public_key
            .clone()
            .unwrap_or_else(|| app.signer.public_key_hex());
        let mut copies = match app.config.audit.publish_dir.as_deref() {
            Some(folder) => crate::audit::read_published_dir(folder),
            None => Ok(Vec::new()),
        };
        if let (Ok(c), Some(anchor)) = (&mut copies, &app.anchor) {
            c.extend(anchor.read_published().map_err(|e| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "audit_anchor_unavailable",
                    e.to_string(),
                )
            })?);
        }
        Ok::<_, ApiError>(copies.and_then(|c| app.audit.verify(&key, &c)))
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
