//! The front-ends' ingest API around a stream: create an interview, finish it, look at it.
//! The streams themselves (WebSocket, chunked PUT) are in `stream.rs`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::ServiceCaller;
use super::body::StrictJson;
use super::{ApiError, AppState, blocking};
use crate::app::Kiroku;
use crate::capture::{self, CaptureError};
use crate::catalog::InterviewState;
use crate::ids::{CandidateId, InterviewId, RecruiterHandle};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    candidate: String,
    recruiter: String,
    job_ref: Option<String>,
    /// Content type the stream will have; default `video/webm`.
    content_type: Option<String>,
}

/// `POST /v1/interviews`
#[utoipa::path(
    post,
    path = "/v1/interviews",
    tag = "ingest",
    request_body = CreateBody,
    responses((status = 201, description = "the interview with its ingest and resume tokens"), super::error::ErrorBody),
    security(("service_token" = []))
)]
pub async fn create(
    _: ServiceCaller,
    State(s): State<AppState>,
    StrictJson(b): StrictJson<CreateBody>,
) -> Result<Response, ApiError> {
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
    let app = s.app.clone();
    let created =
        blocking(move || capture::create_interview(&app, &candidate, &recruiter, b.job_ref, &ct))
            .await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// The interview a service call names (blocking).
/// `GET /v1/interviews/{id}`: state, segments so far with their tags, durations.
#[utoipa::path(
    get,
    path = "/v1/interviews/{id}",
    tag = "ingest",
    params(("id" = String, Path, description = "the id the path names (candidate, interview or request)")),
    responses((status = 200, description = "the interview's state, segments and analysis outputs"), super::error::ErrorBody),
    security(("service_token" = []))
)]
pub async fn show(
    _: ServiceCaller,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = InterviewId::parse(&id)?;
    let app = s.app.clone();
    Ok(Json(blocking(move || describe(&app, &id)).await?).into_response())
}

/// What `show` answers (blocking).
fn describe(app: &Kiroku, id: &InterviewId) -> Result<Value, CaptureError> {
    let row = capture::interview_row(app, id)?;
    let segments = app.catalog.segments(id)?;
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
    let analysis: Vec<_> = app
        .catalog
        .analysis_outputs(id)?
        .into_iter()
        .map(|o| json!({"analyzer": o.analyzer, "segment": o.segment, "kind": o.kind, "status": o.status, "error": o.error}))
        .collect();
    Ok(json!({
        "interview_id": row.id, "candidate": row.candidate, "recruiter": row.recruiter.as_str(),
        "region": row.region.as_str(), "profile": row.profile, "content_type": row.content_type,
        "state": row.state, "end_reason": row.end_reason, "created_at": row.created_at, "ended_at": row.ended_at,
        // The duration so far while capture runs; once it ended, the finished recording's.
        "bytes_in": row.bytes_in, "media_ms": media_ms, "duration_ms": media_ms,
        "segments": list, "analysis": analysis,
        "playback": crate::recording::playback_of(app, &row)?,
    }))
}

/// `POST /v1/interviews/{id}/finish`: ends a stream in flight (or an interview never streamed).
#[utoipa::path(
    post,
    path = "/v1/interviews/{id}/finish",
    tag = "ingest",
    params(("id" = String, Path, description = "the id the path names (candidate, interview or request)")),
    responses((status = 202, description = "finishing (200 when nothing was streaming)"), super::error::ErrorBody),
    security(("service_token" = []))
)]
pub async fn finish(
    _: ServiceCaller,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = InterviewId::parse(&id)?;
    let app = s.app.clone();
    let row = blocking(move || capture::interview_row(&app, &id)).await?;
    let live = s.live().get(&id).cloned();
    if let Some(feeder) = live {
        feeder.end();
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({"interview_id": id, "state": "finishing"})),
        )
            .into_response());
    }
    // Captured on another node: it sees the request at its next look (within a second).
    if row.state == InterviewState::Capturing {
        let app = s.app.clone();
        if blocking(move || app.catalog.request_finish(&id)).await? {
            return Ok((
                StatusCode::ACCEPTED,
                Json(json!({"interview_id": id, "state": "finishing"})),
            )
                .into_response());
        }
    }
    let app = s.app.clone();
    let never_streamed = blocking(move || {
        app.catalog
            .transition(&id, InterviewState::Created, InterviewState::Finished)
    })
    .await?;
    if never_streamed {
        return Ok(
            Json(json!({"interview_id": id, "state": "finished", "segments": 0})).into_response(),
        );
    }
    Ok(Json(json!({"interview_id": id, "state": row.state})).into_response())
}
