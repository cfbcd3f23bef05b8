//! The consent state: which scopes stand now, derived by replaying a candidate's grant and
//! withdraw events in the order they were appended.
//!
//! Nothing is cached between questions: every gate (a segment boundary, a release, a delivery
//! attempt) replays the events afresh, so a withdrawal applies to the very next decision. The
//! replay is a pure function of the events, which keeps its rules testable without a catalog.

use super::Scope;
use crate::catalog::ConsentEventRow;
use crate::vocab::ConsentAction;

/// A candidate's consents as their events leave them.
#[derive(Debug, Default)]
pub struct ConsentState {
    /// Each standing scope with the grant it stands on, oldest grant first.
    standing: Vec<(Scope, ConsentEventRow)>,
    /// Every scope granted at some time, standing or not.
    ever_granted: Vec<Scope>,
    /// When each scope that does not stand was last withdrawn (so a refusal can say when).
    withdrawn_at: Vec<(Scope, String)>,
}

impl ConsentState {
    /// Replays events, oldest first. The newest event of a scope decides it: a grant makes it
    /// stand (on that grant), a withdrawal ends it.
    pub fn replay(events: impl IntoIterator<Item = ConsentEventRow>) -> ConsentState {
        let mut state = ConsentState::default();
        for e in events {
            let scope = e.scope.clone();
            state.standing.retain(|(s, _)| *s != scope);
            state.withdrawn_at.retain(|(s, _)| *s != scope);
            if e.action == ConsentAction::Withdraw {
                state.withdrawn_at.push((scope.clone(), e.at.clone()));
            }
            if e.action == ConsentAction::Grant {
                if !state.ever_granted.contains(&scope) {
                    state.ever_granted.push(scope.clone());
                }
                state.standing.push((scope, e));
            }
        }
        state
    }

    /// The grant a scope stands on now, if it stands.
    pub fn grant_for(&self, scope: &Scope) -> Option<&ConsentEventRow> {
        self.standing
            .iter()
            .find(|(s, _)| s == scope)
            .map(|(_, e)| e)
    }

    /// Whether a scope was ever granted (so a refusal can say "withdrawn" rather than "never").
    pub fn ever_granted(&self, scope: &Scope) -> bool {
        self.ever_granted.contains(scope)
    }

    /// When a scope that does not stand now was withdrawn (RFC 3339), if it was.
    pub fn withdrawn_at(&self, scope: &Scope) -> Option<&str> {
        self.withdrawn_at
            .iter()
            .find(|(s, _)| s == scope)
            .map(|(_, at)| at.as_str())
    }

    /// The standing scopes, oldest grant first.
    pub fn scopes(&self) -> impl Iterator<Item = &Scope> {
        self.standing.iter().map(|(s, _)| s)
    }

    /// The standing scopes with their grants, oldest grant first.
    pub fn into_standing(self) -> Vec<(Scope, ConsentEventRow)> {
        self.standing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CandidateId, RecruiterHandle};

    fn event(n: u32, action: &str, scope: &str, recipient: Option<&str>) -> ConsentEventRow {
        ConsentEventRow::bare(
            &format!("ce_{n}"),
            CandidateId::from_bytes([7; 16]),
            ConsentAction::parse(action).unwrap(),
            Scope::parse(scope, recipient, None).unwrap(),
        )
    }

    fn acme() -> Scope {
        Scope::ShareRecording(RecruiterHandle::parse("acme").unwrap())
    }

    #[test]
    fn no_events_leave_nothing_standing_and_nothing_ever_granted() {
        let s = ConsentState::replay(Vec::new());
        assert_eq!(s.scopes().count(), 0);
        assert!(s.grant_for(&Scope::Record).is_none());
        assert!(!s.ever_granted(&Scope::Record));
    }

    #[test]
    fn a_grant_stands_on_the_event_that_granted_it() {
        let s = ConsentState::replay(vec![event(1, "grant", "record", None)]);
        assert_eq!(s.grant_for(&Scope::Record).unwrap().id, "ce_1");
        assert!(s.grant_for(&Scope::Analyze).is_none());
    }

    #[test]
    fn a_withdrawal_ends_the_scope_but_it_was_still_granted_once() {
        let s = ConsentState::replay(vec![
            event(1, "grant", "record", None),
            event(2, "withdraw", "record", None),
        ]);
        assert!(s.grant_for(&Scope::Record).is_none());
        assert!(s.ever_granted(&Scope::Record));
    }

    #[test]
    fn a_grant_after_a_withdrawal_stands_on_the_new_grant() {
        let s = ConsentState::replay(vec![
            event(1, "grant", "record", None),
            event(2, "withdraw", "record", None),
            event(3, "grant", "record", None),
        ]);
        assert_eq!(s.grant_for(&Scope::Record).unwrap().id, "ce_3");
    }

    #[test]
    fn share_scopes_are_told_apart_by_their_recipient() {
        let s = ConsentState::replay(vec![
            event(1, "grant", "share.recording", Some("acme")),
            event(2, "grant", "share.recording", Some("globex")),
            event(3, "withdraw", "share.recording", Some("globex")),
        ]);
        assert_eq!(s.grant_for(&acme()).unwrap().id, "ce_1");
        let globex = Scope::ShareRecording(RecruiterHandle::parse("globex").unwrap());
        assert!(s.grant_for(&globex).is_none());
        assert!(s.ever_granted(&globex));
    }

    #[test]
    fn standing_scopes_are_listed_oldest_grant_first() {
        let s = ConsentState::replay(vec![
            event(1, "grant", "record", None),
            event(2, "grant", "analyze", None),
            event(3, "grant", "record", None),
        ]);
        let scopes: Vec<String> = s.scopes().map(|s| s.to_string()).collect();
        assert_eq!(scopes, ["analyze", "record"]);
    }
}
