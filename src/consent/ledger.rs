//! The consent ledger: privacy-notice versions, and per candidate an append-only list of grant
//! and withdraw events (scope, recipient or country, notice version, time with zone, method,
//! origin, language).
//!
//! Two sides: [`Ledger`] answers questions (it needs only the catalog; the answer is replayed
//! from the events every time, see [`super::state`]), and [`Clerk`] records changes: it
//! checks them, signs the receipt, appends the event, writes the audit entry and announces
//! [`Happened::ConsentChanged`], so push delivery cancels what a withdrawal stops and tells
//! recipients that already received data, without the ledger knowing delivery exists.

use super::state::ConsentState;
use super::{ConsentError, Scope, receipt};
use crate::audit::{Actor, Audit, ConsentChange, Event};
use crate::catalog::{Catalog, ConsentEventRow, NoticeRow};
use crate::config::Controller;
use crate::events::{Announcer, Happened};
use crate::ids::{CandidateId, CountryCode};
use crate::signing::OperatorKey;
use crate::vocab::ConsentAction;

pub use crate::vocab::Method;

/// The facts every event carries besides its scope.
#[derive(Debug, Clone)]
pub struct Circumstances {
    pub method: Method,
    /// Who reported it: the front-end's name, or `kiroku-cli`.
    pub origin: String,
    /// Language the candidate was addressed in (BCP 47); a grant defaults to its notice's.
    pub language: Option<String>,
    /// Zone offset to record the time in; default the controller's.
    pub time_zone: Option<String>,
}

/// A grant to record.
#[derive(Debug, Clone)]
pub struct GrantRequest {
    pub scope: Scope,
    /// The notice version the grant was given under; default the newest registered.
    pub notice: Option<String>,
    pub how: Circumstances,
}

/// What a withdrawal names.
#[derive(Debug, Clone)]
pub enum Withdrawal {
    /// The grant event (its id) whose scope is withdrawn.
    Grant(String),
    /// The scope itself.
    Scope(Scope),
}

#[derive(Debug, Clone)]
pub struct WithdrawRequest {
    pub target: Withdrawal,
    pub how: Circumstances,
}

/// A recorded grant and its signed receipt.
#[derive(Debug, Clone)]
pub struct Granted {
    pub event: ConsentEventRow,
    pub receipt: serde_json::Value,
}

/// A scope standing now and the grant it stands on.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Standing {
    pub scope: String,
    pub consent_id: String,
    pub notice_id: Option<String>,
    pub granted_at: String,
}

/// The read side: what a candidate consented to, replayed from the events.
pub struct Ledger<'a> {
    catalog: &'a Catalog,
}

impl<'a> Ledger<'a> {
    pub fn new(catalog: &'a Catalog) -> Ledger<'a> {
        Ledger { catalog }
    }

    /// The candidate's consents now.
    pub fn state(&self, candidate: &CandidateId) -> Result<ConsentState, ConsentError> {
        // An erased candidate's events stay as the record of what provisions rested on, but
        // nothing stands on them any more: no capture, analysis or release.
        if self.catalog.erased_at(candidate)?.is_some() {
            return Ok(ConsentState::replay(Vec::new()));
        }
        Ok(ConsentState::replay(
            self.catalog.consent_events(candidate)?,
        ))
    }

    /// Every event of a candidate, oldest first.
    pub fn history(&self, candidate: &CandidateId) -> Result<Vec<ConsentEventRow>, ConsentError> {
        known_candidate(self.catalog, candidate)?;
        Ok(self.catalog.consent_events(candidate)?)
    }

    /// The scopes standing now, each with the grant it stands on.
    pub fn current(&self, candidate: &CandidateId) -> Result<Vec<Standing>, ConsentError> {
        Ok(self
            .state(candidate)?
            .into_standing()
            .into_iter()
            .map(|(s, e)| Standing {
                scope: s.to_string(),
                consent_id: e.id,
                notice_id: e.notice_id,
                granted_at: e.at,
            })
            .collect())
    }

    /// The scopes standing now.
    pub fn current_scopes(&self, candidate: &CandidateId) -> Result<Vec<Scope>, ConsentError> {
        Ok(self.state(candidate)?.scopes().cloned().collect())
    }

    /// The grant a scope stands on now, if it stands.
    pub fn standing_grant(
        &self,
        candidate: &CandidateId,
        scope: &Scope,
    ) -> Result<Option<ConsentEventRow>, ConsentError> {
        Ok(self.state(candidate)?.grant_for(scope).cloned())
    }

    /// The capture gate: may media of this candidate be recorded right now?
    pub fn allows_record(&self, candidate: &CandidateId) -> Result<bool, ConsentError> {
        Ok(self.standing_grant(candidate, &Scope::Record)?.is_some())
    }
}

/// The write side: records candidates, notices, grants and withdrawals, each audited and
/// announced once committed.
pub struct Clerk<'a> {
    pub catalog: &'a Catalog,
    pub audit: &'a Audit,
    /// Signs each grant's receipt.
    pub signer: &'a OperatorKey,
    /// Named in receipts; its time zone dates events that name none.
    pub controller: &'a Controller,
    pub announcer: &'a Announcer,
}

