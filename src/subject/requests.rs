//! Requests a candidate makes from their privacy center (a disclosure, an erasure): kept for
//! the operator to carry out with [`super::export`] or [`super::erase`], audited when made,
//! closed when done.

use super::{SubjectError, not_erased};
use crate::app::Kiroku;
use crate::audit::{Actor, Event};
use crate::catalog::RightsRequestRow;
use crate::ids::CandidateId;
use crate::vocab::RightsRequestKind;

/// Records the candidate's request; the operator sees it in the console and
/// `GET /v1/admin/requests`.
pub fn request(
    app: &Kiroku,
    c: &CandidateId,
    kind: RightsRequestKind,
) -> Result<RightsRequestRow, SubjectError> {
    not_erased(app, c)?;
    let row = RightsRequestRow {
        id: format!("rq_{}", uuid::Uuid::new_v4().simple()),
        candidate_id: *c,
        kind,
        created_at: crate::util::now_rfc3339(),
        closed_at: None,
    };
    app.catalog.insert_rights_request(&row)?;
    app.audit.record_or_warn(
        Event::CandidateRightsRequested {
            candidate: *c,
            request: row.id.clone(),
            kind,
        },
        &Actor::Candidate,
    );
    Ok(row)
}

/// Closes a request the operator carried out; false if none is open under that id.
pub fn close(app: &Kiroku, id: &str) -> Result<bool, SubjectError> {
    Ok(app
        .catalog
        .close_rights_request(id, &crate::util::now_rfc3339())?)
}
