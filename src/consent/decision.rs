//! The release decision point: one function, default deny, decides whether an interview's
//! recording or analysis may go to a recipient, and says why.
//!
//! An allowing decision is a [`Proof`]: it can be built only here (its fields are private), and
//! every release function in [`crate::release`] takes one by value, so no code path hands
//! sealed bytes out without a decision behind it, and none hands them out twice on one. A proof
//! is typed by what it allows ([`Recording`] or [`Analysis`]): a release of the wrong item does
//! not compile. It names the consent event that allowed it, or the legal basis an operator
//! invoked.
//!
//! Plain Rust rather than Cedar: the rules are a handful of lines (the interview is the
//! recipient's, capture is over, the matching `share.*` scope stands for this very recipient,
//! and for analysis `analyze` still stands; else deny),
//! and the answer must carry the consent *event* that allowed it, which a Cedar policy id does
//! not; Cedar would add a policy language, a schema and a large dependency to say the same.
//! When rules grow (per-job scopes, time limits), that trade-off should be revisited.

use std::marker::PhantomData;

use serde::Serialize;

use super::Ledger;
use super::{ConsentError, Scope};
use crate::audit::{Actor, Audit, Event};
use crate::catalog::{Catalog, InterviewRow};
use crate::ids::{CandidateId, CountryCode, InterviewId, RecruiterHandle};

pub use crate::vocab::{Item, LegalBasis};

/// Why a release was allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "basis", rename_all = "snake_case")]
pub enum Basis {
    /// The standing grant of the matching share scope, and, for a recipient in another
    /// country than the candidate's, the standing `transfer` grant for that country.
    Consent {
        consent_event_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        transfer_consent_event_id: Option<String>,
    },
    /// An operator's legal-exception release.
    LegalException {
        legal_basis: LegalBasis,
        reference: String,
    },
}

/// What a [`Proof`] allows: [`Recording`] or [`Analysis`]. Sealed: no other type can be one,
/// so a proof for one item can never be taken for the other.
pub trait Allows: private::Sealed {
    /// The item as recorded in audit entries and provision records.
    const ITEM: Item;
}

mod private {
    pub trait Sealed {}
    impl Sealed for super::Recording {}
    impl Sealed for super::Analysis {}
}

/// A [`Proof`] of this type allows releasing the interview's recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recording;

/// A [`Proof`] of this type allows releasing the interview's analysis outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Analysis;

impl Allows for Recording {
    const ITEM: Item = Item::Recording;
}

impl Allows for Analysis {
    const ITEM: Item = Item::Analysis;
}

/// Proof that the decision point allowed one release of the item `I`. Only this module builds
/// one; it is neither `Clone` nor `Copy`, and the release function it allows takes it by value,
/// so one decision backs one release, of the item it was made for.
///
/// A recording proof releases a recording:
/// ```no_run
/// # use kiroku::consent::{Proof, decision::Recording};
/// fn release(app: &std::sync::Arc<kiroku::app::Kiroku>, proof: Proof<Recording>) {
///     let _ = kiroku::release::prepare_recording(app, proof, None);
/// }
/// ```
/// but not analysis outputs:
/// ```compile_fail
/// # use kiroku::consent::{Proof, decision::Recording};
/// fn release(app: &std::sync::Arc<kiroku::app::Kiroku>, proof: Proof<Recording>) {
///     let _ = kiroku::release::release_analysis(app, proof);
/// }
/// ```
/// and not twice:
/// ```compile_fail
/// # use kiroku::consent::{Proof, decision::Recording};
/// fn release(app: &std::sync::Arc<kiroku::app::Kiroku>, proof: Proof<Recording>) {
///     let _ = kiroku::release::prepare_recording(app, proof, None);
///     let _ = kiroku::release::prepare_recording(app, proof, None);
/// }
/// ```
#[derive(Debug)]
pub struct Proof<I: Allows> {
    basis: Basis,
    recipient: String,
    candidate: CandidateId,
    interview: InterviewId,
    item: PhantomData<I>,
}

impl Basis {
    /// The consent event a release rests on; `None` for a legal exception.
    pub fn consent_event_id(&self) -> Option<&str> {
        match self {
            Basis::Consent {
                consent_event_id, ..
            } => Some(consent_event_id),
            Basis::LegalException { .. } => None,
        }
    }
}

