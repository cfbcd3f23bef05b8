//! The consent ledger: append-only grant and withdraw events per candidate, and the current
//! state derived from them. Capture asks it one question, [`Ledger::allows_record`], at the
//! start of a stream and again at every segment boundary, so a withdrawal applies to the very
//! next decision.

use std::fmt;

use crate::catalog::{Catalog, CatalogError, ConsentEventRow};
use crate::ids::{CandidateId, CountryCode, RecruiterHandle};

/// Why a consent operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    #[error(
        "unknown scope `{0}` (known: record, analyze, share.recording, share.analysis, transfer, improve)"
    )]
    UnknownScope(String),
    #[error("scope `{0}` needs --recipient (a recruiter handle)")]
    NeedsRecipient(&'static str),
    #[error("scope `transfer` needs --country (e.g. US)")]
    NeedsCountry,
    #[error("scope `{0}` takes no recipient or country")]
    Unexpected(&'static str),
    #[error("unknown candidate")]
    UnknownCandidate,
    #[error("there is no standing `{0}` consent to withdraw")]
    NothingToWithdraw(String),
    #[error(transparent)]
    Id(#[from] crate::ids::IdError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// What a candidate can consent to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    Record,
    Analyze,
    ShareRecording(RecruiterHandle),
    ShareAnalysis(RecruiterHandle),
    Transfer(CountryCode),
    Improve,
}

impl Scope {
    /// Builds a scope from its name and the recipient or country it needs.
    pub fn parse(
        name: &str,
        recipient: Option<&str>,
        country: Option<&str>,
    ) -> Result<Scope, ConsentError> {
        let none = |s: &'static str, scope: Scope| {
            if recipient.is_some() || country.is_some() {
                Err(ConsentError::Unexpected(s))
            } else {
                Ok(scope)
            }
        };
        let recipient_of = |s: &'static str| -> Result<RecruiterHandle, ConsentError> {
            if country.is_some() {
                return Err(ConsentError::Unexpected(s));
            }
            Ok(RecruiterHandle::parse(
                recipient.ok_or(ConsentError::NeedsRecipient(s))?,
            )?)
        };
        match name {
            "record" => none("record", Scope::Record),
            "analyze" => none("analyze", Scope::Analyze),
            "improve" => none("improve", Scope::Improve),
            "share.recording" => Ok(Scope::ShareRecording(recipient_of("share.recording")?)),
            "share.analysis" => Ok(Scope::ShareAnalysis(recipient_of("share.analysis")?)),
            "transfer" => {
                if recipient.is_some() {
                    return Err(ConsentError::Unexpected("transfer"));
                }
                Ok(Scope::Transfer(CountryCode::parse(
                    country.ok_or(ConsentError::NeedsCountry)?,
                )?))
            }
            other => Err(ConsentError::UnknownScope(other.chars().take(40).collect())),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Scope::Record => "record",
            Scope::Analyze => "analyze",
            Scope::ShareRecording(_) => "share.recording",
            Scope::ShareAnalysis(_) => "share.analysis",
            Scope::Transfer(_) => "transfer",
            Scope::Improve => "improve",
        }
    }

    fn recipient(&self) -> Option<String> {
        match self {
            Scope::ShareRecording(r) | Scope::ShareAnalysis(r) => Some(r.to_string()),
            _ => None,
        }
    }

    fn country(&self) -> Option<String> {
        match self {
            Scope::Transfer(c) => Some(c.to_string()),
            _ => None,
        }
    }
}

/// `record`, `share.recording:acme`, `transfer:US`: the form used in tags.
impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.recipient(), self.country()) {
            (Some(r), _) => write!(f, "{}:{r}", self.name()),
            (_, Some(c)) => write!(f, "{}:{c}", self.name()),
            _ => f.write_str(self.name()),
        }
    }
}

/// The ledger over the catalog's consent events.
pub struct Ledger<'a> {
    catalog: &'a Catalog,
}

impl<'a> Ledger<'a> {
    pub fn new(catalog: &'a Catalog) -> Ledger<'a> {
        Ledger { catalog }
    }

    /// Appends a grant; returns the event id.
    pub fn grant(&self, candidate: &CandidateId, scope: &Scope) -> Result<String, ConsentError> {
        self.append(candidate, scope, "grant")
    }

    /// Appends a withdrawal of a standing consent; returns the event id.
    pub fn withdraw(&self, candidate: &CandidateId, scope: &Scope) -> Result<String, ConsentError> {
        if !self.current(candidate)?.contains(scope) {
            return Err(ConsentError::NothingToWithdraw(scope.to_string()));
        }
        self.append(candidate, scope, "withdraw")
    }

    fn append(
        &self,
        candidate: &CandidateId,
        scope: &Scope,
        action: &str,
    ) -> Result<String, ConsentError> {
        if self.catalog.candidate(candidate)?.is_none() {
            return Err(ConsentError::UnknownCandidate);
        }
        let id = format!("ce_{}", uuid::Uuid::new_v4().simple());
        self.catalog.append_consent_event(&ConsentEventRow {
            id: id.clone(),
            candidate: *candidate,
            action: action.into(),
            scope: scope.name().into(),
            recipient: scope.recipient(),
            country: scope.country(),
            at: crate::util::now_rfc3339(),
        })?;
        Ok(id)
    }

    /// The scopes standing now: each scope's last event is a grant.
    pub fn current(&self, candidate: &CandidateId) -> Result<Vec<Scope>, ConsentError> {
        let mut standing: Vec<Scope> = Vec::new();
        for e in self.catalog.consent_events(candidate)? {
            let scope = Scope::parse(&e.scope, e.recipient.as_deref(), e.country.as_deref())?;
            standing.retain(|s| *s != scope);
            if e.action == "grant" {
                standing.push(scope);
            }
        }
        Ok(standing)
    }

    /// The capture gate: may media of this candidate be recorded right now?
    pub fn allows_record(&self, candidate: &CandidateId) -> Result<bool, ConsentError> {
        Ok(self.current(candidate)?.contains(&Scope::Record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_scopes_need_a_recipient_and_transfer_needs_a_country() {
        assert!(matches!(
            Scope::parse("share.recording", None, None),
            Err(ConsentError::NeedsRecipient(_))
        ));
        assert!(matches!(
            Scope::parse("transfer", None, None),
            Err(ConsentError::NeedsCountry)
        ));
        assert!(matches!(
            Scope::parse("record", Some("acme"), None),
            Err(ConsentError::Unexpected(_))
        ));
        assert!(matches!(
            Scope::parse("recording", None, None),
            Err(ConsentError::UnknownScope(_))
        ));
        assert_eq!(
            Scope::parse("share.recording", Some("acme"), None)
                .unwrap()
                .to_string(),
            "share.recording:acme"
        );
    }

    #[test]
    fn the_last_event_of_a_scope_decides_and_withdrawing_twice_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(&dir.path().join("c.db")).unwrap();
        let c = cat
            .add_candidate("ref-1", &CountryCode::parse("JP").unwrap())
            .unwrap();
        let l = Ledger::new(&cat);
        assert!(!l.allows_record(&c).unwrap());
        l.grant(&c, &Scope::Record).unwrap();
        assert!(l.allows_record(&c).unwrap());
        l.withdraw(&c, &Scope::Record).unwrap();
        assert!(!l.allows_record(&c).unwrap());
        assert!(matches!(
            l.withdraw(&c, &Scope::Record),
            Err(ConsentError::NothingToWithdraw(_))
        ));
        assert_eq!(cat.consent_events(&c).unwrap().len(), 2);
    }
}
