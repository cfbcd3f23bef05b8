//! Interviews driven through the library, the path `kiroku ingest` and the HTTP API share.

use std::sync::Arc;

use kiroku::app::Kiroku;
use kiroku::capture::{self, Capture, CaptureError, CreatedInterview};
use kiroku::ids::{CandidateId, RecruiterHandle};

/// A created interview of `c` for the recruiter `acme`, sent as `content_type`.
pub fn create(
    app: &Arc<Kiroku>,
    c: &CandidateId,
    content_type: &str,
) -> Result<CreatedInterview, CaptureError> {
    capture::create_interview(
        app,
        c,
        &RecruiterHandle::parse("acme").unwrap(),
        None,
        content_type,
    )
}

/// A capture under way: an interview [`create`]d, its ingest token spent, the capture started.
pub fn start(
    app: &Arc<Kiroku>,
    c: &CandidateId,
    content_type: &str,
) -> Result<(CreatedInterview, Capture), CaptureError> {
    let created = create(app, c, content_type)?;
    capture::spend_ingest_token(app, &created.interview_id, &created.ingest_token)?;
    let cap = Capture::start(
        app,
        &created.interview_id,
        kiroku::capture::Transport::Upload,
    )?;
    Ok((created, cap))
}

/// Asserts that an interview's status (`GET /v1/interviews/{id}`) still lists every segment
/// that was acknowledged (`acked`, by index), from the first on.
pub fn assert_keeps_acknowledged(status: &serde_json::Value, acked: &[u64]) {
    let indexes: Vec<u64> = status["segments"]
        .as_array()
        .unwrap_or_else(|| panic!("no segments in {status}"))
        .iter()
        .map(|s| s["index"].as_u64().unwrap())
        .collect();
    assert!(indexes.starts_with(acked), "{indexes:?} against {acked:?}");
}

/// The status `fetch` reads once the interview is no longer capturing (another node stopped
/// it after its lease, say); fails after `within`.
pub async fn once_not_capturing(
    within: std::time::Duration,
    fetch: impl AsyncFn() -> serde_json::Value,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let v = fetch().await;
        if v["state"] != "capturing" {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still capturing after {within:?}: {v}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}
