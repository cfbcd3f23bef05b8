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

use super::{ConsentError, Ledger, Scope};
use crate::app::Kiroku;
use crate::audit::Actor;
use crate::catalog::InterviewRow;
use crate::ids::{CandidateId, InterviewId, RecruiterHandle};

/// What is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Item {
    Recording,
    Analysis,
}

impl Item {
    pub fn as_str(&self) -> &'static str {
        match self {
            Item::Recording => "recording",
            Item::Analysis => "analysis",
        }
    }
    /// The share scope this item needs for a recipient.
    pub fn scope(&self, to: &RecruiterHandle) -> Scope {
        match self {
            Item::Recording => Scope::ShareRecording(to.clone()),
            Item::Analysis => Scope::ShareAnalysis(to.clone()),
        }
    }
    pub fn parse(s: &str) -> Option<Item> {
        match s {
            "recording" => Some(Item::Recording),
            "analysis" => Some(Item::Analysis),
            _ => None,
        }
    }
}

/// APPI Art. 27(1)'s exceptions to consent for third-party provision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegalBasis {
    /// Art. 27(1)(i): based on laws and regulations.
    RequiredByLaw,
    /// Art. 27(1)(ii): to protect a person's life, body or property, consent hard to obtain.
    LifeBodyProperty,
    /// Art. 27(1)(iii): public health or the sound growth of children, consent hard to obtain.
    PublicHealthOrChildren,
    /// Art. 27(1)(iv): cooperating with a national or local government body's legal duties.
    GovernmentCooperation,
}

impl LegalBasis {
    pub fn as_str(&self) -> &'static str {
        match self {
            LegalBasis::RequiredByLaw => "required_by_law",
            LegalBasis::LifeBodyProperty => "life_body_property",
            LegalBasis::PublicHealthOrChildren => "public_health_or_children",
            LegalBasis::GovernmentCooperation => "government_cooperation",
        }
    }
    pub fn parse(s: &str) -> Option<LegalBasis> {
        [
            LegalBasis::RequiredByLaw,
            LegalBasis::LifeBodyProperty,
            LegalBasis::PublicHealthOrChildren,
            LegalBasis::GovernmentCooperation,
        ]
        .into_iter()
        .find(|b| b.as_str() == s)
    }
}

/// Why a release was allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "basis", rename_all = "snake_case")]
pub enum Basis {
    /// The standing grant of the matching share scope.
    Consent { consent_event_id: String },
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
    decided_at: String,
    item: PhantomData<I>,
}

/// A proof for an item known only at run time (a delivery of either kind).
#[derive(Debug)]
pub enum AnyProof {
    Recording(Proof<Recording>),
    Analysis(Proof<Analysis>),
}

