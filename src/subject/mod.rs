//! The candidate's rights over their data (APPI Art. 33-35, GDPR Art. 15-20), each carried out
//! by an operator in one call: disclosure ([`export`]), erasure ([`erase`]), suspension of
//! use or provision ([`suspend`]) and correction of their profile ([`correct`]); and the
//! retention sweep ([`sweep`]) that keeps data only as long as its purposes need.
//!
//! Erasure is crypto-shredding first: the candidate's wrapped keys are destroyed in every
//! region, so no copy of a sealed object, wherever it went, opens again; then their objects
//! are deleted from every region's store and spool, their segment and analysis rows, tokens
//! and links removed, and pending releases cancelled. What stays is a tombstone (the
//! pseudonymous id, with `erased_at`), their consent events (what provisions rested on) and
//! the provision records the law keeps (APPI Art. 29), none of which holds their external
//! reference or media.

mod correct;
mod erase;
mod export;
pub mod keys;
pub mod requests;
mod retention;
mod suspend;

pub use correct::{Abroad, Correction, CorrectionReport, correct};
pub use erase::{ErasureReport, erase, reapply_ledger};
pub use export::{ExportProgress, ExportReport, Sealing, export};
pub use retention::{Expired, SweepReport, sweep};
pub use suspend::{Suspension, SuspensionReport, suspend};

use crate::catalog::CatalogError;

/// The candidate exists and is not erased: what every request but erasure needs first.
fn not_erased(app: &crate::app::Kiroku, c: &crate::ids::CandidateId) -> Result<(), SubjectError> {
    if app.catalog.candidate(c)?.is_none() {
        return Err(SubjectError::UnknownCandidate);
    }
    if app.catalog.erased_at(c)?.is_some() {
        return Err(SubjectError::Consent(
            crate::consent::ConsentError::CandidateErased,
        ));
    }
    Ok(())
}

/// The `origin` a request relayed by the operator is recorded with: what it was and its
/// reference (a ticket or letter number, never the candidate's name).
pub fn request_origin(what: &str, reference: Option<&str>) -> String {
    match reference {
        Some(r) => format!(
            "operator: {what} request {}",
            r.chars().take(80).collect::<String>()
        ),
        None => format!("operator: {what} request"),
    }
}
use crate::store::StoreError;

/// Why a request about a candidate's data could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum SubjectError {
    #[error("unknown candidate")]
    UnknownCandidate,
    #[error("no region `{0}` is configured")]
    UnknownRegion(String),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("region {region}: {source}")]
    Store { region: String, source: StoreError },
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    #[error(transparent)]
    Keyring(#[from] crate::keyring::KeyringError),
    #[error(transparent)]
    Consent(crate::consent::ConsentError),
    #[error(transparent)]
    Recording(#[from] crate::recording::RecordingError),
    #[error("the export could not be written: {0}")]
    Export(String),
}

impl From<serde_json::Error> for SubjectError {
    fn from(e: serde_json::Error) -> SubjectError {
        SubjectError::Export(e.to_string())
    }
}
