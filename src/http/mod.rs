//! The HTTP edge: router, shared state, authentication, request parsing. No business rules:
//! handlers call `capture`, `catalog` and `recording`, and `error.rs` maps their errors once.
//!
//! | endpoint | who may call |
//! |---|---|
//! | `GET /healthz`, `GET /v1/keys` | anyone |
//! | `POST /v1/interviews`, `GET /v1/interviews/{id}`, `POST /v1/interviews/{id}/finish` | service token |
//! | `GET /v1/interviews/{id}/stream` (WebSocket), `PUT /v1/interviews/{id}/media` | the interview's single-use ingest token |
//! | `POST /v1/candidates`, `POST /v1/candidates/{id}/consents`, `POST /v1/candidates/{id}/consents/{consent_id}/withdraw`, `GET /v1/candidates/{id}/consents`, `GET /v1/candidates/{id}/consents/{consent_id}/receipt`, `GET /v1/candidates/{id}/provisions` | service token |
//! | `GET /v1/recruiter/interviews`, `GET /v1/recruiter/interviews/{id}/recording`, `GET /v1/recruiter/interviews/{id}/analysis`, `PUT`/`DELETE /v1/recruiter/webhook` | a recruiter's API key |
//! | `GET /v1/links/{token}` | the holder of a delivered download link |
//! | `POST`/`GET /v1/admin/notices`, `POST /v1/admin/recruiters`, `POST /v1/admin/recruiters/{handle}/rotate`, `POST /v1/admin/recruiters/{handle}/revoke`, `POST /v1/admin/releases`, `GET /v1/admin/deliveries`, `GET /v1/admin/audit` | operator token |

mod admin;
mod candidates;
mod error;
mod ingest;
mod recruiters;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::routing::{get, post, put};

pub use error::ApiError;

use crate::app::Kiroku;
use crate::capture::Feeder;
use crate::ids::InterviewId;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub app: Arc<Kiroku>,
    /// Streams in flight, so `finish` can end one.
    pub live: Arc<Mutex<HashMap<InterviewId, Feeder>>>,
}

/// The router, for `serve` and for tests.
pub fn router(app: Arc<Kiroku>) -> Router {
    let json_limit = app.config.limits.max_json_body_bytes;
    let state = AppState {
        app,
        live: Arc::new(Mutex::new(HashMap::new())),
    };
    Router::new()
        .route(
            "/healthz",
            get(
                |axum::extract::State(s): axum::extract::State<AppState>| async move {
                    axum::Json(health(&s.app))
                },
            ),
        )
        .route(
            "/v1/interviews",
            post(ingest::create).layer(DefaultBodyLimit::max(json_limit)),
        )
        .route("/v1/interviews/{id}", get(ingest::show))
        .route("/v1/interviews/{id}/finish", post(ingest::finish))
        .route("/v1/interviews/{id}/stream", get(ingest::stream))
        .route(
            "/v1/interviews/{id}/media",
            put(ingest::media).layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/keys", get(admin::keys))
        .merge(candidates::routes())
        .merge(recruiters::routes())
        .merge(admin::routes())
        .layer(DefaultBodyLimit::max(json_limit))
        .with_state(state)
}

/// Liveness, and each S3 region's state: bytes waiting in its spool, and why it is failing
/// (credentials refused) when it is. No personal data.
fn health(app: &Kiroku) -> serde_json::Value {
    let regions: Vec<serde_json::Value> = app
        .regions
        .values()
        .map(|r| match &r.store {
            crate::store::Store::S3(s) => serde_json::json!({
                "region": r.region.id,
                "backend": "s3",
                "spool_bytes": s.spool().bytes(),
                "failing": s.failing(),
            }),
            crate::store::Store::Local(_) => {
                serde_json::json!({"region": r.region.id, "backend": "local"})
            }
        })
        .collect();
    serde_json::json!({"status": "ok", "regions": regions})
}

/// Runs the API until interrupted.
pub fn serve_blocking(app: Arc<Kiroku>) -> Result<(), std::io::Error> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(app.config.listen).await?;
        let addr = listener.local_addr()?;
        {
            let app = app.clone();
            tokio::task::spawn_blocking(move || crate::capture::recover_interrupted(&app))
                .await
                .map_err(std::io::Error::other)?;
        }
        app.start_uploaders();
        if let Err(e) = crate::release::purge_expired_provisions(&app) {
            tracing::error!(error = %e, "provision records could not be purged");
        }
        tokio::spawn(crate::delivery::run(app.clone()));
        tracing::info!(%addr, "kiroku is listening");
        println!("kiroku listening on http://{addr}");
        for (role, secret) in [
            ("service", &app.service_token),
            ("operator", &app.operator_token),
        ] {
            match &secret.file {
                Some(f) => println!("{role} token: in {}", f.display()),
                None => println!(
                    "{role} token: from the config or KIROKU_{}_TOKEN",
                    role.to_uppercase()
                ),
            }
        }
        let served = axum::serve(listener, router(app.clone()))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await;
        if let Err(e) = app.audit.checkpoint_now() {
            tracing::error!(error = %e, "final audit checkpoint could not be written");
        }
        served
    })
}

/// The bearer token of a request, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// Compares secrets without an early exit.
fn same_secret(a: &str, b: &str) -> bool {
    crate::util::secret::same_secret(a.as_bytes(), b.as_bytes())
}

/// Checks the operator token.
fn require_operator(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    match bearer(headers) {
        Some(t) if same_secret(t, &state.app.operator_token.value) => Ok(()),
        Some(_) => Err(ApiError::unauthorized("wrong operator token")),
        None => Err(ApiError::unauthorized(
            "an operator token is required (Authorization: Bearer ...)",
        )),
    }
}

/// The recruiter a request's API key belongs to.
fn require_recruiter(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<crate::ids::RecruiterHandle, ApiError> {
    Ok(crate::recruiter::authenticate(&state.app, bearer(headers))?)
}

/// A JSON body, strictly: unknown fields and malformed JSON are a 400 naming the problem.
fn json_body<T: serde::de::DeserializeOwned>(
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(|e| ApiError::new(e.status(), "body_rejected", e.body_text()))?;
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &body
    };
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "malformed_json",
            e.to_string(),
        )
    })
}

/// Checks the service token.
fn require_service(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    match bearer(headers) {
        Some(t) if same_secret(t, &state.app.service_token.value) => Ok(()),
        Some(_) => Err(ApiError::unauthorized("wrong service token")),
        None => Err(ApiError::unauthorized(
            "a service token is required (Authorization: Bearer ...)",
        )),
    }
}