impl AnyProof {
    pub fn item(&self) -> Item {
        match self {
            AnyProof::Recording(_) => Item::Recording,
            AnyProof::Analysis(_) => Item::Analysis,
        }
    }
    pub fn basis(&self) -> &Basis {
        match self {
            AnyProof::Recording(p) => p.basis(),
            AnyProof::Analysis(p) => p.basis(),
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
            decided_at: crate::util::now_rfc3339(),
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
    pub fn decided_at(&self) -> &str {
        &self.decided_at
    }

    /// Asks again, for a release still under way (the next segment of a download, a delivery
    /// attempt): true while the consent it rests on stands. A legal-exception proof stands
    /// for the release it was made for.
    pub fn still_stands(&self, app: &Kiroku) -> Result<bool, ConsentError> {
        match &self.basis {
            Basis::LegalException { .. } => Ok(true),
            Basis::Consent { consent_event_id } => {
                let to = RecruiterHandle::parse(&self.recipient)?;
                Ok(Ledger::new(app)
                    .standing_grant(&self.candidate, &I::ITEM.scope(&to))?
                    .is_some_and(|g| g.id == *consent_event_id))
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
    /// It was granted and has been withdrawn.
    ShareConsentWithdrawn { scope: String },
    /// Analysis outputs, once the candidate withdrew `analyze`.
    AnalyzeConsentWithdrawn,
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotRecipientsInterview => "unknown_interview",
            Refusal::NotEnded => "still_capturing",
            Refusal::NoShareConsent { .. } => "no_share_consent",
            Refusal::ShareConsentWithdrawn { .. } => "share_consent_withdrawn",
            Refusal::AnalyzeConsentWithdrawn => "analyze_consent_withdrawn",
        }
    }
}

/// Decides one release of the item `I` to a recruiter; every decision is audited.
pub fn decide<I: Allows>(
    app: &Kiroku,
    to: &RecruiterHandle,
    interview: &InterviewRow,
    _item: I,
) -> Result<Result<Proof<I>, Refusal>, ConsentError> {
    Ok(decide_basis(app, to, interview, I::ITEM)?
        .map(|basis| Proof::new(basis, to.to_string(), interview)))
}

/// [`decide`] for an item known only at run time.
pub fn decide_any(
    app: &Kiroku,
    to: &RecruiterHandle,
    interview: &InterviewRow,
    item: Item,
) -> Result<Result<AnyProof, Refusal>, ConsentError> {
    Ok(match item {
        Item::Recording => decide(app, to, interview, Recording)?.map(AnyProof::Recording),
        Item::Analysis => decide(app, to, interview, Analysis)?.map(AnyProof::Analysis),
    })
}

/// The rules, and the audit entry of their answer: the basis a proof rests on, or a refusal.
fn decide_basis(
    app: &Kiroku,
    to: &RecruiterHandle,
    interview: &InterviewRow,
    item: Item,
) -> Result<Result<Basis, Refusal>, ConsentError> {
    let scope = item.scope(to);
    let outcome = if interview.recruiter != *to {
        Err(Refusal::NotRecipientsInterview)
    } else if !interview.state.is_ended() {
        Err(Refusal::NotEnded)
    } else {
        let ledger = Ledger::new(app);
        // Analysis outputs made under `analyze` are no longer used or released once it is
        // withdrawn, whatever the share consent says.
        let analyze_gone = item == Item::Analysis
            && ledger
                .standing_grant(&interview.candidate, &Scope::Analyze)?
                .is_none();
        match ledger.standing_grant(&interview.candidate, &scope)? {
            Some(_) if analyze_gone => Err(Refusal::AnalyzeConsentWithdrawn),
            Some(grant) => Ok(Basis::Consent {
                consent_event_id: grant.id,
            }),
            None if ledger.ever_granted(&interview.candidate, &scope)? => {
                Err(Refusal::ShareConsentWithdrawn {
                    scope: scope.to_string(),
                })
            }
            None => Err(Refusal::NoShareConsent {
                scope: scope.to_string(),
            }),
        }
    };
    let mut data = serde_json::json!({
        "candidate": interview.candidate.to_string(),
        "interview": interview.id.to_string(),
        "recipient": to.to_string(),
        "item": item.as_str(),
    });
    let event = match &outcome {
        Ok(basis) => {
            data["basis"] = to_json(basis);
            "release.allowed"
        }
        Err(refusal) => {
            data["refusal"] = to_json(refusal);
            "release.refused"
        }
    };
    app.audit
        .record(event, &Actor::Recruiter(to.to_string()), data)?;
    Ok(outcome)
}

/// A basis or refusal as audit data; both are plain enums of strings, so this cannot fail.
fn to_json(v: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// An operator's legal-exception release (APPI Art. 27(1)): never a default, always with a
/// stated basis and a reference (case number, request letter), audited as such.
pub fn legal_exception<I: Allows>(
    app: &Kiroku,
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
    app.audit.record(
        "release.legal_exception",
        &Actor::Operator,
        serde_json::json!({
            "candidate": interview.candidate.to_string(),
            "interview": interview.id.to_string(),
            "recipient": recipient,
            "item": I::ITEM.as_str(),
            "legal_basis": legal_basis.as_str(),
            "reference": reference,
        }),
    )?;
    Ok(proof)
}
