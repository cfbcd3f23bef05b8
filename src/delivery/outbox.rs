//! The outbox: what is queued for delivery, and what a withdrawal cancels. It follows what the
//! ledger, capture and analysis announce (wired in [`super::listen`]); every row it writes is
//! decided again by the decision point when the sender attempts it.

use super::BoxError;
use crate::app::Kiroku;
use crate::audit::{Actor, Event};
use crate::catalog::{ConsentEventRow, InterviewRow, InterviewState, OutboxRow};
use crate::consent::Scope;
use crate::consent::decision::Item;
use crate::ids::RecruiterHandle;
use crate::vocab::{AnalysisStatus, ConsentAction, OutboxKind, OutboxState};

pub(super) fn consent_changed(app: &Kiroku, e: &ConsentEventRow) {
    if let Err(err) = on_consent_changed(app, e) {
        tracing::error!(error = %err, consent_event = %e.id, "outbox could not follow a consent change");
    }
    app.wake_deliveries();
}

pub(super) fn on_consent_changed(app: &Kiroku, e: &ConsentEventRow) -> Result<(), BoxError> {
    let scope = &e.scope;
    let (Scope::ShareRecording(to) | Scope::ShareAnalysis(to)) = scope else {
        return Ok(());
    };
    if e.action == ConsentAction::Grant {
        for i in app.catalog.interviews_of_candidate(&e.candidate)? {
            if i.recruiter != *to || i.state != InterviewState::Finished {
                continue;
            }
            match scope {
                Scope::ShareRecording(_) => {
                    enqueue(app, to, OutboxKind::RecordingReady, &i, scope)?
                }
                Scope::ShareAnalysis(_) if has_analysis(app, &i)? => {
                    enqueue(app, to, OutboxKind::AnalysisReady, &i, scope)?
                }
                _ => {}
            }
        }
        return Ok(());
    }
    let cancelled = app
        .catalog
        .cancel_deliveries(&e.candidate, scope, "consent withdrawn")?;
    if !cancelled.is_empty() {
        app.audit.record_or_warn(
            Event::DeliveriesCancelled {
                deliveries: cancelled,
                candidate: e.candidate,
                consent_event: e.id.clone(),
            },
            &Actor::System,
        );
    }
    let received = app.catalog.has_received(&e.candidate, to.as_str())?
        || app.catalog.was_delivered(&e.candidate, to, scope)?;
    // Queued even without a webhook: then it fails at once, so the outbox shows the operator
    // a recipient who must be told by other means.
    if received {
        app.catalog.enqueue(&pending(
            to.clone(),
            OutboxKind::ConsentWithdrawn,
            e.candidate,
            None,
            scope.clone(),
            e.at.clone(),
        ))?;
    }
    Ok(())
}

/// Tells every recipient that received an erased candidate's data; queued even without a
/// webhook, like a withdrawal's notice, so the outbox shows whom to tell by other means.
pub(super) fn candidate_erased(app: &Kiroku, c: &crate::ids::CandidateId) {
    let result = (|| -> Result<(), BoxError> {
        for handle in app.catalog.recipients_of(c)? {
            let to = RecruiterHandle::parse(&handle)?;
            // The notice is about whatever the recipient received under its share scopes.
            let scope = Scope::ShareRecording(to.clone());
            app.catalog.enqueue(&pending(
                to,
                OutboxKind::CandidateErased,
                *c,
                None,
                scope,
                crate::util::now_rfc3339(),
            ))?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        tracing::error!(error = %e, candidate = %c, "could not queue the erasure notices");
    }
    app.wake_deliveries();
}

/// Queues a `*.ready` delivery of `item` to the interview's recruiter while its share scope
/// stands; a failure to queue is logged, never passed back to capture or analysis.
pub(super) fn ready(app: &Kiroku, row: &InterviewRow, item: Item, kind: OutboxKind) {
    let result = (|| -> Result<(), BoxError> {
        let scope = item.scope(&row.recruiter);
        if app
            .ledger()
            .standing_grant(&row.candidate, &scope)?
            .is_some()
        {
            enqueue(app, &row.recruiter, kind, row, &scope)?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        tracing::error!(error = %e, interview = %row.id, kind = kind.as_str(), "could not queue a delivery");
    }
    app.wake_deliveries();
}

fn has_analysis(app: &Kiroku, i: &InterviewRow) -> Result<bool, BoxError> {
    Ok(app
        .catalog
        .analysis_outputs(&i.id)?
        .iter()
        .any(|o| o.segment.is_none() && o.status == AnalysisStatus::Ok))
}

fn enqueue(
    app: &Kiroku,
    to: &RecruiterHandle,
    kind: OutboxKind,
    i: &InterviewRow,
    scope: &Scope,
) -> Result<(), BoxError> {
    if app.catalog.webhook(to)?.is_none() {
        return Ok(());
    }
    app.catalog.enqueue(&pending(
        to.clone(),
        kind,
        i.candidate,
        Some(i.id),
        scope.clone(),
        crate::util::now_rfc3339(),
    ))?;
    Ok(())
}

/// A delivery waiting for its first attempt.
fn pending(
    recruiter: RecruiterHandle,
    kind: OutboxKind,
    candidate: crate::ids::CandidateId,
    interview: Option<crate::ids::InterviewId>,
    scope: Scope,
    created_at: String,
) -> OutboxRow {
    OutboxRow {
        id: new_id(),
        recruiter,
        kind,
        candidate,
        interview,
        scope,
        state: OutboxState::Pending,
        attempts: 0,
        next_at: 0,
        last_error: None,
        created_at,
        done_at: None,
    }
}

pub(super) fn new_id() -> String {
    format!("dl_{}", uuid::Uuid::new_v4().simple())
}
