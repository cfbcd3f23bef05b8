//! The catalog's side of release: provision records, the push-delivery outbox, and the
//! lookups release needs (a recruiter's interviews).

use rusqlite::{OptionalExtension, params};

use super::{Catalog, CatalogError, InterviewRow, OutboxRow, ProvisionRow, rows};
use crate::ids::{CandidateId, InterviewId, RecruiterHandle};
use crate::store::ObjectKey;
use crate::vocab::{AnalysisStatus, OutboxState, Scope};

const PROVISION_COLUMNS: &str = "id, at, recipient, candidate_id, interview_id, item, segments, byte_range, basis, consent_event_id, legal_basis, reference, keep_until";
const OUTBOX_COLUMNS: &str = "id, handle, kind, candidate_id, interview_id, scope, state, attempts, next_at, last_error, created_at, done_at";

fn corrupt(e: crate::ids::IdError) -> CatalogError {
    CatalogError::Corrupt(e.to_string())
}

impl Catalog {
    pub fn insert_provision(&self, p: &ProvisionRow) -> Result<(), CatalogError> {
        self.db().execute(
            &format!(
                "INSERT INTO provisions ({PROVISION_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
            ),
            params![
                p.id,
                p.at,
                p.recipient,
                p.candidate.to_string(),
                p.interview.to_string(),
                p.item,
                p.segments,
                p.byte_range,
                p.basis,
                p.consent_event_id,
                p.legal_basis,
                p.reference,
                p.keep_until
            ],
        )?;
        Ok(())
    }

    /// A candidate's provision records, oldest first (APPI Art. 33(5)).
    pub fn provisions(&self, c: &CandidateId) -> Result<Vec<ProvisionRow>, CatalogError> {
        let db = self.db();
        let mut st = db.prepare(&format!(
            "SELECT {PROVISION_COLUMNS} FROM provisions WHERE candidate_id = ?1 ORDER BY seq"
        ))?;
        let rows = st.query_map(params![c.to_string()], |r| {
            Ok((
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                ProvisionRow {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    recipient: r.get(2)?,
                    candidate: *c,
                    interview: InterviewId::new_random(),
                    item: r.get(5)?,
                    segments: r.get(6)?,
                    byte_range: r.get(7)?,
                    basis: r.get(8)?,
                    consent_event_id: r.get(9)?,
                    legal_basis: r.get(10)?,
                    reference: r.get(11)?,
                    keep_until: r.get(12)?,
                },
            ))
        })?;
        rows.map(|r| {
            let (_, interview, mut p) = r?;
            p.interview = InterviewId::parse(&interview).map_err(corrupt)?;
            Ok(p)
        })
        .collect()
    }

    /// Whether this recruiter has ever received data of this candidate.
    pub fn has_received(&self, c: &CandidateId, recipient: &str) -> Result<bool, CatalogError> {
        Ok(self.db().query_row(
            "SELECT EXISTS (SELECT 1 FROM provisions WHERE candidate_id = ?1 AND recipient = ?2)",
            params![c.to_string(), recipient],
            |r| r.get(0),
        )?)
    }

    /// Deletes provision records past their keeping time; returns how many.
    pub fn purge_provisions(&self, now: i64) -> Result<usize, CatalogError> {
        Ok(self
            .db()
            .execute("DELETE FROM provisions WHERE keep_until < ?1", params![now])?)
    }

    /// Interviews run for a recruiter, newest first.
    pub fn interviews_of_recruiter(
        &self,
        h: &RecruiterHandle,
    ) -> Result<Vec<InterviewRow>, CatalogError> {
        self.interviews_where("recruiter = ?1", &h.to_string())
    }

    /// Interviews of a candidate, newest first.
    pub fn interviews_of_candidate(
        &self,
        c: &CandidateId,
    ) -> Result<Vec<InterviewRow>, CatalogError> {
        self.interviews_where("candidate_id = ?1", &c.to_string())
    }