impl<'a> Clerk<'a> {
    fn ledger(&self) -> Ledger<'a> {
        Ledger::new(self.catalog)
    }

    /// Registers a candidate. The external reference stays in the catalog; the audit log and
    /// traces get the pseudonymous id only.
    pub fn register_candidate(
        &self,
        external_ref: &str,
        home: &CountryCode,
        actor: &Actor,
    ) -> Result<CandidateId, ConsentError> {
        check_external_ref(external_ref)?;
        let id = self.catalog.add_candidate(external_ref, home)?;
        self.audit.record_or_warn(
            Event::CandidateRegistered {
                candidate: id,
                home_country: home.clone(),
            },
            actor,
        );
        Ok(id)
    }

    /// Registers a privacy-notice version. Notices are immutable: an id is used once.
    pub fn register_notice(
        &self,
        id: &str,
        language: &str,
        url: &str,
        text_sha256: &str,
    ) -> Result<NoticeRow, ConsentError> {
        let ok_id = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !ok_id {
            return Err(ConsentError::Invalid {
                field: "id",
                why: "1 to 64 of A-Z, a-z, 0-9, '.', '_', '-'",
            });
        }
        check_language(language)?;
        if !(url.starts_with("https://") || url.starts_with("http://"))
            || url.len() > 2000
            || url.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ConsentError::Invalid {
                field: "url",
                why: "an http(s) URL of at most 2000 characters",
            });
        }
        if text_sha256.len() != 64
            || !text_sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(ConsentError::Invalid {
                field: "text_sha256",
                why: "64 lowercase hex digits (SHA-256 of the notice text)",
            });
        }
        let row = NoticeRow {
            id: id.into(),
            language: language.into(),
            url: url.into(),
            text_sha256: text_sha256.into(),
            registered_at: crate::util::now_rfc3339(),
        };
        if !self.catalog.insert_notice(&row)? {
            return Err(ConsentError::NoticeExists(id.into()));
        }
        self.audit.record_or_warn(
            Event::NoticeRegistered {
                notice: id.into(),
                language: language.into(),
                text_sha256: text_sha256.into(),
            },
            &Actor::Operator,
        );
        Ok(row)
    }

    /// Records a grant, signs its receipt, and announces it.
    pub fn grant(
        &self,
        candidate: &CandidateId,
        req: &GrantRequest,
        actor: &Actor,
    ) -> Result<Granted, ConsentError> {
        known_candidate(self.catalog, candidate)?;
        self.known_recipient(&req.scope)?;
        given_by_whom_it_may_be(&req.scope, &req.how, actor)?;
        let notice = match &req.notice {
            Some(id) => self
                .catalog
                .notice(id)?
                .ok_or_else(|| ConsentError::UnknownNotice(id.chars().take(64).collect()))?,
            None => self
                .catalog
                .notices()?
                .pop()
                .ok_or(ConsentError::NoNotice)?,
        };
        let mut event = self.event(candidate, &req.scope, ConsentAction::Grant, &req.how)?;
        event.notice_id = Some(notice.id.clone());
        if event.language.is_none() {
            event.language = Some(notice.language.clone());
        }
        let receipt = receipt::build(self.controller, self.signer, &event, &notice);
        event.receipt = Some(crate::signing::canonical_json(&receipt));
        self.catalog.append_consent_event(&event)?;
        // The event is committed: the listeners follow it and the audit records it, and
        // neither may undo it (a failure of either is logged).
        self.announcer
            .announce(Happened::ConsentChanged(event.clone()));
        self.audit(Event::ConsentGranted, &event, actor);
        Ok(Granted { event, receipt })
    }

    /// Records a withdrawal of a standing consent and announces it.
    pub fn withdraw(
        &self,
        candidate: &CandidateId,
        req: &WithdrawRequest,
        actor: &Actor,
    ) -> Result<ConsentEventRow, ConsentError> {
        known_candidate(self.catalog, candidate)?;
        let (scope, grant) = match &req.target {
            Withdrawal::Scope(s) => {
                let g = self
                    .ledger()
                    .standing_grant(candidate, s)?
                    .ok_or_else(|| ConsentError::NothingToWithdraw(s.to_string()))?;
                (s.clone(), g)
            }
            Withdrawal::Grant(id) => {
                let e = self
                    .catalog
                    .consent_event(id)?
                    .filter(|e| e.candidate == *candidate && e.action == ConsentAction::Grant)
                    .ok_or_else(|| ConsentError::UnknownConsent(id.chars().take(64).collect()))?;
                let scope = e.scope.clone();
                // Only the grant that stands can be withdrawn by its id: a retried request
                // naming an old grant must not withdraw a newer one.
                let g = self
                    .ledger()
                    .standing_grant(candidate, &scope)?
                    .filter(|g| g.id == e.id)
                    .ok_or_else(|| ConsentError::NothingToWithdraw(scope.to_string()))?;
                (scope, g)
            }
        };
        let mut event = self.event(candidate, &scope, ConsentAction::Withdraw, &req.how)?;
        event.withdraws = Some(grant.id.clone());
        event.notice_id = grant.notice_id.clone();
        // Checked and written as one: of two withdrawals racing for one grant, one is recorded.
        if !self.catalog.append_withdrawal(&event)? {
            return Err(ConsentError::NothingToWithdraw(scope.to_string()));
        }
        self.announcer
            .announce(Happened::ConsentChanged(event.clone()));
        self.audit(Event::ConsentWithdrawn, &event, actor);
        Ok(event)
    }

    fn known_recipient(&self, scope: &Scope) -> Result<(), ConsentError> {
        if let Scope::ShareRecording(r) | Scope::ShareAnalysis(r) = scope
            && !self.catalog.recruiter_exists(r)?
        {
            return Err(ConsentError::UnknownRecruiter(r.to_string()));
        }
        Ok(())
    }

    fn event(
        &self,
        candidate: &CandidateId,
        scope: &Scope,
        action: ConsentAction,
        how: &Circumstances,
    ) -> Result<ConsentEventRow, ConsentError> {
        let zone = how
            .time_zone
            .as_deref()
            .unwrap_or(&self.controller.time_zone);
        let offset = crate::util::parse_offset(zone).ok_or(ConsentError::Invalid {
            field: "time_zone",
            why: "an offset like +09:00 or Z",
        })?;
        if let Some(l) = &how.language {
            check_language(l)?;
        }
        if how.origin.is_empty()
            || how.origin.len() > 200
            || how.origin.chars().any(|c| c.is_control())
        {
            return Err(ConsentError::Invalid {
                field: "origin",
                why: "1 to 200 printable characters",
            });
        }
        Ok(ConsentEventRow {
            id: format!("ce_{}", uuid::Uuid::new_v4().simple()),
            candidate: *candidate,
            action,
            scope: scope.clone(),
            at: crate::util::now_rfc3339_in(offset),
            notice_id: None,
            method: Some(how.method),
            origin: Some(how.origin.clone()),
            language: how.language.clone(),
            withdraws: None,
            receipt: None,
        })
    }

    fn audit(&self, what: fn(ConsentChange) -> Event, e: &ConsentEventRow, actor: &Actor) {
        self.audit.record_or_warn(
            what(ConsentChange {
                candidate: e.candidate,
                consent_event: e.id.clone(),
                scope: e.scope.clone(),
                notice: e.notice_id.clone(),
                method: e.method,
                withdraws: e.withdraws.clone(),
            }),
            actor,
        );
    }
}

