//! The HTTP edge: router, shared state, authentication (`auth.rs`: bearer tokens and the
//! pages' session cookie), strict JSON bodies (`body.rs`), streams (`stream.rs`), the pages
//! (`pages.rs`, `sessions.rs`, `me.rs`, `console.rs`), `serve` and its graceful stop
//! (`serve.rs`). No business rules:
//! handlers call `capture`, `catalog` and `recording`, and `error.rs` maps their errors once.
//!
//! | endpoint | who may call |
//! |---|---|
//! | `GET /healthz`, `GET /v1/keys` | anyone |
//! | `GET /metrics` (Prometheus text) | operator token |
//! | `POST /v1/interviews`, `GET /v1/interviews/{id}`, `POST /v1/interviews/{id}/finish` | service token |
//! | `GET /v1/interviews/{id}/stream` (WebSocket), `PUT /v1/interviews/{id}/media`, `POST /v1/interviews/{id}/whip` (WHIP) | the interview's single-use ingest token |
//! | `DELETE /v1/interviews/{id}/whip/{session}` | the ingest token the WHIP session was started with |
//! | `POST /v1/candidates`, `POST /v1/candidates/{id}/consents`, `POST /v1/candidates/{id}/consents/{consent_id}/withdraw`, `GET /v1/candidates/{id}/consents`, `GET /v1/candidates/{id}/consents/{consent_id}/receipt`, `GET /v1/candidates/{id}/provisions` | service token |
//! | `GET /v1/recruiter/interviews`, `GET /v1/recruiter/interviews/{id}/recording`, `GET /v1/recruiter/interviews/{id}/analysis`, `PUT`/`DELETE /v1/recruiter/webhook` | a recruiter's API key |
//! | `GET /v1/recruiter/interviews/{id}` (what would be released now, and why not) | a recruiter's API key or viewer session |
//! | `GET /v1/links/{token}` | the recruiter a download link was delivered to, with its API key |
//! | `POST /v1/candidates/{id}/sessions` (a candidate's single-use link) | service token |
//! | `GET /c/{token}` (the link's page, spends nothing), `POST /c/{token}` (opens it: session cookie, 303 to the page) | the link itself |
//! | `GET /v1/me`, `POST /v1/me/consents`, `POST /v1/me/consents/{consent_id}/withdraw`, `GET /v1/me/consents/{consent_id}/receipt`, `POST /v1/me/interviews`, `POST /v1/me/requests` | the candidate's session (CSRF on POST) |
//! | `POST /v1/session/recruiter`, `POST /v1/session/operator` (sign-in), `GET /v1/session`, `POST /v1/session/logout` | the API key or operator token; then the session |
//! | `GET /pages/{file}`, `GET /` | anyone (the pages authenticate through the API) |
//! | `GET /v1/admin/requests`, `POST /v1/admin/requests/{id}/close`, `POST /v1/admin/candidates/{id}/consents` (paper form), `GET /v1/admin/captures` | operator token or console session |
//! | `POST`/`GET /v1/admin/notices`, `POST /v1/admin/recruiters`, `POST /v1/admin/recruiters/{handle}/rotate`, `POST /v1/admin/recruiters/{handle}/revoke`, `POST /v1/admin/releases`, `GET /v1/admin/deliveries`, `GET /v1/admin/audit`, `PATCH /v1/admin/candidates/{id}`, `POST /v1/admin/candidates/{id}/erase`, `POST /v1/admin/candidates/{id}/suspend`, `POST /v1/admin/candidates/{id}/export`, `GET`/`DELETE /v1/admin/exports/{job}`, `GET /v1/admin/exports/{job}/archive` | operator token |

mod admin;
mod auth;
mod body;
mod candidates;
mod console;
mod downloads;
mod error;
mod exports;
mod ingest;
mod listener;
mod me;
mod openapi;
mod pages;
mod panics;
mod recruiters;
mod resume;
mod serve;
mod sessions;
mod stream;
mod whip;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::routing::{get, post, put};

pub use error::ApiError;
pub use serve::serve_blocking;