    fn interviews_where(&self, cond: &str, v: &str) -> Result<Vec<InterviewRow>, CatalogError> {
        let db = self.db();
        let mut st = db.prepare(&format!(
            "SELECT id, candidate_id, recruiter, job_ref, region, content_type, profile, state, key_version,
                    created_at, ended_at, bytes_in, end_reason
             FROM interviews WHERE {cond} ORDER BY created_at DESC, id"
        ))?;
        let rows = st.query_map(params![v], rows::interview_from_row)?;
        rows.map(|r| r.map_err(CatalogError::from).and_then(|x| x))
            .collect()
    }

    /// Queues a delivery unless one of the same kind for the same interview and scope is
    /// already pending or delivered; returns whether it was queued.
    pub fn enqueue(&self, o: &OutboxRow) -> Result<bool, CatalogError> {
        let mut db = self.db();
        let tx = db.transaction()?;
        let dup: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM outbox WHERE handle = ?1 AND kind = ?2 AND candidate_id = ?3
                AND COALESCE(interview_id, '') = COALESCE(?4, '') AND scope = ?5
                AND state IN ('pending', 'delivered')
                AND (kind != 'consent.withdrawn' OR created_at = ?6))",
            params![
                o.recruiter.as_str(),
                o.kind,
                o.candidate.to_string(),
                o.interview.map(|i| i.to_string()),
                o.scope,
                o.created_at
            ],
            |r| r.get(0),
        )?;
        if dup {
            return Ok(false);
        }
        tx.execute(
            &format!("INSERT INTO outbox ({OUTBOX_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
            params![
                o.id,
                o.recruiter.as_str(),
                o.kind,
                o.candidate.to_string(),
                o.interview.map(|i| i.to_string()),
                o.scope,
                o.state,
                o.attempts,
                o.next_at,
                o.last_error,
                o.created_at,
                o.done_at
            ],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Pending deliveries due by `now`, oldest first.
    pub fn due_deliveries(&self, now: i64) -> Result<Vec<OutboxRow>, CatalogError> {
        self.outbox_where("state = 'pending' AND next_at <= ?1", now)
    }

    /// Every delivery, oldest first (for operators).
    pub fn deliveries(&self) -> Result<Vec<OutboxRow>, CatalogError> {
        self.outbox_where("?1 = ?1", 0)
    }

    fn outbox_where(&self, cond: &str, v: i64) -> Result<Vec<OutboxRow>, CatalogError> {
        let db = self.db();
        let mut st = db.prepare(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE {cond} ORDER BY seq"
        ))?;
        let rows = st.query_map(params![v], |r| {
            Ok((
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                OutboxRow {
                    id: r.get(0)?,
                    recruiter: RecruiterHandle::parse(&r.get::<_, String>(1)?).map_err(|e| {
                        rusqlite::Error::FromSqlConversionFailure(
                            1,
                            rusqlite::types::Type::Text,
                            e.into(),
                        )
                    })?,
                    kind: r.get(2)?,
                    candidate: CandidateId::new_random(),
                    interview: None,
                    scope: r.get(5)?,
                    state: r.get(6)?,
                    attempts: r.get(7)?,
                    next_at: r.get(8)?,
                    last_error: r.get(9)?,
                    created_at: r.get(10)?,
                    done_at: r.get(11)?,
                },
            ))
        })?;
        rows.map(|r| {
            let (c, i, mut o) = r?;
            o.candidate = CandidateId::parse(&c).map_err(corrupt)?;
            o.interview = i
                .as_deref()
                .map(InterviewId::parse)
                .transpose()
                .map_err(corrupt)?;
            Ok(o)
        })
        .collect()
    }

    /// Moves a pending delivery to `state` (delivered, failed, cancelled) or, for `pending`,
    /// schedules its next attempt; returns the state it was in. Only a pending delivery moves,
    /// except that one cancelled while its request was on the way may still become delivered.
    pub fn settle_delivery(
        &self,
        id: &str,
        state: OutboxState,
        attempts: u32,
        next_at: i64,
        error: Option<&str>,
    ) -> Result<Option<OutboxState>, CatalogError> {
        let done_at = (state != OutboxState::Pending).then(crate::util::now_rfc3339);
        let mut db = self.db();
        let tx = db.transaction()?;
        let before: Option<OutboxState> = tx
            .query_row("SELECT state FROM outbox WHERE id = ?1", params![id], |r| {
                r.get(0)
            })
            .optional()?;
        let movable = match before {
            Some(OutboxState::Pending) => true,
            Some(OutboxState::Cancelled) => state == OutboxState::Delivered,
            _ => false,
        };
        if movable {
            tx.execute(
                "UPDATE outbox SET state = ?2, attempts = ?3, next_at = ?4, last_error = ?5, done_at = ?6
                 WHERE id = ?1",
                params![id, state, attempts, next_at, error, done_at],
            )?;
        }
        tx.commit()?;
        Ok(before)
    }

    /// Cancels pending deliveries of a candidate resting on `scope`; returns their ids.
    pub fn cancel_deliveries(
        &self,
        c: &CandidateId,
        scope: &Scope,
        why: &str,
    ) -> Result<Vec<String>, CatalogError> {
        let mut db = self.db();
        let tx = db.transaction()?;
        let ids: Vec<String> = {
            let mut st = tx.prepare(
                "SELECT id FROM outbox WHERE candidate_id = ?1 AND scope = ?2 AND state = 'pending'
                 AND kind != 'consent.withdrawn'",
            )?;
            st.query_map(params![c.to_string(), scope], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        tx.execute(
            "UPDATE outbox SET state = 'cancelled', last_error = ?3, done_at = ?4
             WHERE candidate_id = ?1 AND scope = ?2 AND state = 'pending' AND kind != 'consent.withdrawn'",
            params![c.to_string(), scope, why, crate::util::now_rfc3339()],
        )?;
        tx.commit()?;
        Ok(ids)
    }

    /// Whether a `recording.ready` (or other) delivery of this kind was delivered.
    pub fn was_delivered(
        &self,
        c: &CandidateId,
        recruiter: &RecruiterHandle,
        scope: &Scope,
    ) -> Result<bool, CatalogError> {
        Ok(self.db().query_row(
            "SELECT EXISTS (SELECT 1 FROM outbox WHERE candidate_id = ?1 AND handle = ?2 AND scope = ?3
                AND state = 'delivered' AND kind != 'consent.withdrawn')",
            params![c.to_string(), recruiter.as_str(), scope],
            |r| r.get(0),
        )?)
    }
}

/// One analysis output (or failure) of an interview.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AnalysisRow {
    pub interview: InterviewId,
    pub analyzer: String,
    /// The segment it covers; `None` for the whole interview.
    pub segment: Option<u32>,
    /// `wav` or `json`.
    pub kind: String,
    pub object_key: Option<ObjectKey>,
    pub plain_len: u64,
    pub commitment: Option<String>,
    pub status: AnalysisStatus,
    pub error: Option<String>,
    pub created_at: String,
}

