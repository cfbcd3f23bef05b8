//! The streams of media: the WebSocket and the chunked PUT. Every refusal happens before a
//! byte of media is read; every segment acknowledgement is sent only once it is durable; on
//! shutdown each stream is ended where it stands, like `finish`, and its manifest sealed.
//!
//! WebSocket messages from the client: binary messages are media bytes in order; the one text
//! message is `{"type":"finish"}`. Any other text is answered with
//! `{"type":"error","error":"malformed_message"|"unknown_message","message":...}` and the
//! stream goes on. From the server: `{"type":"segment.stored","segment":{...}}` per durable
//! segment, `{"type":"capture.ended",...}` last, then a close frame: 1000 when it finished,
//! 1001 when the server is shutting down (the capture still ended cleanly), or 4000 + the
//! HTTP status of the reason it stopped. A WebSocket whose connection drops is kept for
//! `resume_grace_seconds` and can be resumed (`resume.rs`).

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::error::capture_status;
use super::{ApiError, AppState, bearer, blocking};
use crate::app::CaptureSlot;
use crate::capture::{
    self, Capture, CaptureError, CaptureEvent, CaptureOutcome, Feeder, Pushed, Transport,
};
use crate::ids::InterviewId;

/// How often a stream looks whether it was ended from outside (`finish`, a shutdown).
pub(super) const TICK: Duration = Duration::from_millis(200);

/// One open stream, counted while it lives so that a shutdown can wait for it.
pub(super) struct OpenStream(std::sync::Arc<tokio::sync::watch::Sender<usize>>);

impl OpenStream {
    pub(super) fn new(s: &AppState) -> OpenStream {
        s.open_streams.send_modify(|n| *n += 1);
        OpenStream(s.open_streams.clone())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    token: Option<String>,
    /// The stream's content type, when it differs from the one given at creation.
    content_type: Option<String>,
    /// The interview's resume credential: reconnects a dropped stream (see `resume.rs`).
    resume: Option<String>,
    /// The byte offset the client resends from, checked against what the server holds.
    offset: Option<u64>,
}

/// A stream's request, checked: what [`start`] needs once the connection is the stream's.
struct Admitted {
    id: InterviewId,
    token: String,
    declared: Option<String>,
    /// Taken at admission, given back if the stream never starts.
    slot: CaptureSlot,
}

/// Checks a stream's request without spending anything: the ingest token (from
/// `Authorization: Bearer` or `?token=`, since browsers cannot set headers on a WebSocket)
/// is this interview's and unspent, a declared content type is one kiroku takes, `record`
/// stands; and takes a concurrency slot. A server shutting down refuses first, so the client
/// may retry with the same token.
fn admit(
    s: &AppState,
    id: &str,
    headers: &HeaderMap,
    query_token: Option<&str>,
    declared: Option<&str>,
) -> Result<Admitted, ApiError> {
    if s.app.is_shutting_down() {
        return Err(ApiError::shutting_down("stream"));
    }
    let id = InterviewId::parse(id)?;
    let token = bearer(headers)
        .or(query_token)
        .ok_or_else(|| ApiError::unauthorized("an ingest token is required"))?;
    if let Some(ct) = declared {
        s.app.profiles.for_content_type(ct)?;
    }
    capture::check_ingest_token(&s.app, &id, token)?;
    capture::check_record_consent(&s.app, &id)?;
    let slot = s
        .app
        .take_capture_slot()
        .ok_or(CaptureError::TooManyCaptures)?;
    Ok(Admitted {
        id,
        token: token.to_string(),
        declared: declared.map(str::to_owned),
        slot,
    })
}

/// Spends the ingest token and starts capture (blocking). For a WebSocket this runs only once
/// the upgrade has completed and the client's first message has come: a client that goes
/// away before that spends nothing.
fn start(s: &AppState, a: Admitted, transport: Transport) -> Result<Capture, ApiError> {
    capture::spend_ingest_token(&s.app, &a.id, &a.token)?;
    if let Some(ct) = &a.declared {
        capture::declare_content_type(&s.app, &a.id, ct)?;
    }
    Ok(Capture::start_holding(&s.app, &a.id, transport, a.slot)?)
}

/// [`admit`] and [`start`] at once, for an upload whose body is the stream.
fn begin(
    s: &AppState,
    id: &str,
    headers: &HeaderMap,
    query_token: Option<&str>,
    declared: Option<&str>,
    transport: Transport,
) -> Result<Capture, ApiError> {
    let admitted = admit(s, id, headers, query_token, declared)?;
    start(s, admitted, transport)
}

/// Hands bytes to the capture off the async workers (the pipeline may push back).
async fn push(feeder: &Feeder, bytes: Vec<u8>) -> Pushed {
    let f = feeder.clone();
    blocking(move || Ok::<_, ApiError>(f.push(bytes)))
        .await
        .unwrap_or(Pushed::CaptureOver)
}

/// Every [`TICK`], for every kind of stream: a shutdown ends it where it stands, as `finish`
/// does; a sender that went away (a WHIP peer's BYE or silence) stops it as `client_gone`.
/// True once the capture is over, whoever ended it.
pub(super) fn ended_from_outside(s: &AppState, feeder: &Feeder) -> bool {
    if s.app.is_shutting_down() && !feeder.is_over() {
        feeder.end();
    }
    if feeder.peer_gone() && !feeder.is_over() {
        feeder.stop_with(CaptureError::ClientGone);
    }
    feeder.is_over()
}

/// What the client may say in a text message.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ClientMessage {
    /// Ends the stream; what was sent so far becomes the recording. (A struct variant: serde
    /// lets unknown fields through on a unit variant of a tagged enum.)
    Finish {},
}

