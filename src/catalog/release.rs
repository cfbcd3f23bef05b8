//! The catalog's side of release: provision records, the push-delivery outbox, and the
//! lookups release needs (a recruiter's interviews).

use crate::sqldb::{OptionalExtension, params};

use super::{Catalog, CatalogError, InterviewRow, OutboxRow, ProvisionRow, rows};
use crate::ids::{CandidateId, InterviewId, RecruiterHandle};
use crate::store::ObjectKey;
use crate::vocab::{AnalysisStatus, OutboxKind, OutboxState, OutputFormat, Scope};

const PROVISION_COLUMNS: &str = "id, at, recipient, candidate_id, interview_id, item, segments, byte_range, basis, consent_event_id, legal_basis, reference, keep_until, transfer_consent_event_id";
const OUTBOX_COLUMNS: &str = "id, handle, kind, candidate_id, interview_id, scope, state, attempts, next_at, last_error, created_at, done_at";

impl Catalog {
    pub fn insert_provision(&self, p: &ProvisionRow) -> Result<(), CatalogError> {
        self.db().execute(
            &format!(
                "INSERT INTO provisions ({PROVISION_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
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
                p.keep_until,
                p.transfer_consent_event_id
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
        let rows = st.query_map(params![c.to_string()], rows::provision_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
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
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Queues a delivery unless one of the same kind for the same interview and scope is
    /// already pending or delivered; returns whether it was queued.
    pub fn enqueue(&self, o: &OutboxRow) -> Result<bool, CatalogError> {
        let db = self.db();
        let tx = db.transaction()?;
        let dup: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM outbox WHERE handle = ?1 AND kind = ?2 AND candidate_id = ?3
                AND COALESCE(interview_id, '') = COALESCE(?4, '') AND scope = ?5
                AND state IN (?7, ?8)
                AND (kind != ?9 OR created_at = ?6))",
            params![
                o.recruiter.as_str(),
                o.kind,
                o.candidate.to_string(),
                o.interview.map(|i| i.to_string()),
                o.scope,
                o.created_at,
                OutboxState::Pending,
                OutboxState::Delivered,
                OutboxKind::ConsentWithdrawn
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
        self.outbox_where(
            "state = ?1 AND next_at <= ?2",
            params![OutboxState::Pending, now],
        )
    }

    /// One recipient's deliveries due at `now`, oldest first.
    pub fn due_deliveries_of(
        &self,
        to: &RecruiterHandle,
        now: i64,
    ) -> Result<Vec<OutboxRow>, CatalogError> {
        self.outbox_where(
            "state = ?1 AND next_at <= ?2 AND handle = ?3",
            params![OutboxState::Pending, now, to.to_string()],
        )
    }

    /// Every delivery, oldest first (for operators).
    pub fn deliveries(&self) -> Result<Vec<OutboxRow>, CatalogError> {
        self.outbox_where("TRUE", params![])
    }

    /// How many deliveries are in each state (states with none left out), for metrics.
    pub fn deliveries_by_state(&self) -> Result<Vec<(OutboxState, u64)>, CatalogError> {
        let db = self.db();
        let mut st =
            db.prepare("SELECT state, COUNT(*) FROM outbox GROUP BY state ORDER BY state")?;
        let rows = st.query_map(params![], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deliveries matching `cond`, whose parameters are `args`.
    fn outbox_where(
        &self,
        cond: &str,
        args: &[&dyn crate::sqldb::ToSql],
    ) -> Result<Vec<OutboxRow>, CatalogError> {
        let db = self.db();
        let mut st = db.prepare(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE {cond} ORDER BY seq"
        ))?;
        let rows = st.query_map(args, rows::outbox_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
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
        let db = self.db();
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
        let db = self.db();
        let tx = db.transaction()?;
        let ids = cancel_pending_ready(&tx, c, Some(scope), why)?;
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
                AND state = ?4 AND kind IN (?5, ?6))",
            params![
                c.to_string(),
                recruiter.as_str(),
                scope,
                OutboxState::Delivered,
                OutboxKind::RecordingReady,
                OutboxKind::AnalysisReady
            ],
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
    /// A WAV rendition or a JSON report.
    pub kind: OutputFormat,
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
                                           commitment, status, error, created_at, seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,
                     (SELECT COALESCE(MAX(seq), 0) + 1 FROM analysis_outputs))",
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
             FROM analysis_outputs WHERE interview_id = ?1 ORDER BY COALESCE(seq, 0), created_at",
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

/// Cancels the candidate's pending `*.ready` deliveries (on `scope`, or on any scope), inside
/// the caller's transaction; notices (of a withdrawal, an erasure) are never cancelled.
/// Returns the ids cancelled.
pub(super) fn cancel_pending_ready(
    tx: &crate::sqldb::Transaction<'_>,
    c: &CandidateId,
    scope: Option<&Scope>,
    why: &str,
) -> Result<Vec<String>, CatalogError> {
    let ready = "candidate_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR scope = ?2) AND state = ?3 AND kind IN (?4, ?5)";
    let ids: Vec<String> = {
        let mut st = tx.prepare(&format!("SELECT id FROM outbox WHERE {ready}"))?;
        st.query_map(
            params![
                c.to_string(),
                scope,
                OutboxState::Pending,
                OutboxKind::RecordingReady,
                OutboxKind::AnalysisReady
            ],
            |r| r.get(0),
        )?
        .collect::<Result<_, _>>()?
    };
    tx.execute(
        &format!("UPDATE outbox SET state = ?6, last_error = ?7, done_at = ?8 WHERE {ready}"),
        params![
            c.to_string(),
            scope,
            OutboxState::Pending,
            OutboxKind::RecordingReady,
            OutboxKind::AnalysisReady,
            OutboxState::Cancelled,
            why,
            crate::util::now_rfc3339()
        ],
    )?;
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A catalog whose tables take any value: foreign keys and CHECK constraints off, so a
    /// test can plant what a damaged or hand-edited database might hold.
    fn lax_catalog() -> (tempfile::TempDir, Catalog) {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(&dir.path().join("catalog.db")).unwrap();
        cat.db()
            .execute_batch("PRAGMA foreign_keys = OFF; PRAGMA ignore_check_constraints = ON;")
            .unwrap();
        (dir, cat)
    }

    #[test]
    fn an_analysis_outputs_format_reads_back_and_a_corrupt_one_is_an_error_naming_it() {
        let (_dir, cat) = lax_catalog();
        let i = InterviewId::new_random();
        let row = AnalysisRow {
            interview: i,
            analyzer: "kiroku-builtin".into(),
            segment: None,
            kind: OutputFormat::Json,
            object_key: None,
            plain_len: 0,
            commitment: None,
            status: AnalysisStatus::Failed,
            error: Some("no audio".into()),
            created_at: "2026-11-29T10:00:00+09:00".into(),
        };
        cat.insert_analysis(&row).unwrap();
        let got = cat.analysis_outputs(&i).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].kind, OutputFormat::Json);
        assert_eq!(
            serde_json::to_value(&got[0]).unwrap()["kind"],
            serde_json::json!("json")
        );

        cat.db()
            .execute(
                "UPDATE analysis_outputs SET kind = 'mp3' WHERE interview_id = ?1",
                params![i.to_string()],
            )
            .unwrap();
        let err = cat.analysis_outputs(&i).unwrap_err().to_string();
        assert!(err.contains("`mp3`"), "{err}");
    }

    #[test]
    fn a_corrupt_id_in_a_provision_or_a_delivery_is_an_error_naming_it() {
        let (_dir, cat) = lax_catalog();
        let c = CandidateId::new_random();
        cat.db()
            .execute(
                &format!(
                    "INSERT INTO provisions ({PROVISION_COLUMNS})
                     VALUES ('p1', 'now', 'acme', ?1, 'not-an-interview', 'recording', '0-1',
                             NULL, 'consent', 'e1', NULL, NULL, 0, NULL)"
                ),
                params![c.to_string()],
            )
            .unwrap();
        match cat.provisions(&c) {
            Err(CatalogError::Corrupt(why)) => assert!(why.contains("not-an-interview"), "{why}"),
            other => panic!("expected a corrupt provision, got {other:?}"),
        }

        cat.db()
            .execute(
                &format!(
                    "INSERT INTO outbox ({OUTBOX_COLUMNS})
                     VALUES ('d1', 'acme', 'recording.ready', 'not-a-candidate', NULL,
                             'share.recording:acme', 'pending', 0, 0, NULL, 'now', NULL)"
                ),
                params![],
            )
            .unwrap();
        for got in [cat.deliveries(), cat.due_deliveries(1)] {
            match got {
                Err(CatalogError::Corrupt(why)) => {
                    assert!(why.contains("not-a-candidate"), "{why}")
                }
                other => panic!("expected a corrupt delivery, got {other:?}"),
            }
        }
    }

    #[test]
    fn pending_deliveries_are_found_by_the_bound_state_and_cancelled_by_it() {
        let (_dir, cat) = lax_catalog();
        let c = CandidateId::new_random();
        let scope = Scope::parse_tag("share.recording:acme").unwrap();
        let row = |id: &str, kind: OutboxKind, created_at: &str| OutboxRow {
            id: id.into(),
            recruiter: RecruiterHandle::parse("acme").unwrap(),
            kind,
            candidate: c,
            interview: None,
            scope: scope.clone(),
            state: OutboxState::Pending,
            attempts: 0,
            next_at: 5,
            last_error: None,
            created_at: created_at.into(),
            done_at: None,
        };
        assert!(
            cat.enqueue(&row("d1", OutboxKind::RecordingReady, "t1"))
                .unwrap()
        );
        // The same kind, interview and scope again is a duplicate while pending…
        assert!(
            !cat.enqueue(&row("d2", OutboxKind::RecordingReady, "t2"))
                .unwrap()
        );
        // …but a withdrawal notice is one per withdrawal.
        assert!(
            cat.enqueue(&row("w1", OutboxKind::ConsentWithdrawn, "t1"))
                .unwrap()
        );
        assert!(
            !cat.enqueue(&row("w2", OutboxKind::ConsentWithdrawn, "t1"))
                .unwrap()
        );
        assert!(
            cat.enqueue(&row("w3", OutboxKind::ConsentWithdrawn, "t3"))
                .unwrap()
        );
        assert!(cat.due_deliveries(4).unwrap().is_empty());
        let due: Vec<String> = cat
            .due_deliveries(5)
            .unwrap()
            .into_iter()
            .map(|o| o.id)
            .collect();
        assert_eq!(due, ["d1", "w1", "w3"]);
        assert_eq!(cat.deliveries().unwrap().len(), 3);

        // Cancelling leaves withdrawal notices alone.
        assert_eq!(
            cat.cancel_deliveries(&c, &scope, "withdrawn").unwrap(),
            ["d1"]
        );
        let states: Vec<(String, OutboxState)> = cat
            .deliveries()
            .unwrap()
            .into_iter()
            .map(|o| (o.id, o.state))
            .collect();
        assert_eq!(
            states,
            [
                ("d1".to_string(), OutboxState::Cancelled),
                ("w1".to_string(), OutboxState::Pending),
                ("w3".to_string(), OutboxState::Pending),
            ]
        );
        let acme = RecruiterHandle::parse("acme").unwrap();
        assert!(!cat.was_delivered(&c, &acme, &scope).unwrap());
        cat.settle_delivery("w1", OutboxState::Delivered, 1, 0, None)
            .unwrap();
        // A delivered withdrawal notice is not a delivered recording.
        assert!(!cat.was_delivered(&c, &acme, &scope).unwrap());
    }
}
