//! Web sessions: who is at a page. A front-end asks for a candidate link (single-use, short
//! lived); opening it gives the candidate a session scoped to themselves. Recruiters sign in
//! with their API key and the operator with the operator token; the page keeps neither, only
//! the session's cookie. Every session carries a CSRF token that each request changing
//! anything must echo in a header.
//!
//! Tokens are random 32-byte strings; the catalog keeps their SHA-256 only.

use crate::app::Kiroku;
use crate::audit::{Actor, Event};
use crate::catalog::{CatalogError, SessionRow};
use crate::ids::{CandidateId, RecruiterHandle};
use crate::vocab::{Language, SessionKind};

/// Why a session could not be made or found.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("sign in first: this page needs a session")]
    NoSession,
    #[error("this page is for a {wanted} session, not a {had} one")]
    WrongKind {
        wanted: &'static str,
        had: SessionKind,
    },
    #[error("this link was already used or has expired: ask for a new one")]
    LinkSpent,
    #[error("the request lacks this session's CSRF token (X-CSRF-Token)")]
    Csrf,
    #[error("unknown candidate")]
    UnknownCandidate,
    #[error("the candidate was erased; nothing of theirs is kept or recorded any more")]
    CandidateErased,
    #[error(transparent)]
    Recruiter(#[from] crate::recruiter::RecruiterError),
    #[error("wrong operator token")]
    WrongOperatorToken,
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Random(#[from] crate::util::secret::RandomFailed),
}

/// A link or session just made: the token goes to its holder once and is never stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Issued {
    #[serde(skip)]
    pub token: String,
    pub csrf: String,
    pub expires_at: i64,
}

/// A live session, as a request presents it.
#[derive(Debug, Clone)]
pub struct Session {
    pub kind: SessionKind,
    pub candidate: Option<CandidateId>,
    pub recruiter: Option<RecruiterHandle>,
    pub csrf: String,
    pub language: Option<Language>,
    pub expires_at: i64,
}

fn issue(app: &Kiroku, row: SessionRow) -> Result<Issued, SessionError> {
    let token = crate::util::secret::random_token(32)?;
    app.catalog
        .insert_session(&crate::util::secret::token_hash(&token), &row)?;
    Ok(Issued {
        token,
        csrf: row.csrf,
        expires_at: row.expires_at,
    })
}

fn opened(app: &Kiroku, row: &SessionRow, actor: &Actor) {
    app.audit.record_or_warn(
        Event::SessionOpened {
            kind: row.kind,
            candidate: row.candidate,
            recruiter: row.recruiter.clone(),
        },
        actor,
    );
}

fn new_row(
    kind: SessionKind,
    ttl: u64,
    candidate: Option<CandidateId>,
    recruiter: Option<RecruiterHandle>,
    language: Option<Language>,
) -> Result<SessionRow, SessionError> {
    Ok(SessionRow {
        kind,
        candidate,
        recruiter,
        csrf: crate::util::secret::random_token(24)?,
        language,
        expires_at: crate::util::now_unix() + ttl as i64,
        used_at: None,
    })
}

/// A single-use link for the candidate, asked for by the front-end's backend. `recruiter`
/// is the company the interview is for (the one the candidate may choose to share with).
pub fn candidate_link(
    app: &Kiroku,
    candidate: &CandidateId,
    recruiter: Option<RecruiterHandle>,
    language: Option<Language>,
) -> Result<Issued, SessionError> {
    if app.catalog.candidate(candidate)?.is_none() {
        return Err(SessionError::UnknownCandidate);
    }
    if app.catalog.erased_at(candidate)?.is_some() {
        return Err(SessionError::CandidateErased);
    }
    if let Some(r) = &recruiter
        && !app.catalog.recruiter_exists(r)?
    {
        return Err(crate::recruiter::RecruiterError::Unknown(r.to_string()).into());
    }
    let language = match language {
        Some(l) => Some(l),
        None => app
            .catalog
            .candidate_profile(candidate)?
            .and_then(|p| p.language),
    };
    let link = new_row(
        SessionKind::CandidateLink,
        app.config.pages.link_ttl_seconds,
        Some(*candidate),
        recruiter,
        language,
    )?;
    let issued = issue(app, link.clone())?;
    opened(app, &link, &Actor::Service);
    Ok(issued)
}

