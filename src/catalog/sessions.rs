//! Web sessions and rights requests in the catalog. A session row is found by its token's
//! SHA-256 (the token itself lives only in the cookie or link); a candidate link is spent in
//! one statement, so two tabs opening it cannot both get a session.

use crate::sqldb::{OptionalExtension, params};

use super::{Catalog, CatalogError};
use crate::ids::{CandidateId, RecruiterHandle};
use crate::vocab::{Language, RightsRequestKind, SessionKind};

/// A session or link, as stored.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub kind: SessionKind,
    pub candidate: Option<CandidateId>,
    /// The company a candidate session is about (whose sharing it offers), or the recruiter
    /// signed in.
    pub recruiter: Option<RecruiterHandle>,
    pub csrf: String,
    pub language: Option<Language>,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

/// A candidate's request to the operator.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RightsRequestRow {
    pub id: String,
    pub candidate_id: CandidateId,
    pub kind: RightsRequestKind,
    pub created_at: String,
    pub closed_at: Option<String>,
}

impl Catalog {
    pub fn insert_session(&self, hash: &[u8], row: &SessionRow) -> Result<(), CatalogError> {
        self.db().execute(
            "INSERT INTO web_sessions (hash, kind, candidate_id, recruiter, csrf, language,
                 expires_at, used_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                hash,
                row.kind,
                row.candidate.as_ref().map(|c| c.to_string()),
                row.recruiter.as_ref().map(|r| r.to_string()),
                row.csrf,
                row.language,
                row.expires_at,
                row.used_at
            ],
        )?;
        Ok(())
    }

    /// The session or link whose token hashes to `hash`, expired or not.
    pub fn session(&self, hash: &[u8]) -> Result<Option<SessionRow>, CatalogError> {
        Ok(self
            .db()
            .query_row(
                "SELECT kind, candidate_id, recruiter, csrf, language, expires_at, used_at
                 FROM web_sessions WHERE hash = ?1",
                params![hash],
                |r| {
                    Ok(SessionRow {
                        kind: r.get(0)?,
                        candidate: r.get(1)?,
                        recruiter: r.get(2)?,
                        csrf: r.get(3)?,
                        language: r.get(4)?,
                        expires_at: r.get(5)?,
                        used_at: r.get(6)?,
                    })
                },
            )
            .optional()?)
    }

    /// Spends a link: true if this call spent it (it was unspent and unexpired).
    pub fn spend_session_link(&self, hash: &[u8], now: i64) -> Result<bool, CatalogError> {
        let n = self.db().execute(
            "UPDATE web_sessions SET used_at = ?2
             WHERE hash = ?1 AND kind = 'candidate_link' AND used_at IS NULL AND expires_at > ?2",
            params![hash, now],
        )?;
        Ok(n == 1)
    }

    /// Ends a session (sign-out); ends nothing if there is none.
    pub fn delete_session(&self, hash: &[u8]) -> Result<(), CatalogError> {
        self.db()
            .execute("DELETE FROM web_sessions WHERE hash = ?1", params![hash])?;
        Ok(())
    }

    /// Ends every session of a recruiter (its keys revoked or rotated away).
    pub fn delete_recruiter_sessions(&self, who: &RecruiterHandle) -> Result<usize, CatalogError> {
        Ok(self.db().execute(
            "DELETE FROM web_sessions WHERE kind = 'recruiter' AND recruiter = ?1",
            params![who.to_string()],
        )?)
    }

    /// Forgets sessions and links that expired before `now`.
    pub fn sweep_sessions(&self, now: i64) -> Result<usize, CatalogError> {
        Ok(self.db().execute(
            "DELETE FROM web_sessions WHERE expires_at <= ?1",
            params![now],
        )?)
    }

    pub fn insert_rights_request(&self, row: &RightsRequestRow) -> Result<(), CatalogError> {
        self.db().execute(
            "INSERT INTO rights_requests (id, candidate_id, kind, created_at, closed_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                row.id,
                row.candidate_id.to_string(),
                row.kind,
                row.created_at,
                row.closed_at
            ],
        )?;
        Ok(())
    }

    /// Rights requests, newest first: one candidate's, or everyone's.
    pub fn rights_requests(
        &self,
        of: Option<&CandidateId>,
    ) -> Result<Vec<RightsRequestRow>, CatalogError> {
        let db = self.db();
        let mut st = db.prepare(
            "SELECT id, candidate_id, kind, created_at, closed_at FROM rights_requests
             WHERE CAST(?1 AS TEXT) IS NULL OR candidate_id = ?1 ORDER BY created_at DESC, id",
        )?;
        let rows = st.query_map(params![of.map(|c| c.to_string())], |r| {
            Ok(RightsRequestRow {
                id: r.get(0)?,
                candidate_id: r.get(1)?,
                kind: r.get(2)?,
                created_at: r.get(3)?,
                closed_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Closes a request (the operator carried it out); false if there is no open one.
    pub fn close_rights_request(&self, id: &str, at: &str) -> Result<bool, CatalogError> {
        Ok(self.db().execute(
            "UPDATE rights_requests SET closed_at = ?2 WHERE id = ?1 AND closed_at IS NULL",
            params![id, at],
        )? == 1)
    }
}
