//! The front-ends' ingest API: create an interview, stream it (WebSocket or chunked PUT),
//! finish it, look at it. Every segment acknowledgement is sent only once it is durable.

use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::error::capture_status;
use super::{ApiError, AppState, bearer, require_service};
use crate::capture::{self, Capture, CaptureError, CaptureEvent, CaptureOutcome, Pushed};
use crate::catalog::InterviewRow;
use crate::ids::{CandidateId, InterviewId, RecruiterHandle};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    candidate: String,
    recruiter: String,
    job_ref: Option<String>,
    /// Content type the stream will have; default `video/webm`.
    content_type: Option<String>,
}

/// `POST /v1/interviews`
pub async fn create(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    require_service(&s, &headers)?;
    let body = body.map_err(|e| ApiError::new(e.status(), "body_rejected", e.body_text()))?;
    let b: CreateBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", e.to_string()))?;
    if b.job_ref.as_ref().is_some_and(|j| j.len() > 200) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_job_ref",
            "job_ref is at most 200 bytes",
        ));
    }
    let candidate = CandidateId::parse(&b.candidate)?;
    let recruiter = RecruiterHandle::parse(&b.recruiter)?;
    let ct = b.content_type.unwrap_or_else(|| "video/webm".into());
    let created = capture::create_interview(&s.app, &candidate, &recruiter, b.job_ref, &ct)?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// The service-token check and the interview lookup that `show` and `finish` share.
fn interview_for_service(
    s: &AppState,
    headers: &HeaderMap,
    id: &str,
) -> Result<InterviewRow, ApiError> {
    require_service(s, headers)?;
    let id = InterviewId::parse(id)?;
    Ok(s.app
        .catalog
        .interview(&id)?
        .ok_or(CaptureError::UnknownInterview)?)
}

/// `GET /v1/interviews/{id}`: state, segments so far with their tags, durations.
pub async fn show(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let row = interview_for_service(&s, &headers, &id)?;
    let id = row.id;
    let segments = s.app.catalog.segments(&id)?;
    let media_ms = segments.last().map(|x| x.end_ns / 1_000_000).unwrap_or(0);
    let list: Vec<_> = segments
        .iter()
        .map(|x| {
            json!({
                "index": x.index, "media_kind": x.media_kind, "start_ms": x.start_ns / 1_000_000,
                "end_ms": x.end_ns / 1_000_000, "duration_ms": (x.end_ns - x.start_ns) / 1_000_000,
                "starts_on_keyframe": x.starts_on_keyframe, "final": x.is_final,
                "plain_bytes": x.plain_len, "sealed_bytes": x.sealed_len, "tags": x.tags,
            })
        })
        .collect();
    // What analysis made (or failed to make), never its contents: those go through release.
    let analysis: Vec<_> = s
        .app
        .catalog
        .analysis_outputs(&id)?
        .into_iter()
        .map(|o| json!({"analyzer": o.analyzer, "segment": o.segment, "kind": o.kind, "status": o.status, "error": o.error}))
        .collect();
    Ok(Json(json!({
        "interview_id": row.id, "candidate": row.candidate, "recruiter": row.recruiter.as_str(),
        "region": row.region.as_str(), "profile": row.profile, "content_type": row.content_type,
        "state": row.state, "end_reason": row.end_reason, "created_at": row.created_at, "ended_at": row.ended_at,
        "bytes_in": row.bytes_in, "media_ms": media_ms, "segments": list, "analysis": analysis,
    }))
    .into_response())
}

/// `POST /v1/interviews/{id}/finish`: ends a stream in flight (or an interview never streamed).
pub async fn finish(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let row = interview_for_service(&s, &headers, &id)?;
    let id = row.id;
    let live = s.live.lock().expect("live lock").get(&id).cloned();
    if let Some(feeder) = live {
        feeder.end();
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({"interview_id": id, "state": "finishing"})),
        )
            .into_response());
    }
    if s.app.catalog.transition(
        &id,
        crate::catalog::InterviewState::Created,
        crate::catalog::InterviewState::Finished,
    )? {
        return Ok(
            Json(json!({"interview_id": id, "state": "finished", "segments": 0})).into_response(),
        );
    }
    Ok(Json(json!({"interview_id": id, "state": row.state})).into_response())
}

#[derive(Deserialize)]
pub struct StreamQuery {
    token: Option<String>,
    /// The stream's content type, when it differs from the one given at creation.
    content_type: Option<String>,
}