/// A text message the server does not act on: its answer, and the stream goes on.
fn parse_text(text: &str) -> Result<ClientMessage, serde_json::Value> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        json!({"type": "error", "error": "malformed_message",
               "message": format!("text messages are JSON ({e}); media goes in binary messages")})
    })?;
    serde_json::from_value(value).map_err(|e| {
        json!({"type": "error", "error": "unknown_message",
               "message": format!("the one text message is {{\"type\":\"finish\"}} ({e})")})
    })
}

/// `GET /v1/interviews/{id}/stream`: the WebSocket (see the module docs for its messages).
#[utoipa::path(
    get,
    path = "/v1/interviews/{id}/stream",
    tag = "ingest",
    params(("id" = String, Path, description = "the id the path names (candidate, interview or request)"), StreamQuery),
    responses((status = 101, description = "the WebSocket (see the README for its messages)"), super::error::ErrorBody),
    security(("ingest_token" = []))
)]
pub async fn websocket(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<StreamQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    if let Some(token) = q.resume {
        return super::resume::reconnect(s, &id, token, q.offset, ws).await;
    }
    let open = OpenStream::new(&s);
    let s2 = s.clone();
    let admitted = blocking(move || {
        admit(
            &s2,
            &id,
            &headers,
            q.token.as_deref(),
            q.content_type.as_deref(),
        )
    })
    .await?;
    Ok(ws
        .max_message_size(max_message_bytes(&s.app))
        .on_upgrade(move |mut socket| async move {
            // The token is spent and capture starts with the client's first message, not
            // with the upgrade: a client that left before its answer, or as it came (the
            // server may write the 101 before it sees the connection close), starts nothing,
            // and its token stays unspent for the real connection. A client that sends
            // nothing for the listener's idle timeout is let go the same way.
            let idle = Duration::from_secs(s.app.config.server.idle_timeout_seconds);
            let first = match tokio::time::timeout(idle, socket.recv()).await {
                Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) | Err(_) => return,
                Ok(Some(Ok(m))) => Some(m),
            };
            let s2 = s.clone();
            match blocking(move || start(&s2, admitted, Transport::Live)).await {
                Ok(mut cap) => {
                    let events = cap.take_events();
                    serve_socket(s, socket, first, cap, events, open).await;
                }
                Err(e) => refuse_on_socket(socket, e).await,
            }
        }))
}

/// A stream refused after its upgrade (its token spent by a racing connection, say): the
/// refusal as the error message, then a close with 4000 + the HTTP status.
async fn refuse_on_socket(mut socket: WebSocket, e: ApiError) {
    let body = json!({"type": "error", "error": e.code, "message": e.message});
    let _ = socket.send(text(&body)).await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 4000 + e.status.as_u16(),
            reason: json!({"error": e.code}).to_string().into(),
        })))
        .await;
}

enum End {
    Finish,
    Over,
    Gone,
    /// A message over [`max_message_bytes`].
    TooLarge,
}