impl<I: Allows> Proof<I> {
    fn new(basis: Basis, recipient: String, interview: &InterviewRow) -> Proof<I> {
        Proof {
            basis,
            recipient,
            candidate: interview.candidate,
            interview: interview.id,
            item: PhantomData,
        }
    }
    pub fn basis(&self) -> &Basis {
        &self.basis
    }
    pub fn recipient(&self) -> &str {
        &self.recipient
    }
    pub fn candidate(&self) -> &CandidateId {
        &self.candidate
    }
    pub fn interview(&self) -> &InterviewId {
        &self.interview
    }
    pub fn item(&self) -> Item {
        I::ITEM
    }

    /// Asks again, for a release still under way (the next segment of a download, a delivery
    /// attempt): true while the consent it rests on stands. A legal-exception proof stands
    /// for the release it was made for.
    pub fn still_stands(&self, catalog: &Catalog) -> Result<bool, ConsentError> {
        if catalog.erased_at(&self.candidate)?.is_some() {
            return Ok(false);
        }
        match &self.basis {
            Basis::LegalException { .. } => Ok(true),
            Basis::Consent {
                consent_event_id,
                transfer_consent_event_id,
            } => {
                let to = RecruiterHandle::parse(&self.recipient)?;
                let recipient = catalog.recipient(&to)?;
                if recipient.revoked {
                    return Ok(false);
                }
                let consents = Ledger::new(catalog).state(&self.candidate)?;
                let stands =
                    |scope: &Scope, id: &str| consents.grant_for(scope).is_some_and(|g| g.id == id);
                if I::ITEM == Item::Analysis && consents.grant_for(&Scope::Analyze).is_none() {
                    return Ok(false);
                }
                let transfer_stands = match (
                    transfer_consent_event_id,
                    abroad(catalog, recipient.country, &self.candidate)?,
                ) {
                    (Some(id), Some(country)) => stands(&Scope::Transfer(country), id),
                    (None, None) => true,
                    // The recipient's country changed since: decide again.
                    _ => false,
                };
                Ok(transfer_stands && stands(&I::ITEM.scope(&to), consent_event_id))
            }
        }
    }
}

/// Why a release was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Refusal {
    /// The interview was not run for this recipient: to it, the interview does not exist.
    NotRecipientsInterview,
    /// Capture is still under way; nothing is released before it ends.
    NotEnded,
    /// The matching share scope was never granted to this recipient.
    NoShareConsent { scope: String },
    /// It was granted and has been withdrawn (at that time, RFC 3339).
    ShareConsentWithdrawn {
        scope: String,
        withdrawn_at: Option<String>,
    },
    /// Analysis outputs, once the candidate withdrew `analyze`.
    AnalyzeConsentWithdrawn,
    /// The operator revoked the recipient: nothing more goes to it, whatever the consents.
    RecipientRevoked,
    /// The recipient receives data in another country than the candidate's, and the
    /// candidate has no standing `transfer` consent for it (APPI Art. 28).
    NoTransferConsent { country: String },
    /// The candidate was erased: their keys are destroyed, nothing can be released.
    CandidateErased,
    /// The recording was deleted when its retention ran out.
    RecordingExpired,
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotRecipientsInterview => "unknown_interview",
            Refusal::NotEnded => "still_capturing",
            Refusal::NoShareConsent { .. } => "no_share_consent",
            Refusal::ShareConsentWithdrawn { .. } => "share_consent_withdrawn",
            Refusal::AnalyzeConsentWithdrawn => "analyze_consent_withdrawn",
            Refusal::RecipientRevoked => "recipient_revoked",
            Refusal::NoTransferConsent { .. } => "no_transfer_consent",
            Refusal::CandidateErased => "candidate_erased",
            Refusal::RecordingExpired => "recording_expired",
        }
    }
}

/// Decides one release of the item `I` to a recruiter; every decision is audited.
pub fn decide<I: Allows>(
    catalog: &Catalog,
    audit: &Audit,
    to: &RecruiterHandle,
    interview: &InterviewRow,
    _item: I,
) -> Result<Result<Proof<I>, Refusal>, ConsentError> {
    Ok(decide_basis(catalog, audit, to, interview, I::ITEM)?
        .map(|basis| Proof::new(basis, to.to_string(), interview)))
}

/// The recipient's country (`to_country`) when it is not the candidate's home country, and
/// so needs the candidate's `transfer` consent for it. A recruiter registered before
/// countries were recorded has none: taken as the controller's, at home.
fn abroad(
    catalog: &Catalog,
    to_country: Option<CountryCode>,
    candidate: &CandidateId,
) -> Result<Option<CountryCode>, ConsentError> {
    let Some(country) = to_country else {
        return Ok(None);
    };
    let home = catalog
        .candidate(candidate)?
        .map(|c| c.home_country)
        .ok_or(crate::catalog::CatalogError::Corrupt(format!(
            "candidate {candidate} has an interview but no row"
        )))?;
    Ok((country != home).then_some(country))
}

