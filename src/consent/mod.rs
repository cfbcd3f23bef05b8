//! Consent: what a candidate allowed, and the one point that decides every release.
//!
//! - [`Scope`] (from [`crate::vocab`]): what a candidate consents to (`record`, `analyze`, `share.recording:<recruiter>`,
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

pub use decision::{Basis, Item, LegalBasis, Proof, Refusal};
pub use ledger::{
    Circumstances, Clerk, GrantRequest, Granted, Ledger, Method, PAPER_ORIGIN, Standing,
    WithdrawRequest, Withdrawal, check_external_ref,
};
pub use state::ConsentState;

use crate::catalog::CatalogError;
pub use crate::vocab::{Scope, ScopeError};

/// Why a consent operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    #[error(transparent)]
    Scope(#[from] ScopeError),
    #[error("unknown candidate")]
    UnknownCandidate,
    #[error("the candidate was erased; nothing of theirs is kept or recorded any more")]
    CandidateErased,
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
    #[error(
        "`{0}` sends the candidate's data to others: the candidate grants it in their own \
         session (POST /v1/candidates/{{id}}/sessions gives the link), or an operator records \
         a signed paper form"
    )]
    CandidateSessionRequired(String),
    #[error(
        "`{0}` recorded by an operator must be a paper form with its reference \
         (method paper, --reference)"
    )]
    PaperReferenceRequired(String),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    #[error(transparent)]
    Id(#[from] crate::ids::IdError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

impl ConsentError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        use ConsentError::*;
        match self {
            Scope(ScopeError::Unknown(_)) => "unknown_scope",
            Scope(ScopeError::NeedsRecipient(_)) => "recipient_required",
            Scope(ScopeError::NeedsCountry) => "country_required",
            Scope(ScopeError::Unexpected(_)) => "unexpected_recipient_or_country",
            Scope(ScopeError::Id(_)) => "invalid_id",
            UnknownCandidate => "unknown_candidate",
            CandidateErased => "candidate_erased",
            NothingToWithdraw(_) => "nothing_to_withdraw",
            UnknownConsent(_) => "unknown_consent",
            UnknownRecruiter(_) => "unknown_recruiter",
            UnknownNotice(_) => "unknown_notice",
            NoNotice => "no_notice_registered",
            NoticeExists(_) => "notice_exists",
            Invalid { .. } => "invalid_field",
            NoReference => "reference_required",
            CandidateSessionRequired(_) => "candidate_session_required",
            PaperReferenceRequired(_) => "paper_reference_required",
            Id(_) => "invalid_id",
            Audit(_) | Catalog(_) => "internal",
        }
    }
}