use crate::app::Kiroku;
use crate::capture::Feeder;
use crate::ids::InterviewId;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub app: Arc<Kiroku>,
    /// Streams in flight, so `finish` can end one.
    live: Arc<Mutex<HashMap<InterviewId, Feeder>>>,
    /// How many streams (WebSocket, PUT or WHIP) are open, so a shutdown can wait for them.
    open_streams: Arc<tokio::sync::watch::Sender<usize>>,
    /// WHIP sessions by the id in their `Location`.
    whip: whip::Sessions,
    /// WebSocket streams whose connection dropped, waiting for a resume.
    parked: Arc<Mutex<HashMap<InterviewId, resume::Parked>>>,
    generations: Arc<std::sync::atomic::AtomicU64>,
    /// Recording downloads in flight per recipient.
    downloads: downloads::Downloads,
    /// Disclosure exports running or waiting to be fetched.
    exports: exports::Jobs,
}

impl AppState {
    fn new(app: Arc<Kiroku>) -> AppState {
        AppState {
            app,
            live: Arc::default(),
            open_streams: Arc::new(tokio::sync::watch::Sender::new(0)),
            whip: Arc::default(),
            parked: Arc::default(),
            generations: Arc::default(),
            downloads: downloads::Downloads::default(),
            exports: exports::Jobs::default(),
        }
    }

    /// The streams waiting for a resume.
    fn parked(&self) -> MutexGuard<'_, HashMap<InterviewId, resume::Parked>> {
        self.parked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A number no earlier parking had.
    fn next_generation(&self) -> u64 {
        self.generations
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    }

    /// The WHIP sessions running.
    fn whip_sessions(&self) -> MutexGuard<'_, HashMap<String, whip::WhipSession>> {
        self.whip.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The streams in flight. A panic elsewhere while it was held leaves the map usable.
    fn live(&self) -> MutexGuard<'_, HashMap<InterviewId, Feeder>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The router, for `serve` and for tests.
pub fn router(app: Arc<Kiroku>) -> Router {
    routes(AppState::new(app))
}

/// Serves the API on `listener` with the configured connection limits and timeouts, until the
/// process ends: for tests and embedders. `kiroku serve` adds the background loops and the
/// orderly stop.
pub async fn serve_on(listener: tokio::net::TcpListener, app: Arc<Kiroku>) -> std::io::Result<()> {
    let limits = app.config.server.clone();
    listener::run(listener, router(app), limits, std::future::pending()).await
}

fn routes(state: AppState) -> Router {
    let json_limit = state.app.config.limits.max_json_body_bytes;
    Router::new()
        .route("/healthz", get(healthz))
        .route(
            "/v1/interviews",
            post(ingest::create).layer(DefaultBodyLimit::max(json_limit)),
        )
        .route("/v1/interviews/{id}", get(ingest::show))
        .route("/v1/interviews/{id}/finish", post(ingest::finish))
        .route("/v1/interviews/{id}/stream", get(stream::websocket))
        .route(
            "/v1/interviews/{id}/media",
            put(stream::media).layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/keys", get(admin::keys))
        .route("/v1/openapi.json", get(openapi::json))
        .route("/v1/admin/candidates/{id}/export", post(exports::start))
        .route(
            "/v1/admin/exports/{job}",
            get(exports::status).delete(exports::remove),
        )
        .route("/v1/admin/exports/{job}/archive", get(exports::archive))
        .merge(whip::routes())
        .merge(candidates::routes())
        .merge(recruiters::routes())
        .merge(admin::routes())
        .merge(sessions::routes())
        .merge(me::routes())
        .merge(console::routes())
        .merge(pages::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            panics::catch,
        ))
        .layer(DefaultBodyLimit::max(json_limit))
        .with_state(state)
}

/// `GET /healthz`: liveness, and each region's state (no personal data).
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "public",
    responses((status = 200, description = "liveness and each region's state"), error::ErrorBody)
)]
async fn healthz(
    axum::extract::State(s): axum::extract::State<AppState>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    // Reading a spool's size takes its lock, which a spooling write holds through an fsync:
    // not on an async worker.
    let app = s.app.clone();
    blocking(move || Ok::<_, ApiError>(health(&app)))
        .await
        .map(axum::Json)
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

/// Runs `f` (catalog, audit, store or file work) on tokio's blocking pool, so that a slow
/// fsync or S3 call never stalls the workers that serve other connections. Every handler's
/// blocking call goes through here; `f` must be one short piece of work, never a whole
/// download or stream.
async fn blocking<T, E>(f: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: Into<ApiError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(done) => done.map_err(Into::into),
        // Carried back to the handler, where `panics::catch` answers 500 and audits it.
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(ApiError::internal(&e)),
    }
}

/// The bearer token of a request, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}
