//! The catalog: kiroku's database of candidates, consent events, interviews, ingest tokens,
//! segments, recruiters, provisions and the outbox. It never holds media bytes or an
//! unwrapped key.
//!
//! SQLite in the data dir by default, or PostgreSQL (`catalog = "postgres://…"`) shared by
//! several nodes: the same statements on both, through [`crate::sqldb`]. One connection per
//! process on SQLite (its single writer), a few on PostgreSQL ([`crate::sqldb::Pool`]), each
//! lent to one thread at a time: every statement is short, and a write is durable when it
//! returns, so a segment row is on disk before the segment is acknowledged.

mod claims;
mod ledger;
mod migrations;
mod recruiters;
mod release;
mod rights;
mod rows;
mod sessions;
mod sql;

use std::path::Path;

use crate::sqldb::{Connection, Location, OptionalExtension, Pool, Pooled, params};

/// A word of the vocabulary, named here too, beside the interview rows that carry it.
pub use crate::vocab::InterviewState;
pub use recruiters::{KeyCheck, Recipient, WebhookRow};
pub use release::AnalysisRow;
pub use rights::{CandidateProfile, Erased};
pub use rows::{
    CandidateRow, ConsentEventRow, InterviewRow, NoticeRow, OutboxRow, ProvisionRow, SegmentRow,
};
pub use sessions::{RightsRequestRow, SessionRow};

use crate::ids::{CandidateId, CountryCode, InterviewId, RegionId};
use crate::vocab::Codec;

/// Why a catalog operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog database: {0}")]
    Db(crate::sqldb::Error),
    #[error("catalog holds a value it cannot read back: {0}")]
    Corrupt(String),
    #[error("catalog schema version {found} is newer than this kiroku knows ({known})")]
    TooNew { found: i64, known: i64 },
}

/// A column whose value does not read back as its type (see `sql.rs`) is a corrupt catalog,
/// named as such; every other SQLite failure is the database's.
impl From<crate::sqldb::Error> for CatalogError {
    fn from(e: crate::sqldb::Error) -> CatalogError {
        match e {
            crate::sqldb::Error::FromSqlConversionFailure(_, why) => {
                CatalogError::Corrupt(why.to_string())
            }
            crate::sqldb::Error::TooNew { found, known } => CatalogError::TooNew { found, known },
            other => CatalogError::Db(other),
        }
    }
}

/// Why an ingest token was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("unknown ingest token")]
    Unknown,
    #[error("ingest token expired")]
    Expired,
    #[error("ingest token already used")]
    Used,
    #[error("ingest token belongs to another interview")]
    OtherInterview,
}

/// A candidate key wrapped under a region's legacy master key: (candidate, region, version,
/// wrapped bytes).
pub type LegacyKey = (CandidateId, RegionId, u32, Vec<u8>);

pub struct Catalog {
    pool: Pool,
}

impl Catalog {
    /// Opens (creating if needed) the SQLite catalog at `path`.
    pub fn open(path: &Path) -> Result<Catalog, CatalogError> {
        Catalog::open_at(&Location::Sqlite(path.to_path_buf()))
    }

    /// Opens the catalog where it lives and brings its schema up to date.
    pub fn open_at(location: &Location) -> Result<Catalog, CatalogError> {
        let conn = Connection::open(location)?;
        migrations::run(&conn)?;
        Ok(Catalog {
            pool: Pool::new(location.clone(), conn),
        })
    }

    /// Whether the catalog is on PostgreSQL (shared by nodes) rather than SQLite.
    pub fn is_shared(&self) -> bool {
        self.pool.is_postgres()
    }

