//! Erasure of one candidate, in an order that never leaves their data readable half-way:
//! mark them erased (every capture, analysis and release refuses them from then on), let
//! streaming interviews stop at their next boundary, destroy the keys and rows in one
//! transaction, delete the objects everywhere, record it, and announce it so recipients are
//! told. Running it again finishes an erasure that was cut short (a store that was down).
//! The keyring notes the erasure in its ledger, and [`reapply_ledger`] erases again at start
//! any candidate a restored data dir brought back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::SubjectError;
use crate::app::Kiroku;
use crate::audit::{Actor, Event};
use crate::catalog::InterviewState;
use crate::events::Happened;
use crate::ids::{CandidateId, InterviewId};

/// What an erasure did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ErasureReport {
    pub candidate: CandidateId,
    pub erased_at: String,
    /// The candidate had been erased before: this run only finished what was left.
    pub already_erased: bool,
    pub interviews: usize,
    pub keys_destroyed: usize,
    pub objects_deleted: usize,
    pub deliveries_cancelled: usize,
    /// Recipients that received the candidate's data, now told (`candidate.erased`).
    pub recipients_told: Vec<String>,
    /// Interviews still streaming when the wait ran out: they stop at their next boundary
    /// and store nothing more (their key is gone); a second `erase` deletes anything left.
    pub still_stopping: Vec<InterviewId>,
}

/// Erases `candidate` (see the module docs); blocking: waits up to a few segment lengths
/// for their streaming interviews to stop.
pub fn erase(
    app: &Arc<Kiroku>,
    candidate: &CandidateId,
    actor: &Actor,
) -> Result<ErasureReport, SubjectError> {
    if app.catalog.candidate(candidate)?.is_none() {
        return Err(SubjectError::UnknownCandidate);
    }
    let before = app.catalog.erased_at(candidate)?;
    app.catalog
        .mark_erased(candidate, &crate::util::now_rfc3339())?;
    let still_stopping = wait_for_captures(app, candidate)?;
    let rows = app.catalog.erase_candidate_rows(candidate)?;
    let erased_at = app
        .catalog
        .erased_at(candidate)?
        .unwrap_or_else(crate::util::now_rfc3339);
    let keys_destroyed = rows.keys_destroyed + app.keyring.erase(candidate, &erased_at)?;
    let mut objects_deleted = 0;
    for r in app.regions.values() {
        objects_deleted +=
            r.store
                .erase_candidate(candidate)
                .map_err(|source| SubjectError::Store {
                    region: r.region.id.to_string(),
                    source,
                })?;
    }
    let recipients_told = app.catalog.recipients_of(candidate)?;
    app.audit.record(
        Event::CandidateErased {
            candidate: *candidate,
            interviews: rows.interviews.clone(),
            keys_destroyed,
            objects_deleted,
            segments: rows.segments,
            analysis_outputs: rows.analysis_outputs,
            download_links: rows.download_links,
            deliveries_cancelled: rows.deliveries_cancelled.clone(),
            recipients_told: recipients_told.clone(),
        },
        actor,
    )?;
    tracing::info!(candidate = %candidate, keys = keys_destroyed, objects = objects_deleted, "candidate erased");
    app.events.announce(Happened::CandidateErased(*candidate));
    Ok(ErasureReport {
        candidate: *candidate,
        erased_at,
        already_erased: before.is_some(),
        interviews: rows.interviews.len(),
        keys_destroyed,
        objects_deleted,
        deliveries_cancelled: rows.deliveries_cancelled.len(),
        recipients_told,
        still_stopping,
    })
}

/// Erases again every candidate the keyring's erasure ledger names whom the catalog does not
/// know as erased (a data dir restored from a backup taken before the erasure): their keys
/// are already gone; this forgets the rest. Failures are logged: start goes on.
pub fn reapply_ledger(app: &Arc<Kiroku>) {
    let erased = match app.keyring.erased() {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "the erasure ledger could not be read");
            return;
        }
    };
    for c in erased {
        let known = matches!(app.catalog.candidate(&c), Ok(Some(_)));
        if known && matches!(app.catalog.erased_at(&c), Ok(None)) {
            match erase(app, &c, &Actor::System) {
                Ok(_) => {
                    tracing::warn!(candidate = %c, "a restored data dir held an erased candidate: erased again")
                }
                Err(e) => {
                    tracing::error!(candidate = %c, error = %e, "an erased candidate could not be erased again")
                }
            }
        }
    }
}

/// Waits until none of the candidate's interviews is being captured (each stops at its next
/// segment boundary, where it finds the candidate erased), for at most three segment lengths
/// and ten seconds; returns those still capturing then.
fn wait_for_captures(
    app: &Kiroku,
    candidate: &CandidateId,
) -> Result<Vec<InterviewId>, SubjectError> {
    let bound = Duration::from_secs_f64(app.config.segment.target_seconds * 3.0 + 10.0);
    let start = Instant::now();
    loop {
        let capturing: Vec<InterviewId> = app
            .catalog
            .interviews_of_candidate(candidate)?
            .into_iter()
            .filter(|i| i.state == InterviewState::Capturing)
            .map(|i| i.id)
            .collect();
        if capturing.is_empty() || start.elapsed() >= bound {
            return Ok(capturing);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