/// The largest WebSocket message a stream takes: five seconds of media at the highest bitrate
/// allowed (a MediaRecorder timeslice of a few seconds fits), at least 1 MiB, never more than
/// a segment may hold. A larger message ends the stream with 413 `message_too_large` before
/// it is buffered whole.
pub(super) fn max_message_bytes(app: &crate::app::Kiroku) -> usize {
    let limits = &app.config.limits;
    let five_seconds = limits.max_stream_kbps.saturating_mul(125 * 5);
    five_seconds
        .max(1 << 20)
        .min(limits.max_segment_bytes.max(1 << 20)) as usize
}

/// Whether a WebSocket read failed because the message was over the size limit.
fn over_size_limit(e: &axum::Error) -> bool {
    matches!(
        std::error::Error::source(e).and_then(|inner| inner.downcast_ref::<tungstenite::Error>()),
        Some(tungstenite::Error::Capacity(_))
    )
}

pub(super) fn text(v: &serde_json::Value) -> Message {
    Message::Text(v.to_string().into())
}

/// Serves a stream's WebSocket until the capture ends, or parks the capture for a resume
/// when the connection drops.
pub(super) async fn serve_socket(
    s: AppState,
    mut socket: WebSocket,
    mut first: Option<Message>,
    cap: Capture,
    mut events: tokio::sync::mpsc::UnboundedReceiver<CaptureEvent>,
    open: OpenStream,
) {
    let id = cap.interview;
    let feeder = cap.feeder();
    s.live().insert(id, feeder.clone());
    let mut tick = tokio::time::interval(TICK);
    let ending = loop {
        tokio::select! {
            msg = next_message(&mut socket, &mut first) => match msg {
                Some(Ok(Message::Binary(b))) => {
                    if push(&feeder, b.to_vec()).await == Pushed::CaptureOver { break End::Over; }
                }
                Some(Ok(Message::Text(t))) => match parse_text(t.as_str()) {
                    Ok(ClientMessage::Finish {}) => break End::Finish,
                    Err(answer) => if socket.send(text(&answer)).await.is_err() { break End::Gone },
                },
                Some(Err(e)) if over_size_limit(&e) => break End::TooLarge,
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break End::Gone,
                Some(Ok(_)) => {}
            },
            Some(CaptureEvent::Stored(ack)) = events.recv() => {
                let stored = json!({"type": "segment.stored", "segment": ack,
                                    "received_bytes": feeder.bytes_in()});
                if socket.send(text(&stored)).await.is_err() { break End::Gone; }
            }
            _ = tick.tick() => if ended_from_outside(&s, &feeder) { break End::Over },
        }
    };
    if matches!(ending, End::Gone) && super::resume::can_park(&s, &feeder) {
        super::resume::park(&s, cap, events, open);
        return;
    }
    let message_limit = max_message_bytes(&s.app) as u64;
    let outcome = blocking(move || {
        Ok::<_, ApiError>(match ending {
            End::Gone => cap.abandon(CaptureError::ClientGone),
            End::TooLarge => cap.abandon(CaptureError::MessageTooLarge {
                limit: message_limit,
            }),
            End::Finish | End::Over => cap.finish(),
        })
    })
    .await;
    s.live().remove(&id);
    drop(open);
    let Ok(outcome) = outcome else { return };
    while let Ok(CaptureEvent::Stored(ack)) = events.try_recv() {
        let _ = socket
            .send(text(&json!({"type": "segment.stored", "segment": ack})))
            .await;
    }
    let (code, reason) = match close_for(&outcome) {
        // Ended cleanly, but not by the client's choice: "going away".
        (1000, _) if s.app.is_shutting_down() => (1001, "kiroku is shutting down".to_string()),
        other => other,
    };
    let _ = socket.send(text(&ended_json(&outcome))).await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
}

/// `first` (a message read before the stream started) if there is one, else the socket's next.
async fn next_message(
    socket: &mut WebSocket,
    first: &mut Option<Message>,
) -> Option<Result<Message, axum::Error>> {
    match first.take() {
        Some(m) => Some(Ok(m)),
        None => socket.recv().await,
    }
}

fn ended_json(o: &CaptureOutcome) -> serde_json::Value {
    json!({
        "type": "capture.ended", "interview_id": o.interview, "state": o.state, "segments": o.segments,
        "media_ms": o.media_ms, "bytes_in": o.bytes_in,
        "error": o.reason.as_ref().map(|r| r.code()), "message": o.reason.as_ref().map(|r| r.to_string()),
    })
}

