//! The HTTP edge: router, shared state, authentication, request parsing. No business rules:
//! handlers call `capture`, `catalog` and `recording`, and `error.rs` maps their errors once.
//!
//! | endpoint | who may call |
//! |---|---|
//! | `GET /healthz` | anyone |
//! | `POST /v1/interviews`, `GET /v1/interviews/{id}`, `POST /v1/interviews/{id}/finish` | service token |
//! | `GET /v1/interviews/{id}/stream` (WebSocket), `PUT /v1/interviews/{id}/media` | the interview's single-use ingest token |

mod error;
mod ingest;

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
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
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
        .with_state(state)
}

/// Runs the API until interrupted.
pub fn serve_blocking(app: Arc<Kiroku>) -> Result<(), std::io::Error> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(app.config.listen).await?;
        let addr = listener.local_addr()?;
        crate::capture::recover_interrupted(&app);
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
        axum::serve(listener, router(app))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
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
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
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