/// The rules, and the audit entry of their answer: the basis a proof rests on, or a refusal.
fn decide_basis(
    catalog: &Catalog,
    audit: &Audit,
    to: &RecruiterHandle,
    interview: &InterviewRow,
    item: Item,
) -> Result<Result<Basis, Refusal>, ConsentError> {
    let outcome = rules(catalog, to, interview, item)?;
    audit_decision(audit, to, interview, item, &outcome)?;
    Ok(outcome)
}

/// The decision's answer without recording it, for what may be offered (the recruiter's
/// list): the same rules as [`decide`], so nothing is offered that would then be refused.
pub fn would_allow(
    catalog: &Catalog,
    to: &RecruiterHandle,
    interview: &InterviewRow,
    item: Item,
) -> Result<Option<Basis>, ConsentError> {
    Ok(rules(catalog, to, interview, item)?.ok())
}

/// What a release of `item` would get now, the refusal included, without recording a
/// decision: what the recruiter's viewer shows beside an interview (nothing is released by
/// asking, so nothing is audited).
pub fn would_get(
    catalog: &Catalog,
    to: &RecruiterHandle,
    interview: &InterviewRow,
    item: Item,
) -> Result<Result<Basis, Refusal>, ConsentError> {
    rules(catalog, to, interview, item)
}

/// The rules of a release of `item` of `interview` to `to`.
fn rules(
    catalog: &Catalog,
    to: &RecruiterHandle,
    interview: &InterviewRow,
    item: Item,
) -> Result<Result<Basis, Refusal>, ConsentError> {
    let scope = item.scope(to);
    let recipient = catalog.recipient(to)?;
    Ok(if interview.recruiter != *to {
        Err(Refusal::NotRecipientsInterview)
    } else if catalog.erased_at(&interview.candidate)?.is_some() {
        Err(Refusal::CandidateErased)
    } else if item == Item::Recording && catalog.recording_expired_at(&interview.id)?.is_some() {
        Err(Refusal::RecordingExpired)
    } else if recipient.revoked {
        Err(Refusal::RecipientRevoked)
    } else if !interview.state.is_ended() {
        Err(Refusal::NotEnded)
    } else {
        let consents = Ledger::new(catalog).state(&interview.candidate)?;
        // Analysis outputs made under `analyze` are no longer used or released once it is
        // withdrawn, whatever the share consent says.
        let analyze_gone = item == Item::Analysis && consents.grant_for(&Scope::Analyze).is_none();
        match consents.grant_for(&scope) {
            Some(_) if analyze_gone => Err(Refusal::AnalyzeConsentWithdrawn),
            Some(grant) => match abroad(catalog, recipient.country, &interview.candidate)? {
                None => Ok(Basis::Consent {
                    consent_event_id: grant.id.clone(),
                    transfer_consent_event_id: None,
                }),
                Some(country) => match consents.grant_for(&Scope::Transfer(country.clone())) {
                    Some(transfer) => Ok(Basis::Consent {
                        consent_event_id: grant.id.clone(),
                        transfer_consent_event_id: Some(transfer.id.clone()),
                    }),
                    None => Err(Refusal::NoTransferConsent {
                        country: country.to_string(),
                    }),
                },
            },
            None if consents.ever_granted(&scope) => Err(Refusal::ShareConsentWithdrawn {
                scope: scope.to_string(),
                withdrawn_at: consents.withdrawn_at(&scope).map(str::to_owned),
            }),
            None => Err(Refusal::NoShareConsent {
                scope: scope.to_string(),
            }),
        }
    })
}

/// The record of a decision's answer in the audit log, and its count in the metrics.
fn audit_decision(
    audit: &Audit,
    to: &RecruiterHandle,
    interview: &InterviewRow,
    item: Item,
    outcome: &Result<Basis, Refusal>,
) -> Result<(), ConsentError> {
    let event = match outcome {
        Ok(basis) => Event::ReleaseAllowed {
            candidate: interview.candidate,
            interview: interview.id,
            recipient: to.to_string(),
            item,
            basis: to_json(basis),
        },
        Err(refusal) => Event::ReleaseRefused {
            candidate: Some(interview.candidate),
            interview: interview.id,
            recipient: to.to_string(),
            item: Some(item),
            refusal: to_json(refusal),
        },
    };
    audit.record(event, &Actor::Recruiter(to.to_string()))?;
    let counted = match outcome {
        Ok(_) => "allowed",
        Err(refusal) => refusal.code(),
    };
    crate::metrics::METRICS
        .release_decisions
        .with_label_values(&[counted])
        .inc();
    Ok(())
}

