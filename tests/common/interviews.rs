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