fn close_for(o: &CaptureOutcome) -> (u16, String) {
    match &o.reason {
        None => (1000, "finished".into()),
        Some(r) => (
            4000 + capture_status(r).as_u16(),
            json!({"error": r.code()}).to_string(),
        ),
    }
}

/// What a resumed PUT says in its query: the interview's resume token and the byte offset its
/// body starts at.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    resume: Option<String>,
    offset: Option<u64>,
}

/// `PUT /v1/interviews/{id}/media`: the same as the WebSocket, as one chunked HTTP body. An
/// upload cut off mid-body waits like a dropped WebSocket; `?resume=TOKEN&offset=N` sends
/// the rest (N must be the bytes the server holds; a 409 says how many).
/// How much of a refused upload's remaining body is read and dropped, and for how long, so
/// that a client that sends its whole body before reading gets the answer (a refusal) rather
/// than a broken pipe. Past either bound the connection is cut.
const DRAIN_BYTES: usize = 16 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// Reads and drops what is left of a request body, within [`DRAIN_BYTES`] and [`DRAIN_TIME`].
async fn drain(data: &mut axum::body::BodyDataStream) {
    let mut left = DRAIN_BYTES;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while let Some(Ok(chunk)) = data.next().await {
            left = match left.checked_sub(chunk.len()) {
                Some(l) => l,
                None => return,
            };
        }
    })
    .await;
}

#[utoipa::path(
    put,
    path = "/v1/interviews/{id}/media",
    tag = "ingest",
    params(("id" = String, Path, description = "the id the path names (candidate, interview or request)"), UploadQuery),
    responses((status = 200, description = "the capture as it ended"), super::error::ErrorBody),
    security(("ingest_token" = []))
)]
pub async fn media(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let declared = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let open = OpenStream::new(&s);
    let (cap, mut events) = match q.resume {
        Some(token) => super::resume::take_for_upload(&s, &id, token, q.offset).await?,
        None => {
            let s2 = s.clone();
            let mut cap = blocking(move || {
                begin(
                    &s2,
                    &id,
                    &headers,
                    None,
                    declared.as_deref(),
                    Transport::Upload,
                )
            })
            .await?;
            let events = cap.take_events();
            (cap, events)
        }
    };
    let feeder = cap.feeder();
    let interview = cap.interview;
    s.live().insert(interview, feeder.clone());
    let mut data = body.into_data_stream();
    let mut tick = tokio::time::interval(TICK);
    let mut cut_short = false;
    let gone = loop {
        tokio::select! {
            chunk = data.next() => match chunk {
                None => break false,
                Some(Err(_)) => break true,
                Some(Ok(chunk)) => if push(&feeder, chunk.to_vec()).await == Pushed::CaptureOver {
                    cut_short = true;
                    break false;
                },
            },
            _ = tick.tick() => if ended_from_outside(&s, &feeder) { break false },
        }
    };
    if cut_short {
        drain(&mut data).await;
    }
    if gone && super::resume::can_park(&s, &feeder) {
        super::resume::park(&s, cap, events, open);
        // Nobody reads this answer: the client is gone.
        return Err(CaptureError::ClientGone.into());
    }
    let outcome = blocking(move || {
        Ok::<_, ApiError>(if gone {
            cap.abandon(CaptureError::ClientGone)
        } else {
            cap.finish()
        })
    })
    .await;
    s.live().remove(&interview);
    drop(open);
    let outcome = outcome?;
    let mut acks = Vec::new();
    while let Ok(CaptureEvent::Stored(a)) = events.try_recv() {
        acks.push(a);
    }
    let mut body = ended_json(&outcome);
    body["acknowledged"] = json!(acks);
    let status = outcome
        .reason
        .as_ref()
        .map(capture_status)
        .unwrap_or(StatusCode::OK);
    Ok((status, Json(body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_finish_message_is_understood() {
        assert_eq!(
            parse_text(r#"{"type":"finish"}"#),
            Ok(ClientMessage::Finish {})
        );
        let code = |t: &str| parse_text(t).unwrap_err()["error"].clone();
        assert_eq!(
            code(r#"{"type":"note","text":"finish"}"#),
            "unknown_message"
        );
        assert_eq!(code(r#"{"type":"finish","now":true}"#), "unknown_message");
        assert_eq!(code(r#""finish""#), "unknown_message");
        assert_eq!(code(r#"please "finish""#), "malformed_message");
        assert_eq!(code(""), "malformed_message");
    }
}
