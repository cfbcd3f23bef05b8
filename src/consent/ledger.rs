//! The consent ledger: privacy-notice versions, and per candidate an append-only list of grant
//! and withdraw events (scope, recipient or country, notice version, time with zone, method,
//! origin, language). The current state is derived from the events on every question.
//!
//! Every change is written to the audit log, and the push outbox hears of it at once
//! ([`crate::delivery::consent_changed`]), so a withdrawal cancels deliveries not yet made and
//! tells recipients that already received data.

use serde::Deserialize;

use super::{ConsentError, Scope, receipt};
use crate::app::Kiroku;
use crate::audit::Actor;
use crate::catalog::{ConsentEventRow, NoticeRow};
use crate::ids::CandidateId;

/// How a consent event was collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    WebForm,
    Api,
    Paper,
}

impl Method {
    pub fn as_str(&self) -> &'static str {
        match self {
            Method::WebForm => "web_form",
            Method::Api => "api",
            Method::Paper => "paper",
        }
    }
    pub fn parse(s: &str) -> Result<Method, ConsentError> {
        match s {
            "web_form" => Ok(Method::WebForm),
            "api" => Ok(Method::Api),
            "paper" => Ok(Method::Paper),
            _ => Err(ConsentError::Invalid {
                field: "method",
                why: "one of web_form, api, paper",
            }),
        }
    }
}

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

pub struct Ledger<'a> {
    app: &'a Kiroku,
}

