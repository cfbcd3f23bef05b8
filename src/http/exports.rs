//! Disclosure exports as jobs (operator token): `POST /v1/admin/candidates/{id}/export` starts
//! one, `GET /v1/admin/exports/{job}` tells how far it is, `GET …/archive` downloads it,
//! `DELETE` removes it. Over the API an export is always encrypted to the requester (an age
//! recipient or a passphrase), so the archive kiroku keeps until it is fetched is never in
//! the clear: `<data_dir>/exports/<job>.tar.age`, 0600. Jobs live in this process's memory;
//! a restart forgets them (their files are removed at the next start of an export).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::auth::Operator;
use super::body::StrictJson;
use super::{ApiError, AppState, blocking};
use crate::ids::CandidateId;
use crate::subject::{ExportProgress, ExportReport, Sealing};

/// Where one export job stands.
#[derive(Clone, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub(super) enum Job {
    Running {
        candidate: CandidateId,
        #[serde(flatten)]
        progress: ExportProgress,
    },
    Done {
        candidate: CandidateId,
        #[serde(flatten)]
        report: ExportReport,
        bytes: u64,
    },
    Failed {
        candidate: CandidateId,
        error: String,
        message: String,
    },
}

/// The export jobs of this process, by id.
pub(super) type Jobs = Arc<Mutex<HashMap<String, Job>>>;

fn set(jobs: &Jobs, id: &str, job: Job) {
    jobs.lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id.to_string(), job);
}

fn get(jobs: &Jobs, id: &str) -> Option<Job> {
    jobs.lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(id)
        .cloned()
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ExportBody {
    /// An age X25519 recipient (`age1…`) of the requester.
    age_recipient: Option<String>,
    /// Or a passphrase the requester chose.
    passphrase: Option<String>,
}

fn folder(s: &AppState) -> PathBuf {
    s.app.data_dir().join("exports")
}

/// A job id is 32 hex digits: it can never name a file outside the exports folder.
fn archive_path(s: &AppState, job: &str) -> Result<PathBuf, ApiError> {
    if job.len() != 32 || !job.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_export",
            "unknown export job",
        ));
    }
    Ok(folder(s).join(format!("{job}.tar.age")))
}

/// `POST /v1/admin/candidates/{id}/export`: 202 with the job's id and where to follow it.
#[utoipa::path(
    post,
    path = "/v1/admin/candidates/{id}/export",
    tag = "rights",
    params(("id" = String, Path, description = "the id the path names (candidate, interview or request)")),
    request_body = ExportBody,
    responses((status = 202, description = "the export job"), super::error::ErrorBody),
    security(("operator_token" = []), ("session_cookie" = []))
)]
pub(super) async fn start(
    _: Operator,
    State(s): State<AppState>,
    Path(id): Path<String>,
    StrictJson(b): StrictJson<ExportBody>,
) -> Result<Response, ApiError> {
    let c = CandidateId::parse(&id)?;
    let sealing = match (b.age_recipient, b.passphrase) {
        (Some(r), None) => Sealing::recipient(&r)?,
        (None, Some(p)) if p.chars().count() >= 12 => Sealing::Passphrase(p.into()),
        (None, Some(_)) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_field",
                "`passphrase`: at least 12 characters",
            ));
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "encryption_required",
                "an export over the API is encrypted to its requester: give exactly one of \
                 `age_recipient` or `passphrase`",
            ));
        }
    };
    let job = crate::util::secret::random_hex(16).map_err(|e| ApiError::internal(&e))?;
    let path = archive_path(&s, &job)?;
    // The candidate is checked before the job starts, so an unknown or erased one is a
    // plain 404 or 410 here.
    let (app, dir, known) = (s.app.clone(), folder(&s), known_jobs(&s.exports));
    blocking(move || {
        forget_stale(&dir, &known);
        if app.catalog.candidate(&c)?.is_none() {
            return Err(crate::subject::SubjectError::UnknownCandidate.into());
        }
        if app.catalog.erased_at(&c)?.is_some() {
            return Err(crate::consent::ConsentError::CandidateErased.into());
        }
        Ok::<_, ApiError>(())
    })
    .await?;
    set(
        &s.exports,
        &job,
        Job::Running {
            candidate: c,
            progress: ExportProgress::default(),
        },
    );
    let (app, jobs, id) = (s.app.clone(), s.exports.clone(), job.clone());
    std::thread::Builder::new()
        .name("subject-export".into())
        .spawn(move || run(app, jobs, id, c, sealing, path))
        .map_err(|e| ApiError::internal(&e))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"job": job, "status_url": format!("/v1/admin/exports/{job}")})),
    )
        .into_response())
}

