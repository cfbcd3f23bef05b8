//! Consent: what a candidate allowed, and the one point that decides every release.
//!
//! - [`Scope`]: the vocabulary (`record`, `analyze`, `share.recording:<recruiter>`,
//!   `share.analysis:<recruiter>`, `transfer:<country>`, `improve`).
//! - [`ledger`]: privacy-notice versions and the append-only grant and withdraw events; the
//!   current state ([`state`]) is replayed from them on every question, so a withdrawal applies
//!   to the very next decision (a segment boundary, a delivery attempt, the next segment of a
//!   download).
//! - [`receipt`]: the signed Kantara consent receipt each grant returns.
//! - [`decision`]: the release decision point, default deny, handing out a [`Proof`] that
//!   release code cannot run without.

pub mod decision;
pub mod ledger;
pub mod receipt;
pub mod state;

use std::fmt;

pub use decision::{Basis, Item, LegalBasis, Proof, Refusal};
pub use ledger::{
    Circumstances, Clerk, GrantRequest, Granted, Ledger, Method, Standing, WithdrawRequest,
    Withdrawal,
};
pub use state::ConsentState;

use crate::catalog::CatalogError;
use crate::ids::{CountryCode, RecruiterHandle};

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
    #[error("this candidate has no consent event `{0}`")]
    UnknownConsent(String),
    #[error("no recruiter `{0}` is registered")]
    UnknownRecruiter(String),
    #[error("no privacy notice `{0}` is registered")]
    UnknownNotice(String),
    #[error("no privacy notice is registered yet; an operator adds one with `kiroku notice add`")]
    NoNotice,
    #[error("privacy notice `{0}` is already registered (notices are immutable; use a new id)")]
    NoticeExists(String),
    #[error("`{field}`: {why}")]
    Invalid {
        field: &'static str,
        why: &'static str,
    },
    #[error("`reference` is required for a legal-exception release")]
    NoReference,
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
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

    pub fn recipient(&self) -> Option<String> {
        match self {
            Scope::ShareRecording(r) | Scope::ShareAnalysis(r) => Some(r.to_string()),
            _ => None,
        }
    }

    pub fn country(&self) -> Option<String> {
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

impl ConsentError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        use ConsentError::*;
        match self {
            UnknownScope(_) => "unknown_scope",
            NeedsRecipient(_) => "recipient_required",
            NeedsCountry => "country_required",
            Unexpected(_) => "unexpected_recipient_or_country",
            UnknownCandidate => "unknown_candidate",
            NothingToWithdraw(_) => "nothing_to_withdraw",
            UnknownConsent(_) => "unknown_consent",
            UnknownRecruiter(_) => "unknown_recruiter",
            UnknownNotice(_) => "unknown_notice",
            NoNotice => "no_notice_registered",
            NoticeExists(_) => "notice_exists",
            Invalid { .. } => "invalid_field",
            NoReference => "reference_required",
            Id(_) => "invalid_id",
            Audit(_) | Catalog(_) => "internal",
        }
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
}