impl<'a> Ledger<'a> {
    pub fn new(app: &'a Kiroku) -> Ledger<'a> {
        Ledger { app }
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
        if !self.app.catalog.insert_notice(&row)? {
            return Err(ConsentError::NoticeExists(id.into()));
        }
        self.app.audit.record_or_warn(
            "notice.registered",
            &Actor::Operator,
            serde_json::json!({"notice": id, "language": language, "text_sha256": text_sha256}),
        );
        Ok(row)
    }

    /// Records a grant, signs its receipt, and tells the outbox.
    pub fn grant(
        &self,
        candidate: &CandidateId,
        req: &GrantRequest,
        actor: &Actor,
    ) -> Result<Granted, ConsentError> {
        self.known_candidate(candidate)?;
        self.known_recipient(&req.scope)?;
        let notice = match &req.notice {
            Some(id) => self
                .app
                .catalog
                .notice(id)?
                .ok_or_else(|| ConsentError::UnknownNotice(id.chars().take(64).collect()))?,
            None => self
                .app
                .catalog
                .notices()?
                .pop()
                .ok_or(ConsentError::NoNotice)?,
        };
        let mut event = self.event(candidate, &req.scope, "grant", &req.how)?;
        event.notice_id = Some(notice.id.clone());
        if event.language.is_none() {
            event.language = Some(notice.language.clone());
        }
        let receipt = receipt::build(self.app, &event, &notice);
        event.receipt = Some(crate::signing::canonical_json(&receipt));
        self.app.catalog.append_consent_event(&event)?;
        // The event is committed: the outbox follows it and the audit records it, and neither
        // may undo it (a failure of either is logged).
        crate::delivery::consent_changed(self.app, &event);
        self.audit("consent.granted", &event, actor);
        Ok(Granted { event, receipt })
    }

    /// Records a withdrawal of a standing consent and tells the outbox.
    pub fn withdraw(
        &self,
        candidate: &CandidateId,
        req: &WithdrawRequest,
        actor: &Actor,
    ) -> Result<ConsentEventRow, ConsentError> {
        self.known_candidate(candidate)?;
        let (scope, grant) = match &req.target {
            Withdrawal::Scope(s) => {
                let g = self
                    .standing_grant(candidate, s)?
                    .ok_or_else(|| ConsentError::NothingToWithdraw(s.to_string()))?;
                (s.clone(), g)
            }
            Withdrawal::Grant(id) => {
                let e = self
                    .app
                    .catalog
                    .consent_event(id)?
                    .filter(|e| e.candidate == *candidate && e.action == "grant")
                    .ok_or_else(|| ConsentError::UnknownConsent(id.chars().take(64).collect()))?;
                let scope = scope_of(&e)?;
                // Only the grant that stands can be withdrawn by its id: a retried request
                // naming an old grant must not withdraw a newer one.
                let g = self
                    .standing_grant(candidate, &scope)?
                    .filter(|g| g.id == e.id)
                    .ok_or_else(|| ConsentError::NothingToWithdraw(scope.to_string()))?;
                (scope, g)
            }
        };
        let mut event = self.event(candidate, &scope, "withdraw", &req.how)?;
        event.withdraws = Some(grant.id.clone());
        event.notice_id = grant.notice_id.clone();
        self.app.catalog.append_consent_event(&event)?;
        crate::delivery::consent_changed(self.app, &event);
        self.audit("consent.withdrawn", &event, actor);
        Ok(event)
    }

    /// Every event of a candidate, oldest first.
    pub fn history(&self, candidate: &CandidateId) -> Result<Vec<ConsentEventRow>, ConsentError> {
        self.known_candidate(candidate)?;
        Ok(self.app.catalog.consent_events(candidate)?)
    }

    /// The scopes standing now, each with the grant it stands on.
    pub fn current(&self, candidate: &CandidateId) -> Result<Vec<Standing>, ConsentError> {
        let mut standing: Vec<(Scope, ConsentEventRow)> = Vec::new();
        for e in self.app.catalog.consent_events(candidate)? {
            let scope = scope_of(&e)?;
            standing.retain(|(s, _)| *s != scope);
            if e.action == "grant" {
                standing.push((scope, e));
            }
        }
        Ok(standing
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
        let mut standing: Vec<Scope> = Vec::new();
        for e in self.app.catalog.consent_events(candidate)? {
            let scope = scope_of(&e)?;
            standing.retain(|s| *s != scope);
            if e.action == "grant" {
                standing.push(scope);
            }
        }
        Ok(standing)
    }

    /// The grant a scope stands on now, if it stands.
    pub fn standing_grant(
        &self,
        candidate: &CandidateId,
        scope: &Scope,
    ) -> Result<Option<ConsentEventRow>, ConsentError> {
        let mut last = None;
        for e in self.app.catalog.consent_events(candidate)? {
            if scope_of(&e)? == *scope {
                last = Some(e);
            }
        }
        Ok(last.filter(|e| e.action == "grant"))
    }

    /// Whether a scope was ever granted (so a refusal can say "withdrawn" rather than "never").
    pub fn ever_granted(
        &self,
        candidate: &CandidateId,
        scope: &Scope,
    ) -> Result<bool, ConsentError> {
        for e in self.app.catalog.consent_events(candidate)? {
            if e.action == "grant" && scope_of(&e)? == *scope {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The capture gate: may media of this candidate be recorded right now?
    pub fn allows_record(&self, candidate: &CandidateId) -> Result<bool, ConsentError> {
        Ok(self.standing_grant(candidate, &Scope::Record)?.is_some())
    }

    fn known_candidate(&self, c: &CandidateId) -> Result<(), ConsentError> {
        match self.app.catalog.candidate(c)? {
            Some(_) => Ok(()),
            None => Err(ConsentError::UnknownCandidate),
        }
    }

    fn known_recipient(&self, scope: &Scope) -> Result<(), ConsentError> {
        if let Scope::ShareRecording(r) | Scope::ShareAnalysis(r) = scope
            && !self.app.catalog.recruiter_exists(r)?
        {
            return Err(ConsentError::UnknownRecruiter(r.to_string()));
        }
        Ok(())
    }

    fn event(
        &self,
        candidate: &CandidateId,
        scope: &Scope,
        action: &str,
        how: &Circumstances,
    ) -> Result<ConsentEventRow, ConsentError> {
        let zone = how
            .time_zone
            .as_deref()
            .unwrap_or(&self.app.config.controller.time_zone);
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
            action: action.into(),
            scope: scope.name().into(),
            recipient: scope.recipient(),
            country: scope.country(),
            at: crate::util::now_rfc3339_in(offset),
            notice_id: None,
            method: Some(how.method.as_str().into()),
            origin: Some(how.origin.clone()),
            language: how.language.clone(),
            withdraws: None,
            receipt: None,
        })
    }

    fn audit(&self, what: &str, e: &ConsentEventRow, actor: &Actor) {
        let scope = scope_of(e).map(|s| s.to_string()).unwrap_or_default();
        self.app.audit.record_or_warn(
            what,
            actor,
            serde_json::json!({
                "candidate": e.candidate.to_string(),
                "consent_event": e.id,
                "scope": scope,
                "notice": e.notice_id,
                "method": e.method,
                "withdraws": e.withdraws,
            }),
        );
    }
}

/// The scope an event is about.
pub fn scope_of(e: &ConsentEventRow) -> Result<Scope, ConsentError> {
    Scope::parse(&e.scope, e.recipient.as_deref(), e.country.as_deref())
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
