//! A panic in a request's handler ends that request, never the process: the client gets 500
//! `internal` with the usual JSON body, the panic is logged and audited (`request.panicked`,
//! naming the route's template and method, never the path itself, which may carry a link's
//! token), and the listener serves on. A panic in a handler's blocking work is carried back
//! to the handler by [`super::blocking`] and met here the same way.
//!
//! A capture's thread has its own guard: a panic there stops that interview as
//! `media_pipeline_failed` with its acknowledged segments kept and a `capture.ended` entry
//! (`capture::session`). A panic while a body is already streaming cuts that connection only.

use std::panic::AssertUnwindSafe;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;

use super::{ApiError, AppState};
use crate::audit::{Actor, Event};

/// The middleware: runs the request's handler, and answers 500 if it panics.
pub(super) async fn catch(
    State(s): State<AppState>,
    matched: Option<MatchedPath>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().to_string();
    let route = matched.map_or_else(|| "(unrouted)".to_string(), |m| m.as_str().to_string());
    match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(response) => response,
        Err(_) => {
            // The panic hook logged where it happened (`cli`), never its message, which could
            // carry values of the request; the audit log gets the route's template only.
            tracing::error!(
                method,
                route,
                "a request's handler panicked; the request ends with 500"
            );
            let app = s.app.clone();
            let event = Event::RequestPanicked { method, route };
            let _ = tokio::task::spawn_blocking(move || {
                app.audit.record_or_warn(event, &Actor::System)
            })
            .await;
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error; see the server log",
            )
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::routing::get;

    use super::*;

    async fn panics_now() -> &'static str {
        panic!("a bug in a handler")
    }

    async fn panics_in_blocking_work() -> Result<&'static str, ApiError> {
        super::super::blocking(|| -> Result<&'static str, ApiError> {
            panic!("a bug off the workers")
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_handler_answers_500_is_audited_and_the_listener_serves_on() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::Config {
            data_dir: dir.path().to_path_buf(),
            keys: crate::config::KeysConfig {
                dir: Some(dir.path().join("keyring")),
                ..Default::default()
            },
            ..Default::default()
        };
        let app = tokio::task::spawn_blocking(move || crate::app::Kiroku::open(config).unwrap())
            .await
            .unwrap();
        let state = AppState::new(app.clone());
        let router = Router::new()
            .route("/boom/{token}", get(panics_now))
            .route("/boom-off-the-workers", get(panics_in_blocking_work))
            .route("/fine", get(|| async { "fine" }))
            .route_layer(axum::middleware::from_fn_with_state(state.clone(), catch))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        let http = reqwest::Client::new();
        for path in ["/boom/a-links-secret-token", "/boom-off-the-workers"] {
            let r = http.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(r.status(), 500, "{path}");
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["error"], "internal", "{path}: {body}");
        }
        let r = http.get(format!("{base}/fine")).send().await.unwrap();
        assert_eq!(r.text().await.unwrap(), "fine", "the listener serves on");
        let log = std::fs::read_to_string(dir.path().join("audit/log.jsonl")).unwrap();
        let panicked: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("\"request.panicked\""))
            .collect();
        assert_eq!(panicked.len(), 2, "{log}");
        assert!(panicked[0].contains("/boom/{token}"), "{}", panicked[0]);
        assert!(
            !log.contains("a-links-secret-token"),
            "the route's template is audited, never the path"
        );
    }
}