fn known_jobs(jobs: &Jobs) -> Vec<String> {
    jobs.lock()
        .unwrap_or_else(|p| p.into_inner())
        .keys()
        .cloned()
        .collect()
}

/// Removes archives no job of this process knows (left by an earlier run): they could never
/// be fetched.
fn forget_stale(dir: &std::path::Path, known: &[String]) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let job = name.trim_end_matches(".tar.age");
        if !known.iter().any(|k| k == job) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The job's thread: writes the encrypted archive, then records how it went.
fn run(
    app: Arc<crate::app::Kiroku>,
    jobs: Jobs,
    job: String,
    c: CandidateId,
    sealing: Sealing,
    path: PathBuf,
) {
    let written = (|| {
        std::fs::create_dir_all(path.parent().unwrap_or(&path))
            .map_err(|e| crate::subject::SubjectError::Export(e.to_string()))?;
        let file = std::fs::File::create_new(&path)
            .map_err(|e| crate::subject::SubjectError::Export(e.to_string()))?;
        let mut out = std::io::BufWriter::new(file);
        let report = crate::subject::export(
            &app,
            &c,
            &mut out,
            &sealing,
            &mut |p| {
                set(
                    &jobs,
                    &job,
                    Job::Running {
                        candidate: c,
                        progress: p,
                    },
                )
            },
            &crate::audit::Actor::Operator,
        )?;
        let file = out
            .into_inner()
            .map_err(|e| crate::subject::SubjectError::Export(e.to_string()))?;
        file.sync_all()
            .map_err(|e| crate::subject::SubjectError::Export(e.to_string()))?;
        Ok::<_, crate::subject::SubjectError>(report)
    })();
    match written {
        Ok(report) => {
            let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            set(
                &jobs,
                &job,
                Job::Done {
                    candidate: c,
                    report,
                    bytes,
                },
            );
        }
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            let api = ApiError::from(e);
            set(
                &jobs,
                &job,
                Job::Failed {
                    candidate: c,
                    error: api.code.to_string(),
                    message: api.message,
                },
            );
        }
    }
}

/// `GET /v1/admin/exports/{job}`
#[utoipa::path(
    get,
    path = "/v1/admin/exports/{job}",
    tag = "rights",
    params(("job" = String, Path, description = "an export job id")),
    responses((status = 200, description = "the job's progress or report"), super::error::ErrorBody),
    security(("operator_token" = []), ("session_cookie" = []))
)]
pub(super) async fn status(
    _: Operator,
    State(s): State<AppState>,
    Path(job): Path<String>,
) -> Result<Response, ApiError> {
    archive_path(&s, &job)?;
    let found = get(&s.exports, &job).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_export",
            "unknown export job",
        )
    })?;
    Ok(Json(found).into_response())
}

/// `GET /v1/admin/exports/{job}/archive`: the encrypted archive, once the job is done.
#[utoipa::path(
    get,
    path = "/v1/admin/exports/{job}/archive",
    tag = "rights",
    params(("job" = String, Path, description = "an export job id")),
    responses((status = 200, description = "the encrypted archive (.tar.age)"), super::error::ErrorBody),
    security(("operator_token" = []), ("session_cookie" = []))
)]
pub(super) async fn archive(
    _: Operator,
    State(s): State<AppState>,
    Path(job): Path<String>,
) -> Result<Response, ApiError> {
    let path = archive_path(&s, &job)?;
    let Some(Job::Done {
        candidate, bytes, ..
    }) = get(&s.exports, &job)
    else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "export_not_ready",
            "the export is not done (see its status)",
        ));
    };
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let chunks = futures_util::stream::unfold(file, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, bytes.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"kiroku-export-{candidate}.tar.age\""),
            ),
        ],
        Body::from_stream(chunks),
    )
        .into_response())
}

/// `DELETE /v1/admin/exports/{job}`: removes the archive and forgets the job.
#[utoipa::path(
    delete,
    path = "/v1/admin/exports/{job}",
    tag = "rights",
    params(("job" = String, Path, description = "an export job id")),
    responses((status = 204, description = "removed"), super::error::ErrorBody),
    security(("operator_token" = []), ("session_cookie" = []))
)]
pub(super) async fn remove(
    _: Operator,
    State(s): State<AppState>,
    Path(job): Path<String>,
) -> Result<Response, ApiError> {
    let path = archive_path(&s, &job)?;
    if matches!(get(&s.exports, &job), Some(Job::Running { .. })) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "export_running",
            "the export is still being written",
        ));
    }
    let removed = s
        .exports
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&job);
    if removed.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_export",
            "unknown export job",
        ));
    }
    blocking(move || match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ApiError::internal(&e)),
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
