//! Correction of a candidate's profile (APPI Art. 34, GDPR Art. 16): the external reference,
//! home country and language. The audit entry names the fields corrected, never a value, old
//! or new. A new home country moves nothing by itself: the report names the interviews that
//! now sit in a region abroad without a `transfer` consent for its country, for the operator
//! to act on (ask for the consent, or erase).

use std::sync::Arc;

use super::SubjectError;
use crate::app::Kiroku;
use crate::audit::{Actor, Event};
use crate::consent::{ConsentError, Scope};
use crate::ids::{CandidateId, CountryCode, InterviewId, RegionId};
use crate::vocab::Language;

/// The fields to correct; `None` leaves one as it is.
#[derive(Debug, Clone, Default)]
pub struct Correction {
    pub external_ref: Option<String>,
    pub home_country: Option<CountryCode>,
    pub language: Option<Language>,
}

/// An interview stored outside the candidate's (new) home country with no standing
/// `transfer` consent for the country it is in.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Abroad {
    pub interview: InterviewId,
    pub region: RegionId,
    pub country: CountryCode,
}

/// What a correction changed, and what it leaves for the operator.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CorrectionReport {
    pub candidate: CandidateId,
    pub corrected: Vec<&'static str>,
    /// Interviews that now need a `transfer` consent (or erasure): kiroku did not move them.
    pub needs_transfer_consent: Vec<Abroad>,
}

/// Corrects the candidate's profile; an empty correction is refused.
pub fn correct(
    app: &Arc<Kiroku>,
    candidate: &CandidateId,
    c: &Correction,
    actor: &Actor,
) -> Result<CorrectionReport, SubjectError> {
    super::not_erased(app, candidate)?;
    if let Some(r) = &c.external_ref {
        crate::consent::check_external_ref(r).map_err(SubjectError::Consent)?;
    }
    let corrected: Vec<&'static str> = [
        ("external_ref", c.external_ref.is_some()),
        ("home_country", c.home_country.is_some()),
        ("language", c.language.is_some()),
    ]
    .into_iter()
    .filter_map(|(f, given)| given.then_some(f))
    .collect();
    if corrected.is_empty() {
        return Err(SubjectError::Consent(ConsentError::Invalid {
            field: "correction",
            why: "name at least one of external_ref, home_country, language",
        }));
    }
    app.catalog.correct_candidate(
        candidate,
        c.external_ref.as_deref(),
        c.home_country.as_ref(),
        c.language,
    )?;
    app.audit.record(
        Event::CandidateCorrected {
            candidate: *candidate,
            fields: corrected.clone(),
        },
        actor,
    )?;
    let needs_transfer_consent = match &c.home_country {
        Some(home) => abroad_without_consent(app, candidate, home)?,
        None => Vec::new(),
    };
    Ok(CorrectionReport {
        candidate: *candidate,
        corrected,
        needs_transfer_consent,
    })
}

/// The candidate's interviews in a region outside `home` with no standing `transfer` for
/// that region's country.
fn abroad_without_consent(
    app: &Kiroku,
    candidate: &CandidateId,
    home: &CountryCode,
) -> Result<Vec<Abroad>, SubjectError> {
    let consents = app
        .ledger()
        .state(candidate)
        .map_err(SubjectError::Consent)?;
    let mut out = Vec::new();
    for i in app.catalog.interviews_of_candidate(candidate)? {
        let Some(region) = app.region(&i.region) else {
            continue;
        };
        let country = &region.region.country;
        if country != home
            && consents
                .grant_for(&Scope::Transfer(country.clone()))
                .is_none()
        {
            out.push(Abroad {
                interview: i.id,
                region: i.region.clone(),
                country: country.clone(),
            });
        }
    }
    Ok(out)
}