/// Spends the ingest token (from `Authorization: Bearer` or `?token=`, since browsers cannot
/// set headers on a WebSocket) and starts capture. Every refusal happens here, before a byte
/// of media is read.
fn begin(
    s: &AppState,
    id: &str,
    headers: &HeaderMap,
    query_token: Option<&str>,
    declared: Option<&str>,
) -> Result<Capture, ApiError> {
    let id = InterviewId::parse(id)?;
    let token = bearer(headers)
        .or(query_token)
        .ok_or_else(|| ApiError::unauthorized("an ingest token is required"))?;
    capture::spend_ingest_token(&s.app, &id, token)?;
    if let Some(ct) = declared {
        capture::declare_content_type(&s.app, &id, ct)?;
    }
    Ok(Capture::start(&s.app, &id)?)
}

/// `GET /v1/interviews/{id}/stream`: WebSocket; binary messages are media bytes in order, a
/// text message `{"type":"finish"}` ends the stream. The server sends
/// `{"type":"segment.stored",...}` for each durable segment and `{"type":"capture.ended",...}`
/// last, then closes (1000, or 4000 + the HTTP status of the reason).
pub async fn stream(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<StreamQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let s2 = s.clone();
    let cap = tokio::task::spawn_blocking(move || {
        begin(
            &s2,
            &id,
            &headers,
            q.token.as_deref(),
            q.content_type.as_deref(),
        )
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))??;
    Ok(ws
        .max_message_size(16 << 20)
        .on_upgrade(move |socket| run_socket(s, socket, cap)))
}

async fn run_socket(s: AppState, mut socket: WebSocket, mut cap: Capture) {
    let id = cap.interview;
    let feeder = cap.feeder();
    let mut events = cap.take_events();
    s.live.lock().expect("live lock").insert(id, feeder.clone());
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let ending = loop {
        tokio::select! {
            msg = socket.recv() => match msg {
                Some(Ok(Message::Binary(b))) => {
                    let f = feeder.clone();
                    let pushed = tokio::task::spawn_blocking(move || f.push(b.to_vec())).await.unwrap_or(Pushed::CaptureOver);
                    if pushed == Pushed::CaptureOver { break End::Over; }
                }
                Some(Ok(Message::Text(t))) if t.contains("\"finish\"") => break End::Finish,
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break End::Gone,
                Some(Ok(_)) => {}
            },
            Some(CaptureEvent::Stored(ack)) = events.recv() => {
                let text = json!({"type": "segment.stored", "segment": ack}).to_string();
                if socket.send(Message::Text(text.into())).await.is_err() { break End::Gone; }
            }
            _ = tick.tick() => if feeder.is_over() { break End::Over; },
        }
    };
    let outcome = tokio::task::spawn_blocking(move || match ending {
        End::Gone => cap.abandon(CaptureError::ClientGone),
        End::Finish | End::Over => cap.finish(),
    })
    .await;
    s.live.lock().expect("live lock").remove(&id);
    let Ok(outcome) = outcome else { return };
    while let Ok(CaptureEvent::Stored(ack)) = events.try_recv() {
        let _ = socket
            .send(Message::Text(
                json!({"type": "segment.stored", "segment": ack})
                    .to_string()
                    .into(),
            ))
            .await;
    }
    let (code, reason) = close_for(&outcome);
    let _ = socket
        .send(Message::Text(ended_json(&outcome).to_string().into()))
        .await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
}

enum End {
    Finish,
    Over,
    Gone,
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

/// `PUT /v1/interviews/{id}/media`: the same as the WebSocket, as one chunked HTTP body.
pub async fn media(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let declared = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(ct) = &declared {
        // Refused before the token is spent, so the client can retry with a supported type.
        s.app.profiles.for_content_type(ct)?;
    }
    let s2 = s.clone();
    let headers2 = headers.clone();
    let mut cap =
        tokio::task::spawn_blocking(move || begin(&s2, &id, &headers2, None, declared.as_deref()))
            .await
            .map_err(|e| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            })??;
    let mut events = cap.take_events();
    let feeder = cap.feeder();
    s.live
        .lock()
        .expect("live lock")
        .insert(cap.interview, feeder.clone());
    let mut data = body.into_data_stream();
    let mut gone = false;
    while let Some(chunk) = data.next().await {
        let Ok(chunk) = chunk else {
            gone = true;
            break;
        };
        let f = feeder.clone();
        if tokio::task::spawn_blocking(move || f.push(chunk.to_vec()))
            .await
            .unwrap_or(Pushed::CaptureOver)
            == Pushed::CaptureOver
        {
            break;
        }
    }
    let interview = cap.interview;
    let outcome = tokio::task::spawn_blocking(move || {
        if gone {
            cap.abandon(CaptureError::ClientGone)
        } else {
            cap.finish()
        }
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    s.live.lock().expect("live lock").remove(&interview);
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
