//! A candidate's rights in the catalog: corrections of their profile, retention (what is
//! kept, what expired), and erasure (the tombstone, and every row that held their keys,
//! segments, analysis or links, removed in one transaction).

use crate::sqldb::{OptionalExtension, params};

use super::{Catalog, CatalogError};
use crate::ids::{CandidateId, CountryCode, InterviewId};
use crate::vocab::{Language, OutboxState};

/// A candidate's profile, as a disclosure shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CandidateProfile {
    pub candidate_id: CandidateId,
    pub external_ref: String,
    pub home_country: CountryCode,
    pub language: Option<Language>,
    pub registered_at: String,
}

/// What one erasure removed from the catalog.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Erased {
    pub interviews: Vec<InterviewId>,
    /// Wrapped candidate keys destroyed, over every region and version.
    pub keys_destroyed: usize,
    pub segments: usize,
    pub analysis_outputs: usize,
    pub download_links: usize,
    /// Pending `*.ready` deliveries cancelled.
    pub deliveries_cancelled: Vec<String>,
}

impl Catalog {
    /// Corrects the fields given (the others stay); one statement. Returns whether the
    /// candidate exists.
    pub fn correct_candidate(
        &self,
        c: &CandidateId,
        external_ref: Option<&str>,
        home: Option<&CountryCode>,
        language: Option<Language>,
    ) -> Result<bool, CatalogError> {
        let n = self.db().execute(
            "UPDATE candidates SET external_ref = COALESCE(?2, external_ref),
                 home_country = COALESCE(?3, home_country), language = COALESCE(?4, language)
             WHERE id = ?1",
            params![
                c.to_string(),
                external_ref,
                home.map(|h| h.as_str()),
                language
            ],
        )?;
        Ok(n == 1)
    }