/// A front-end's reference for a candidate: 1 to 200 printable characters.
pub fn check_external_ref(external_ref: &str) -> Result<(), ConsentError> {
    if external_ref.is_empty()
        || external_ref.len() > 200
        || external_ref.chars().any(|c| c.is_control())
    {
        return Err(ConsentError::Invalid {
            field: "external_ref",
            why: "1 to 200 printable characters",
        });
    }
    Ok(())
}

/// The candidate exists and is not erased (an erased candidate's consents can no longer be
/// given or withdrawn: nothing of theirs is kept to give it to).
fn known_candidate(catalog: &Catalog, c: &CandidateId) -> Result<(), ConsentError> {
    match catalog.candidate(c)? {
        Some(_) if catalog.erased_at(c)?.is_some() => Err(ConsentError::CandidateErased),
        Some(_) => Ok(()),
        None => Err(ConsentError::UnknownCandidate),
    }
}

fn check_language(l: &str) -> Result<(), ConsentError> {
    let ok = (2..=35).contains(&l.len())
        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && l.as_bytes()[0].is_ascii_alphabetic();
    if ok {
        Ok(())
    } else {
        Err(ConsentError::Invalid {
            field: "language",
            why: "a BCP 47 language tag such as ja or en-US",
        })
    }
}

/// The rule for who may record a grant that discloses data (`share.*`, `transfer`): the
/// candidate in their own session, or an operator from a paper form named by its reference
/// (origin `paper:<reference>`). A front-end's service token alone cannot: a leaked service
/// token must not be enough to release a candidate's data.
fn given_by_whom_it_may_be(
    scope: &Scope,
    how: &Circumstances,
    actor: &Actor,
) -> Result<(), ConsentError> {
    if !scope.is_disclosure() {
        return Ok(());
    }
    match actor {
        Actor::Candidate => Ok(()),
        Actor::Operator
            if how.method == Method::Paper
                && how
                    .origin
                    .strip_prefix(PAPER_ORIGIN)
                    .is_some_and(|r| !r.trim().is_empty()) =>
        {
            Ok(())
        }
        Actor::Operator => Err(ConsentError::PaperReferenceRequired(scope.to_string())),
        _ => Err(ConsentError::CandidateSessionRequired(scope.to_string())),
    }
}

/// The origin of a paper form recorded by an operator: `paper:` and the form's reference.
pub const PAPER_ORIGIN: &str = "paper:";