    pub(crate) fn db(&self) -> Pooled<'_> {
        self.pool.get()
    }

    pub fn add_candidate(
        &self,
        external_ref: &str,
        home: &CountryCode,
    ) -> Result<CandidateId, CatalogError> {
        let id = CandidateId::new_random();
        self.db().execute(
            "INSERT INTO candidates (id, external_ref, home_country, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![id.to_string(), external_ref, home.as_str(), crate::util::now_rfc3339()],
        )?;
        Ok(id)
    }

    pub fn candidate(&self, id: &CandidateId) -> Result<Option<CandidateRow>, CatalogError> {
        Ok(self
            .db()
            .query_row(
                "SELECT id, home_country, created_at FROM candidates WHERE id = ?1",
                params![id.to_string()],
                |r| {
                    Ok(CandidateRow {
                        id: r.get(0)?,
                        home_country: r.get(1)?,
                        created_at: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// Candidate keys wrapped under a region's legacy master key, from before the keyring:
    /// (candidate, region, version, wrapped).
    pub fn legacy_candidate_keys(&self) -> Result<Vec<LegacyKey>, CatalogError> {
        let db = self.db();
        let mut st =
            db.prepare("SELECT candidate_id, region, version, wrapped FROM candidate_keys")?;
        let rows = st.query_map(params![], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Removes a region's legacy wrapped keys once the keyring holds them; the WAL is
    /// truncated after, so no copy stays in the database's files.
    pub fn delete_legacy_candidate_keys(&self, region: &RegionId) -> Result<(), CatalogError> {
        let db = self.db();
        db.execute(
            "DELETE FROM candidate_keys WHERE region = ?1",
            params![region.as_str()],
        )?;
        db.scrub_deleted("candidate_keys")?;
        Ok(())
    }

    pub fn insert_interview(&self, i: &InterviewRow) -> Result<(), CatalogError> {
        self.db().execute(
            "INSERT INTO interviews (id, candidate_id, recruiter, job_ref, region, content_type, profile, state,
                                     key_version, created_at, bytes_in, end_reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0, NULL)",
            params![
                i.id.to_string(),
                i.candidate.to_string(),
                i.recruiter.as_str(),
                i.job_ref,
                i.region.as_str(),
                i.content_type,
                i.profile,
                i.state,
                i.key_version,
                i.created_at
            ],
        )?;
        Ok(())
    }

    pub fn interview(&self, id: &InterviewId) -> Result<Option<InterviewRow>, CatalogError> {
        let db = self.db();
        let row = db
            .query_row(
                "SELECT id, candidate_id, recruiter, job_ref, region, content_type, profile, state, key_version,
                        created_at, ended_at, bytes_in, end_reason
                 FROM interviews WHERE id = ?1",
                params![id.to_string()],
                rows::interview_from_row,
            )
            .optional()?;
        Ok(row)
    }

    /// Changes the declared content type (and so the profile) of an interview not yet streamed.
    pub fn redeclare_content_type(
        &self,
        id: &InterviewId,
        content_type: &str,
        profile: &str,
    ) -> Result<bool, CatalogError> {
        let n = self.db().execute(
            "UPDATE interviews SET content_type = ?2, profile = ?3 WHERE id = ?1 AND state = ?4",
            params![
                id.to_string(),
                content_type,
                profile,
                InterviewState::Created
            ],
        )?;
        Ok(n == 1)
    }

    /// Sets the content type and profile of an interview whose capture has just started (a
    /// WHIP session's, decided by the codecs kiroku answered with).
    pub fn set_capture_profile(
        &self,
        id: &InterviewId,
        content_type: &str,
        profile: &str,
    ) -> Result<(), CatalogError> {
        self.db().execute(
            "UPDATE interviews SET content_type = ?2, profile = ?3 WHERE id = ?1 AND state = ?4",
            params![
                id.to_string(),
                content_type,
                profile,
                InterviewState::Capturing
            ],
        )?;
        Ok(())
    }

    /// Records the codecs an interview's recording holds.
    pub fn set_codecs(&self, id: &InterviewId, codecs: &[Codec]) -> Result<(), CatalogError> {
        let text: Vec<&str> = codecs.iter().map(Codec::as_str).collect();
        self.db().execute(
            "UPDATE interviews SET codecs = ?2 WHERE id = ?1",
            params![id.to_string(), text.join(",")],
        )?;
        Ok(())
    }

    /// The codecs an interview's recording holds; empty until its first media segment.
    pub fn codecs(&self, id: &InterviewId) -> Result<Vec<Codec>, CatalogError> {
        let text: Option<String> = self
            .db()
            .query_row(
                "SELECT codecs FROM interviews WHERE id = ?1",
                params![id.to_string()],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        text.unwrap_or_default()
            .split(',')
            .filter(|w| !w.is_empty())
            .map(|w| {
                Codec::parse(w).ok_or_else(|| CatalogError::Corrupt(format!("not a codec: `{w}`")))
            })
            .collect()
    }

    /// Moves an interview from `from` to `to`; false if it was not in `from` (another stream
    /// got there first).
    pub fn transition(
        &self,
        id: &InterviewId,
        from: InterviewState,
        to: InterviewState,
    ) -> Result<bool, CatalogError> {
        let n = self.db().execute(
            "UPDATE interviews SET state = ?3 WHERE id = ?1 AND state = ?2",
            params![id.to_string(), from, to],
        )?;
        Ok(n == 1)
    }

    /// Records how the capture of an interview ended.
    pub fn end_interview(
        &self,
        id: &InterviewId,
        state: InterviewState,
        reason: Option<&str>,
        bytes_in: u64,
    ) -> Result<(), CatalogError> {
        self.db().execute(
            "UPDATE interviews SET state = ?2, end_reason = ?3, bytes_in = ?4, ended_at = ?5 WHERE id = ?1",
            params![id.to_string(), state, reason, bytes_in as i64, crate::util::now_rfc3339()],
        )?;
        Ok(())
    }

    pub fn insert_ingest_token(
        &self,
        hash: &[u8],
        interview: &InterviewId,
        expires_at: i64,
    ) -> Result<(), CatalogError> {
        self.db().execute(
            "INSERT INTO ingest_tokens (hash, interview_id, expires_at, used_at) VALUES (?1, ?2, ?3, NULL)",
            params![hash, interview.to_string(), expires_at],
        )?;
        Ok(())
    }

    /// Records the hash of an interview's resume credential.
    pub fn insert_resume_token(
        &self,
        interview: &InterviewId,
        hash: &[u8],
    ) -> Result<(), CatalogError> {
        self.db().execute(
            "INSERT INTO resume_tokens (interview_id, hash) VALUES (?1, ?2)",
            params![interview.to_string(), hash],
        )?;
        Ok(())
    }

    /// The hash of an interview's resume credential, if it has one.
    pub fn resume_token_hash(
        &self,
        interview: &InterviewId,
    ) -> Result<Option<Vec<u8>>, CatalogError> {
        Ok(self
            .db()
            .query_row(
                "SELECT hash FROM resume_tokens WHERE interview_id = ?1",
                params![interview.to_string()],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Spends a single-use ingest token for `interview`, atomically.
    pub fn spend_ingest_token(
        &self,
        hash: &[u8],
        interview: &InterviewId,
        now: i64,
    ) -> Result<Result<(), TokenError>, CatalogError> {
        let db = self.db();
        if let Err(e) = ingest_token_standing(&db, hash, interview, now)? {
            return Ok(Err(e));
        }
        let n = db.execute(
            "UPDATE ingest_tokens SET used_at = ?2 WHERE hash = ?1 AND used_at IS NULL",
            params![hash, now],
        )?;
        Ok(if n == 1 {
            Ok(())
        } else {
            Err(TokenError::Used)
        })
    }

    /// Whether an ingest token would be accepted now, without spending it (a WebSocket is
    /// checked before its upgrade and spends the token with its first message after it).
    pub fn check_ingest_token(
        &self,
        hash: &[u8],
        interview: &InterviewId,
        now: i64,
    ) -> Result<Result<(), TokenError>, CatalogError> {
        ingest_token_standing(&self.db(), hash, interview, now)
    }

    pub fn insert_segment(&self, s: &SegmentRow) -> Result<(), CatalogError> {
        self.db().execute(
            "INSERT INTO segments (interview_id, idx, object_key, media_kind, plain_len, sealed_len, start_ns, end_ns,
                                   keyframe, is_final, commitment, tags, stored_at, clusters)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                s.interview.to_string(),
                s.index,
                s.object_key,
                s.media_kind,
                s.plain_len as i64,
                s.sealed_len as i64,
                s.start_ns as i64,
                s.end_ns as i64,
                s.starts_on_keyframe,
                s.is_final,
                hex::encode(s.commitment),
                s.tags.to_string(),
                s.stored_at,
                serde_json::to_string(&s.clusters).expect("cluster marks serialise")
            ],
        )?;
        Ok(())
    }

    /// One segment of an interview.
    pub fn segment(
        &self,
        interview: &InterviewId,
        index: u32,
    ) -> Result<Option<SegmentRow>, CatalogError> {
        self.db()
            .query_row(
                "SELECT interview_id, idx, object_key, media_kind, plain_len, sealed_len, start_ns, end_ns, keyframe,
                        is_final, commitment, tags, stored_at, clusters
                 FROM segments WHERE interview_id = ?1 AND idx = ?2",
                params![interview.to_string(), index],
                rows::segment_from_row,
            )
            .optional()
            .map_err(CatalogError::from)
    }

    /// An interview's segments in order.
    pub fn segments(&self, interview: &InterviewId) -> Result<Vec<SegmentRow>, CatalogError> {
        let db = self.db();
        let mut st = db.prepare(
            "SELECT interview_id, idx, object_key, media_kind, plain_len, sealed_len, start_ns, end_ns, keyframe,
                    is_final, commitment, tags, stored_at, clusters
             FROM segments WHERE interview_id = ?1 ORDER BY idx",
        )?;
        let rows = st.query_map(params![interview.to_string()], rows::segment_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Interviews still marked as capturing (after a crash): the capture ended without a word.
    /// Created → capturing, claimed by `node` until `until` (unix seconds), in one statement;
    /// false if the interview was not waiting to be captured.
    pub fn start_capturing(
        &self,
        id: &InterviewId,
        node: &str,
        until: i64,
    ) -> Result<bool, CatalogError> {
        let n = self.db().execute(
            "UPDATE interviews SET state = ?2, lease_node = ?4, lease_until = ?5
             WHERE id = ?1 AND state = ?3",
            params![
                id.to_string(),
                InterviewState::Capturing,
                InterviewState::Created,
                node,
                until
            ],
        )?;
        Ok(n == 1)
    }

    /// Renews `node`'s claim on the interviews it is capturing, until `until`.
    pub fn renew_leases(
        &self,
        ids: &[InterviewId],
        node: &str,
        until: i64,
    ) -> Result<(), CatalogError> {
        let db = self.db();
        let mut st = db.prepare(
            "UPDATE interviews SET lease_until = ?3
             WHERE id = ?1 AND lease_node = ?2 AND state = ?4",
        )?;
        for id in ids {
            st.execute(params![
                id.to_string(),
                node,
                until,
                InterviewState::Capturing
            ])?;
        }
        Ok(())
    }

    /// Stops a capture found interrupted, only if it still is: capturing, under the lease
    /// `held_by` that was found, and that lease is `node`'s own or lapsed at `now`. False if a
    /// live node renewed it or concluded it meanwhile (nothing is then touched).
    pub fn stop_interrupted(
        &self,
        id: &InterviewId,
        held_by: Option<&str>,
        node: &str,
        now: i64,
        reason: &str,
    ) -> Result<bool, CatalogError> {
        let n = self.db().execute(
            "UPDATE interviews SET state = ?2, end_reason = ?3, ended_at = ?4
             WHERE id = ?1 AND state = ?5 AND lease_node IS NOT DISTINCT FROM ?6
               AND (lease_node = ?7 OR lease_until IS NULL OR lease_until < ?8)",
            params![
                id.to_string(),
                InterviewState::Stopped,
                reason,
                crate::util::now_rfc3339(),
                InterviewState::Capturing,
                held_by,
                node,
                now
            ],
        )?;
        Ok(n == 1)
    }

    /// Asks whichever node holds the capture of `id` to finish it; false if the interview
    /// is not being captured.
    pub fn request_finish(&self, id: &InterviewId) -> Result<bool, CatalogError> {
        let n = self.db().execute(
            "UPDATE interviews SET finish_requested_at = COALESCE(finish_requested_at, ?2)
             WHERE id = ?1 AND state = ?3",
            params![
                id.to_string(),
                crate::util::now_rfc3339(),
                InterviewState::Capturing
            ],
        )?;
        Ok(n == 1)
    }

    /// Which of `ids` some node was asked to finish.
    pub fn finish_requested(&self, ids: &[InterviewId]) -> Result<Vec<InterviewId>, CatalogError> {
        let db = self.db();
        let mut st = db.prepare(
            "SELECT 1 FROM interviews WHERE id = ?1 AND finish_requested_at IS NOT NULL",
        )?;
        let mut out = Vec::new();
        for id in ids {
            if st.exists(params![id.to_string()])? {
                out.push(*id);
            }
        }
        Ok(out)
    }

    /// Interviews still marked capturing that `node` may stop: its own from before a restart
    /// (a node holds one address, so a new process on it means the old one is gone), and any
    /// node's whose claim lapsed before `now` (or that never had one).
    /// Each with the node that held it.
    pub fn captures_to_recover(
        &self,
        node: &str,
        now: i64,
    ) -> Result<Vec<(InterviewId, Option<String>)>, CatalogError> {
        let db = self.db();
        let mut st = db.prepare(
            "SELECT id, lease_node FROM interviews WHERE state = ?1
             AND (lease_node = ?2 OR lease_until IS NULL OR lease_until < ?3)",
        )?;
        let rows = st.query_map(params![InterviewState::Capturing, node, now], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// An ingest token's standing: known, this interview's, unused, unexpired.
fn ingest_token_standing(
    db: &crate::sqldb::Connection,
    hash: &[u8],
    interview: &InterviewId,
    now: i64,
) -> Result<Result<(), TokenError>, CatalogError> {
    let row: Option<(String, i64, Option<i64>)> = db
        .query_row(
            "SELECT interview_id, expires_at, used_at FROM ingest_tokens WHERE hash = ?1",
            params![hash],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((owner, expires_at, used_at)) = row else {
        return Ok(Err(TokenError::Unknown));
    };
    Ok(if owner != interview.to_string() {
        Err(TokenError::OtherInterview)
    } else if used_at.is_some() {
        Err(TokenError::Used)
    } else if now >= expires_at {
        Err(TokenError::Expired)
    } else {
        Ok(())
    })
}