    /// The candidate's whole profile (for a disclosure export).
    pub fn candidate_profile(
        &self,
        c: &CandidateId,
    ) -> Result<Option<CandidateProfile>, CatalogError> {
        Ok(self
            .db()
            .query_row(
                "SELECT id, external_ref, home_country, language, created_at FROM candidates
                 WHERE id = ?1",
                params![c.to_string()],
                |r| {
                    Ok(CandidateProfile {
                        candidate_id: r.get(0)?,
                        external_ref: r.get(1)?,
                        home_country: r.get(2)?,
                        language: r.get(3)?,
                        registered_at: r.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    /// The language the candidate is addressed in, when one was given.
    pub fn candidate_language(&self, c: &CandidateId) -> Result<Option<Language>, CatalogError> {
        Ok(self
            .db()
            .query_row(
                "SELECT language FROM candidates WHERE id = ?1",
                params![c.to_string()],
                |r| r.get::<_, Option<Language>>(0),
            )
            .optional()?
            .flatten())
    }

    /// When the candidate was erased; `None` while they are not.
    pub fn erased_at(&self, c: &CandidateId) -> Result<Option<String>, CatalogError> {
        Ok(self
            .db()
            .query_row(
                "SELECT erased_at FROM candidates WHERE id = ?1",
                params![c.to_string()],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten())
    }

    /// Marks the candidate erased (the first step of an erasure: from here every read path and
    /// every capture refuses them) and wipes their external reference. Idempotent.
    pub fn mark_erased(&self, c: &CandidateId, at: &str) -> Result<(), CatalogError> {
        self.db().execute(
            "UPDATE candidates SET erased_at = COALESCE(erased_at, ?2), external_ref = '',
                 language = NULL
             WHERE id = ?1",
            params![c.to_string(), at],
        )?;
        Ok(())
    }

    /// Ended interviews whose recording is still kept, of candidates not erased, with when
    /// they ended.
    pub fn recordings_kept(&self) -> Result<Vec<(InterviewId, String)>, CatalogError> {
        let db = self.db();
        let mut st = db.prepare(
            "SELECT i.id, i.ended_at FROM interviews i JOIN candidates c ON c.id = i.candidate_id
             WHERE i.ended_at IS NOT NULL AND i.recording_expired_at IS NULL
               AND c.erased_at IS NULL
               AND EXISTS (SELECT 1 FROM segments s WHERE s.interview_id = i.id)",
        )?;
        let rows = st.query_map(params![], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every stored analysis output (report or rendition) of candidates not erased.
    pub fn analysis_outputs_kept(&self) -> Result<Vec<super::AnalysisRow>, CatalogError> {
        let ids: Vec<InterviewId> = {
            let db = self.db();
            let mut st = db.prepare(
                "SELECT DISTINCT a.interview_id FROM analysis_outputs a
                 JOIN interviews i ON i.id = a.interview_id
                 JOIN candidates c ON c.id = i.candidate_id
                 WHERE c.erased_at IS NULL AND a.object_key IS NOT NULL",
            )?;
            st.query_map(params![], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        let mut out = Vec::new();
        for i in ids {
            out.extend(
                self.analysis_outputs(&i)?
                    .into_iter()
                    .filter(|o| o.object_key.is_some()),
            );
        }
        Ok(out)
    }

    /// Removes one analysis output's row (its object is deleted by the caller).
    pub fn delete_analysis_output(&self, o: &super::AnalysisRow) -> Result<(), CatalogError> {
        self.db().execute(
            "DELETE FROM analysis_outputs WHERE interview_id = ?1 AND analyzer = ?2
               AND segment IS NOT DISTINCT FROM ?3 AND kind = ?4",
            params![o.interview.to_string(), o.analyzer, o.segment, o.kind],
        )?;
        Ok(())
    }

    /// Marks an interview's recording expired and removes its segment rows and links.
    pub fn expire_recording(&self, i: &InterviewId, at: &str) -> Result<(), CatalogError> {
        let db = self.db();
        let tx = db.transaction()?;
        tx.execute(
            "UPDATE interviews SET recording_expired_at = COALESCE(recording_expired_at, ?2)
             WHERE id = ?1",
            params![i.to_string(), at],
        )?;
        tx.execute(
            "DELETE FROM segments WHERE interview_id = ?1",
            params![i.to_string()],
        )?;
        tx.execute(
            "DELETE FROM download_links WHERE interview_id = ?1",
            params![i.to_string()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// When the interview's recording was deleted at the end of its retention.
    pub fn recording_expired_at(&self, i: &InterviewId) -> Result<Option<String>, CatalogError> {
        Ok(self
            .db()
            .query_row(
                "SELECT recording_expired_at FROM interviews WHERE id = ?1",
                params![i.to_string()],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten())
    }

    /// Removes everything of an erased candidate's that the catalog holds but the tombstone,
    /// their consent events (the basis provision records name) and the provision records the
    /// law keeps: wrapped keys, segment and analysis rows, tokens, download links; cancels
    /// their pending `*.ready` deliveries. One transaction; the WAL is truncated after it, so no
    /// copy of a removed row stays in the database's files.
    pub fn erase_candidate_rows(&self, c: &CandidateId) -> Result<Erased, CatalogError> {
        let db = self.db();
        let tx = db.transaction()?;
        let cid = c.to_string();
        let interviews: Vec<InterviewId> = {
            let mut st = tx.prepare("SELECT id FROM interviews WHERE candidate_id = ?1")?;
            st.query_map(params![cid], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        let of_interviews = "interview_id IN (SELECT id FROM interviews WHERE candidate_id = ?1)";
        let deliveries_cancelled =
            super::release::cancel_pending_ready(&tx, c, None, "candidate erased")?;
        let erased = Erased {
            keys_destroyed: tx.execute(
                "DELETE FROM candidate_keys WHERE candidate_id = ?1",
                params![cid],
            )?,
            segments: tx.execute(
                &format!("DELETE FROM segments WHERE {of_interviews}"),
                params![cid],
            )?,
            analysis_outputs: tx.execute(
                &format!("DELETE FROM analysis_outputs WHERE {of_interviews}"),
                params![cid],
            )?,
            download_links: tx.execute(
                &format!("DELETE FROM download_links WHERE {of_interviews}"),
                params![cid],
            )?,
            interviews,
            deliveries_cancelled,
        };
        tx.execute(
            &format!("DELETE FROM ingest_tokens WHERE {of_interviews}"),
            params![cid],
        )?;
        tx.execute(
            &format!("DELETE FROM resume_tokens WHERE {of_interviews}"),
            params![cid],
        )?;
        // Their links and sessions end with them.
        tx.execute(
            "DELETE FROM web_sessions WHERE candidate_id = ?1",
            params![cid],
        )?;
        // What the front-end said the interview was for is theirs too.
        tx.execute(
            "UPDATE interviews SET job_ref = NULL WHERE candidate_id = ?1",
            params![cid],
        )?;
        tx.commit()?;
        db.scrub_deleted("candidates")?;
        Ok(erased)
    }

    /// The recipients that received anything of the candidate's (provision records, or a
    /// delivery), each once.
    pub fn recipients_of(&self, c: &CandidateId) -> Result<Vec<String>, CatalogError> {
        let db = self.db();
        let mut st = db.prepare(
            "SELECT recipient FROM provisions WHERE candidate_id = ?1
             UNION SELECT handle FROM outbox WHERE candidate_id = ?1 AND state = ?2
             ORDER BY 1",
        )?;
        let rows = st.query_map(params![c.to_string(), OutboxState::Delivered], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
