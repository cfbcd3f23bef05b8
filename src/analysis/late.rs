//! Late analysis: interviews captured before the candidate granted `analyze` are analysed
//! when the grant comes, off the path of the call that recorded it.
//!
//! The consent ledger only announces the grant ([`Happened::ConsentChanged`]); this listener
//! finds the candidate's ended interviews that have no analysis output at all and analyses
//! each from its stored segments, exactly as a streamed interview is analysed. An interview
//! with outputs (complete, failed or stopped by a withdrawal) is left as it is: a new grant
//! does not redo work that an earlier grant already did.

use std::sync::{Arc, Mutex};

use super::{AnalysisError, analyze_stored};
use crate::app::Kiroku;
use crate::catalog::ConsentEventRow;
use crate::events::Happened;
use crate::ids::CandidateId;
use crate::vocab::{ConsentAction, Scope};

/// One late analysis at a time in a process, so two quick grants cannot analyse one
/// interview twice.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Listens for `analyze` grants; wired once by [`crate::node::open`].
pub fn listen(app: &Arc<Kiroku>) {
    let weak = Arc::downgrade(app);
    app.events.listen(move |what| {
        let Happened::ConsentChanged(e) = what else {
            return;
        };
        if !is_analyze_grant(e) {
            return;
        }
        let Some(app) = weak.upgrade() else {
            return;
        };
        let candidate = e.candidate;
        let worker = app.clone();
        app.background.spawn(
            format!("late-analysis-{}", &candidate.to_string()[..8]),
            move || {
                if let Err(err) = analyze_captured(&worker, &candidate) {
                    tracing::error!(error = %err, candidate = %candidate, "late analysis failed");
                }
            },
        );
    });
}

fn is_analyze_grant(e: &ConsentEventRow) -> bool {
    e.action == ConsentAction::Grant && e.scope == Scope::Analyze
}

/// Analyses every ended interview of the candidate that has no analysis output yet.
fn analyze_captured(app: &Arc<Kiroku>, candidate: &CandidateId) -> Result<(), AnalysisError> {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    for interview in app.catalog.interviews_of_candidate(candidate)? {
        if !interview.state.is_ended()
            || !app.catalog.analysis_outputs(&interview.id)?.is_empty()
            || app.catalog.segments(&interview.id)?.is_empty()
        {
            continue;
        }
        tracing::info!(interview = %interview.id, "analysing an interview captured before the analyze grant");
        // `analyze_stored` asks the ledger itself: a withdrawal that came in the meantime
        // means nothing is analysed. One interview that fails (its store down, a bad segment)
        // does not keep the candidate's others from being analysed.
        if let Err(e) = analyze_stored(app, &interview) {
            tracing::error!(interview = %interview.id, error = %e, "late analysis of an interview failed");
        }
    }
    Ok(())
}
