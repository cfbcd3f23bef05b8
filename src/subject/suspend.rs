//! Suspension of use and of provision (APPI Art. 35; GDPR Art. 18 and 21): one request
//! withdraws every standing grant of the chosen kind, each as its own recorded withdrawal, so
//! that what follows a withdrawal follows here too: capture and analysis stop at their next
//! boundary, pending deliveries are cancelled, and every recipient that received data is
//! sent `consent.withdrawn`. The candidate grants again to lift it.

use std::sync::Arc;

use super::SubjectError;
use crate::app::Kiroku;
use crate::audit::{Actor, Event};
use crate::consent::{Circumstances, ConsentError, Scope, WithdrawRequest, Withdrawal};
use crate::ids::CandidateId;

/// Which uses a suspension stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Suspension {
    /// `record`, `analyze`, `improve`: kiroku's own use.
    #[serde(rename = "use")]
    pub use_: bool,
    /// Every `share.*`: provision to recruiters.
    pub provision: bool,
}

impl Suspension {
    fn covers(&self, scope: &Scope) -> bool {
        match scope {
            Scope::Record | Scope::Analyze | Scope::Improve => self.use_,
            Scope::ShareRecording(_) | Scope::ShareAnalysis(_) => self.provision,
            // Where data may be kept and sent is not a use of it: a transfer consent stays.
            Scope::Transfer(_) => false,
        }
    }
}

/// What a suspension withdrew.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SuspensionReport {
    pub candidate: CandidateId,
    #[serde(flatten)]
    pub suspended: Suspension,
    /// The withdrawals recorded, `(scope, withdrawal event id)`.
    pub withdrawn: Vec<(String, String)>,
}

/// Suspends `what` for `candidate`: withdraws every standing grant it covers, as `how` says
/// the request came in; a suspension with nothing standing to withdraw changes nothing.
pub fn suspend(
    app: &Arc<Kiroku>,
    candidate: &CandidateId,
    what: Suspension,
    how: &Circumstances,
    actor: &Actor,
) -> Result<SuspensionReport, SubjectError> {
    super::not_erased(app, candidate)?;
    let standing = app.ledger().current(candidate).map_err(consent)?;
    let mut withdrawn = Vec::new();
    for s in standing {
        let scope = Scope::parse_tag(&s.scope).map_err(|e| consent(e.into()))?;
        if !what.covers(&scope) {
            continue;
        }
        let req = WithdrawRequest {
            target: Withdrawal::Grant(s.consent_id.clone()),
            how: how.clone(),
        };
        match app.clerk().withdraw(candidate, &req, actor) {
            Ok(event) => withdrawn.push((s.scope, event.id)),
            // Withdrawn meanwhile by the candidate themselves: what was asked for holds.
            Err(ConsentError::NothingToWithdraw(_)) => {}
            Err(e) => return Err(consent(e)),
        }
    }
    app.audit.record(
        Event::CandidateSuspended {
            candidate: *candidate,
            use_: what.use_,
            provision: what.provision,
            withdrawals: withdrawn.iter().map(|(_, id)| id.clone()).collect(),
        },
        actor,
    )?;
    Ok(SuspensionReport {
        candidate: *candidate,
        suspended: what,
        withdrawn,
    })
}

fn consent(e: ConsentError) -> SubjectError {
    match e {
        ConsentError::UnknownCandidate => SubjectError::UnknownCandidate,
        other => SubjectError::Consent(other),
    }
}