/// Whether a candidate link would open now (unspent, unexpired), without spending it: the
/// link's page asks before it offers to continue.
pub fn link_standing(app: &Kiroku, link_token: &str) -> Result<(), SessionError> {
    let link = app
        .catalog
        .session(&crate::util::secret::token_hash(link_token))?
        .ok_or(SessionError::LinkSpent)?;
    let open = link.kind == SessionKind::CandidateLink
        && link.used_at.is_none()
        && link.expires_at > crate::util::now_unix();
    if !open {
        return Err(SessionError::LinkSpent);
    }
    Ok(())
}

/// Opens a candidate link (once): the candidate's session.
pub fn open_link(app: &Kiroku, link_token: &str) -> Result<Issued, SessionError> {
    let hash = crate::util::secret::token_hash(link_token);
    let now = crate::util::now_unix();
    let link = app.catalog.session(&hash)?.ok_or(SessionError::LinkSpent)?;
    if link.kind != SessionKind::CandidateLink || !app.catalog.spend_session_link(&hash, now)? {
        return Err(SessionError::LinkSpent);
    }
    let candidate = link.candidate.ok_or(SessionError::LinkSpent)?;
    if app.catalog.erased_at(&candidate)?.is_some() {
        return Err(SessionError::CandidateErased);
    }
    let row = new_row(
        SessionKind::Candidate,
        app.config.pages.session_ttl_seconds,
        Some(candidate),
        link.recruiter,
        link.language,
    )?;
    let issued = issue(app, row.clone())?;
    opened(app, &row, &Actor::Candidate);
    Ok(issued)
}

/// A recruiter signs in with an API key: their session.
pub fn sign_in_recruiter(app: &Kiroku, api_key: &str) -> Result<Issued, SessionError> {
    let who = crate::recruiter::authenticate(app, Some(api_key))?;
    let row = new_row(
        SessionKind::Recruiter,
        app.config.pages.session_ttl_seconds,
        None,
        Some(who.clone()),
        None,
    )?;
    let issued = issue(app, row.clone())?;
    opened(app, &row, &Actor::Recruiter(who.to_string()));
    Ok(issued)
}

/// The operator signs in with the operator token: their session.
pub fn sign_in_operator(app: &Kiroku, token: &str) -> Result<Issued, SessionError> {
    if !crate::util::secret::same_secret(token.as_bytes(), app.operator_token.value.as_bytes()) {
        return Err(SessionError::WrongOperatorToken);
    }
    let row = new_row(
        SessionKind::Operator,
        app.config.pages.session_ttl_seconds,
        None,
        None,
        None,
    )?;
    let issued = issue(app, row.clone())?;
    opened(app, &row, &Actor::Operator);
    Ok(issued)
}

/// The live session a cookie names. An expired one, a link (not a session), or one whose
/// candidate has been erased is no session.
pub fn lookup(app: &Kiroku, token: &str) -> Result<Session, SessionError> {
    let row = app
        .catalog
        .session(&crate::util::secret::token_hash(token))?
        .filter(|r| r.expires_at > crate::util::now_unix())
        .filter(|r| r.kind != SessionKind::CandidateLink)
        .ok_or(SessionError::NoSession)?;
    if let Some(c) = &row.candidate
        && app.catalog.erased_at(c)?.is_some()
    {
        return Err(SessionError::CandidateErased);
    }
    Ok(Session {
        kind: row.kind,
        candidate: row.candidate,
        recruiter: row.recruiter,
        csrf: row.csrf,
        language: row.language,
        expires_at: row.expires_at,
    })
}

/// Ends the session a cookie names.
pub fn sign_out(app: &Kiroku, token: &str) -> Result<(), SessionError> {
    Ok(app
        .catalog
        .delete_session(&crate::util::secret::token_hash(token))?)
}

impl Session {
    /// The request's CSRF header matches this session's token.
    pub fn check_csrf(&self, presented: Option<&str>) -> Result<(), SessionError> {
        match presented {
            Some(p) if crate::util::secret::same_secret(p.as_bytes(), self.csrf.as_bytes()) => {
                Ok(())
            }
            _ => Err(SessionError::Csrf),
        }
    }
}