impl Catalog {
    pub fn insert_analysis(&self, a: &AnalysisRow) -> Result<(), CatalogError> {
        self.db().execute(
            "INSERT INTO analysis_outputs (interview_id, analyzer, segment, kind, object_key, plain_len,
                                           commitment, status, error, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                a.interview.to_string(),
                a.analyzer,
                a.segment,
                a.kind,
                a.object_key,
                a.plain_len as i64,
                a.commitment,
                a.status,
                a.error,
                a.created_at
            ],
        )?;
        Ok(())
    }

    /// An interview's analysis outputs, in the order they were made.
    pub fn analysis_outputs(&self, i: &InterviewId) -> Result<Vec<AnalysisRow>, CatalogError> {
        let db = self.db();
        let mut st = db.prepare(
            "SELECT analyzer, segment, kind, object_key, plain_len, commitment, status, error, created_at
             FROM analysis_outputs WHERE interview_id = ?1 ORDER BY rowid",
        )?;
        let rows = st.query_map(params![i.to_string()], |r| {
            Ok(AnalysisRow {
                interview: *i,
                analyzer: r.get(0)?,
                segment: r.get(1)?,
                kind: r.get(2)?,
                object_key: r.get(3)?,
                plain_len: r.get::<_, i64>(4)? as u64,
                commitment: r.get(5)?,
                status: r.get(6)?,
                error: r.get(7)?,
                created_at: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
