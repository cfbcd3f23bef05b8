//! Resuming a WebSocket stream whose connection dropped (a candidate's Wi-Fi, a tunnel).
//!
//! When the socket goes away without `{"type":"finish"}`, the capture is *parked* rather than
//! ended: the pipeline keeps every byte it took, segments it completes are still sealed and
//! stored, and their acknowledgements wait. The front-end reconnects within
//! `resume_grace_seconds` with the interview's resume credential (from `POST /v1/interviews`,
//! never spent):
//!
//! `GET /v1/interviews/{id}/stream?resume=RESUME_TOKEN[&offset=N]`
//!
//! The server first sends `{"type":"stream.resumed","received_bytes":R}`: it holds the
//! stream's first R bytes, so the client resends from byte R (every `segment.stored` also
//! carries `received_bytes`). With `offset=N`, the client says where it will resend from; if
//! N is not R it gets `{"type":"error","error":"resume_offset_mismatch","received_bytes":R}`
//! and close 4409, and the stream stays parked for a retry, untouched. Then the stream goes on
//! as before: one interview, one recording, no gap and no duplicate. The acknowledgements of
//! segments stored while the client was away come first. Past the grace period the interview
//! ends as `client_gone`, every acknowledged segment kept; `finish` and a shutdown end a
//! parked stream cleanly.

use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;

use super::stream::{OpenStream, TICK, ended_from_outside, serve_socket, text};
use super::{ApiError, AppState, blocking};
use crate::capture::{self, Capture, CaptureError, CaptureEvent, Feeder};
use crate::ids::InterviewId;

/// A capture whose connection dropped, waiting for its front-end.
pub(super) struct Parked {
    cap: Capture,
    events: UnboundedReceiver<CaptureEvent>,
    /// When the grace period ends.
    until: Instant,
    /// Tells this parking from a later one of the same interview, so that one watcher ends it.
    generation: u64,
}

/// Whether a stream whose socket went away can wait for a resume.
pub(super) fn can_park(s: &AppState, feeder: &Feeder) -> bool {
    s.app.config.resume_grace_seconds > 0 && !feeder.is_over() && !s.app.is_shutting_down()
}

/// Parks a capture whose socket went away, until it is resumed, finished or its grace ends.
pub(super) fn park(
    s: &AppState,
    cap: Capture,
    events: UnboundedReceiver<CaptureEvent>,
    open: OpenStream,
) {
    let until = Instant::now() + Duration::from_secs(s.app.config.resume_grace_seconds);
    park_until(s, cap, events, until, open);
}

fn park_until(
    s: &AppState,
    cap: Capture,
    events: UnboundedReceiver<CaptureEvent>,
    until: Instant,
    open: OpenStream,
) {
    let id = cap.interview;
    let generation = s.next_generation();
    tracing::info!(interview = %id, "stream connection dropped; waiting for a resume");
    s.parked().insert(
        id,
        Parked {
            cap,
            events,
            until,
            generation,
        },
    );
    tokio::spawn(watch(s.clone(), id, generation, open));
}

/// Ends a parked capture when its grace period passes, `finish` or a shutdown ends it, or it
/// stops by itself (a withdrawal at a boundary); leaves it to a resumed socket otherwise.
async fn watch(s: AppState, id: InterviewId, generation: u64, open: OpenStream) {
    let mut tick = tokio::time::interval(TICK);
    let (parked, expired) = loop {
        tick.tick().await;
        let mut parked = s.parked();
        let Some(p) = parked.get(&id).filter(|p| p.generation == generation) else {
            return; // resumed: the new socket has it
        };
        let feeder = p.cap.feeder();
        let over = ended_from_outside(&s, &feeder);
        let expired = Instant::now() >= p.until;
        if expired || over || p.cap.has_ended() {
            let p = parked.remove(&id).expect("looked up above");
            break (p, expired && !feeder.is_over());
        }
    };
    let outcome = blocking(move || {
        Ok::<_, ApiError>(if expired {
            parked.cap.abandon(CaptureError::ClientGone)
        } else {
            parked.cap.finish()
        })
    })
    .await;
    s.live().remove(&id);
    if let Ok(o) = outcome {
        tracing::info!(interview = %id, state = %o.state, "a parked stream ended");
    }
    drop(open);
}

/// `GET /v1/interviews/{id}/stream?resume=…`: takes the parked capture back onto a new socket.
pub(super) async fn reconnect(
    s: AppState,
    id: &str,
    token: String,
    offset: Option<u64>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let parked = take(&s, id, token).await?;
    let open = OpenStream::new(&s);
    Ok(ws
        .max_message_size(super::stream::max_message_bytes(&s.app))
        .on_upgrade(move |socket| resumed(s, socket, parked, offset, open)))
}

/// A parked stream, taken back by its resume token for a resumed PUT: (capture, its
/// acknowledgements). Refused, and left parked, unless `offset` is what the server holds.
pub(super) async fn take_for_upload(
    s: &AppState,
    id: &str,
    token: String,
    offset: Option<u64>,
) -> Result<(Capture, UnboundedReceiver<CaptureEvent>), ApiError> {
    let parked = take(s, id, token).await?;
    let held = parked.cap.feeder().bytes_in();
    if offset != Some(held) {
        park_until(
            s,
            parked.cap,
            parked.events,
            parked.until,
            OpenStream::new(s),
        );
        let mut e = ApiError::new(
            StatusCode::CONFLICT,
            "resume_offset_mismatch",
            format!("the server holds {held} bytes; resend from there with ?offset={held}"),
        );
        e.details = Some(json!({"received_bytes": held}));
        return Err(e);
    }
    tracing::info!(interview = %parked.cap.interview, received_bytes = held, "upload resumed");
    Ok((parked.cap, parked.events))
}

/// The parked stream of interview `id`, if `token` is its resume credential.
async fn take(s: &AppState, id: &str, token: String) -> Result<Parked, ApiError> {
    let id = InterviewId::parse(id)?;
    let app = s.app.clone();
    let matches = blocking(move || capture::resume_token_matches(&app, &id, &token)).await?;
    if !matches {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "resume_token_invalid",
            "not this interview's resume token",
        ));
    }
    s.parked().remove(&id).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "not_resumable",
            "no dropped stream of this interview is waiting: it is still connected, it has \
             ended, or its grace period passed",
        )
    })
}

async fn resumed(
    s: AppState,
    mut socket: axum::extract::ws::WebSocket,
    parked: Parked,
    offset: Option<u64>,
    open: OpenStream,
) {
    let id = parked.cap.interview;
    let held = parked.cap.feeder().bytes_in();
    let hello = json!({"type": "stream.resumed", "interview_id": id, "received_bytes": held});
    let sent = socket.send(text(&hello)).await.is_ok();
    if !sent || offset.is_some_and(|n| n != held) {
        if sent {
            let refusal = json!({
                "type": "error", "error": "resume_offset_mismatch", "received_bytes": held,
                "message": format!("the server holds {held} bytes; resend from there"),
            });
            let _ = socket.send(text(&refusal)).await;
            let _ = socket
                .send(Message::Close(Some(CloseFrame {
                    code: 4409,
                    reason: "resume_offset_mismatch".into(),
                })))
                .await;
        }
        // Nothing was taken from this socket: the stream waits, as it was, for a retry.
        park_until(&s, parked.cap, parked.events, parked.until, open);
        return;
    }
    tracing::info!(interview = %id, received_bytes = held, "stream resumed");
    serve_socket(s, socket, None, parked.cap, parked.events, open).await;
}