/// A basis or refusal as audit data; both are plain enums of strings, so this cannot fail.
fn to_json(v: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// An operator's legal-exception release (APPI Art. 27(1)): never a default, always with a
/// stated basis and a reference (case number, request letter), audited as such.
pub fn legal_exception<I: Allows>(
    audit: &Audit,
    interview: &InterviewRow,
    recipient: &str,
    _item: I,
    legal_basis: LegalBasis,
    reference: &str,
) -> Result<Proof<I>, ConsentError> {
    let printable = |s: &str, max: usize| {
        !s.trim().is_empty() && s.len() <= max && !s.chars().any(|c| c.is_control())
    };
    if !printable(reference, 500) {
        return Err(ConsentError::NoReference);
    }
    if !printable(recipient, 200) {
        return Err(ConsentError::Invalid {
            field: "recipient",
            why: "the receiving body's name, 1 to 200 printable characters",
        });
    }
    let proof = Proof::new(
        Basis::LegalException {
            legal_basis,
            reference: reference.into(),
        },
        recipient.into(),
        interview,
    );
    audit.record(
        Event::ReleaseLegalException {
            candidate: interview.candidate,
            interview: interview.id,
            recipient: recipient.into(),
            item: I::ITEM,
            legal_basis,
            reference: reference.into(),
        },
        &Actor::Operator,
    )?;
    Ok(proof)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::audit::CheckpointPolicy;
    use crate::catalog::{ConsentEventRow, InterviewState};
    use crate::ids::{CountryCode, RegionId};
    use crate::signing::OperatorKey;

    /// A catalog and an audit log in a temporary folder, and one candidate's interview for
    /// `acme`, ended.
    struct Fixture {
        _dir: tempfile::TempDir,
        catalog: Catalog,
        audit: Audit,
        interview: InterviewRow,
        events: u32,
    }

    fn acme() -> RecruiterHandle {
        RecruiterHandle::parse("acme").unwrap()
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let catalog = Catalog::open(&dir.path().join("catalog.db")).unwrap();
            let signer = OperatorKey::load_or_create(&dir.path().join("op.pk8")).unwrap();
            let audit = Audit::open(
                &dir.path().join("audit"),
                Arc::new(signer),
                CheckpointPolicy {
                    every_entries: 1000,
                    every_seconds: 3600,
                    publish_dir: None,
                    sinks: Vec::new(),
                },
            )
            .unwrap();
            let candidate = catalog
                .add_candidate("c-1", &CountryCode::parse("JP").unwrap())
                .unwrap();
            let interview = InterviewRow {
                id: InterviewId::new_random(),
                candidate,
                recruiter: acme(),
                job_ref: None,
                region: RegionId::parse("jp").unwrap(),
                content_type: "video/webm".into(),
                profile: "webm".into(),
                state: InterviewState::Finished,
                key_version: 1,
                created_at: crate::util::now_rfc3339(),
                ended_at: Some(crate::util::now_rfc3339()),
                bytes_in: 0,
                end_reason: None,
            };
            Fixture {
                _dir: dir,
                catalog,
                audit,
                interview,
                events: 0,
            }
        }

        /// Appends a grant or withdrawal of `scope`; returns the event's id.
        fn consent(&mut self, action: &str, scope: &Scope) -> String {
            self.events += 1;
            let id = format!("ce_{}", self.events);
            self.catalog
                .append_consent_event(&ConsentEventRow::bare(
                    &id,
                    self.interview.candidate,
                    crate::vocab::ConsentAction::parse(action).unwrap(),
                    scope.clone(),
                ))
                .unwrap();
            id
        }

        fn decide<I: Allows>(&self, to: &RecruiterHandle, item: I) -> Result<Proof<I>, Refusal> {
            decide(&self.catalog, &self.audit, to, &self.interview, item).unwrap()
        }

        /// The audit log's entries, oldest first.
        fn audited(&self) -> Vec<serde_json::Value> {
            self.audit
                .entry_lines()
                .unwrap()
                .iter()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }
    }

    #[test]
    fn another_recruiters_interview_is_refused_as_unknown() {
        let mut f = Fixture::new();
        let other = RecruiterHandle::parse("globex").unwrap();
        f.consent("grant", &Scope::ShareRecording(other.clone()));
        assert_eq!(
            f.decide(&other, Recording).unwrap_err(),
            Refusal::NotRecipientsInterview
        );
    }

    #[test]
    fn an_interview_still_being_captured_is_refused() {
        let mut f = Fixture::new();
        f.consent("grant", &Scope::ShareRecording(acme()));
        for state in [InterviewState::Created, InterviewState::Capturing] {
            f.interview.state = state;
            assert_eq!(f.decide(&acme(), Recording).unwrap_err(), Refusal::NotEnded);
        }
    }

    #[test]
    fn without_share_consent_a_release_is_refused_naming_the_scope() {
        let mut f = Fixture::new();
        // Consent to share with someone else, or to share the other item, is not enough.
        f.consent(
            "grant",
            &Scope::ShareRecording(RecruiterHandle::parse("globex").unwrap()),
        );
        f.consent("grant", &Scope::ShareAnalysis(acme()));
        assert_eq!(
            f.decide(&acme(), Recording).unwrap_err(),
            Refusal::NoShareConsent {
                scope: "share.recording:acme".into()
            }
        );
    }

    #[test]
    fn withdrawn_share_consent_is_refused_as_withdrawn() {
        let mut f = Fixture::new();
        let scope = Scope::ShareRecording(acme());
        f.consent("grant", &scope);
        f.consent("withdraw", &scope);
        assert_eq!(
            f.decide(&acme(), Recording).unwrap_err(),
            Refusal::ShareConsentWithdrawn {
                scope: "share.recording:acme".into(),
                withdrawn_at: Some("2026-11-29T10:00:00+09:00".into()),
            }
        );
    }

    #[test]
    fn analysis_is_refused_once_analyze_is_withdrawn_whatever_the_share_consent() {
        let mut f = Fixture::new();
        f.consent("grant", &Scope::Analyze);
        f.consent("grant", &Scope::ShareAnalysis(acme()));
        assert!(f.decide(&acme(), Analysis).is_ok());
        f.consent("withdraw", &Scope::Analyze);
        assert_eq!(
            f.decide(&acme(), Analysis).unwrap_err(),
            Refusal::AnalyzeConsentWithdrawn
        );
    }

    #[test]
    fn an_allowed_release_names_the_consent_event_it_stands_on() {
        let mut f = Fixture::new();
        let scope = Scope::ShareRecording(acme());
        f.consent("grant", &scope);
        f.consent("withdraw", &scope);
        let regranted = f.consent("grant", &scope);
        let proof = f.decide(&acme(), Recording).unwrap();
        assert_eq!(
            proof.basis(),
            &Basis::Consent {
                consent_event_id: regranted.clone(),
                transfer_consent_event_id: None,
            }
        );
        assert_eq!(proof.recipient(), "acme");
        assert_eq!(proof.interview(), &f.interview.id);
        assert_eq!(proof.item(), Item::Recording);
        assert!(proof.still_stands(&f.catalog).unwrap());
        f.consent("withdraw", &scope);
        assert!(!proof.still_stands(&f.catalog).unwrap());
        // A new grant is a new consent: the proof made under the old one does not revive.
        f.consent("grant", &scope);
        assert!(!proof.still_stands(&f.catalog).unwrap());
    }

    #[test]
    fn every_decision_is_audited_with_its_basis_or_refusal() {
        let mut f = Fixture::new();
        let granted = f.consent("grant", &Scope::ShareRecording(acme()));
        f.decide(&acme(), Recording).unwrap();
        f.decide(&acme(), Analysis).unwrap_err();
        let log = f.audited();
        assert_eq!(log.len(), 2, "{log:?}");
        assert_eq!(log[0]["event"], "release.allowed");
        assert_eq!(log[0]["data"]["item"], "recording");
        assert_eq!(log[0]["data"]["recipient"], "acme");
        assert_eq!(log[0]["data"]["basis"]["consent_event_id"], granted);
        assert_eq!(log[1]["event"], "release.refused");
        assert_eq!(log[1]["data"]["item"], "analysis");
        assert_eq!(log[1]["data"]["refusal"]["reason"], "no_share_consent");
    }

    #[test]
    fn a_legal_exception_needs_a_reference_and_is_audited_as_such() {
        let f = Fixture::new();
        let basis = LegalBasis::RequiredByLaw;
        assert!(matches!(
            legal_exception(&f.audit, &f.interview, "court", Recording, basis, " "),
            Err(ConsentError::NoReference)
        ));
        let proof =
            legal_exception(&f.audit, &f.interview, "court", Recording, basis, "case 1").unwrap();
        assert!(proof.still_stands(&f.catalog).unwrap());
        let log = f.audited();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0]["event"], "release.legal_exception");
        assert_eq!(log[0]["data"]["reference"], "case 1");
    }
}
