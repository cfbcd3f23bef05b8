//! The catalog's side of the consent ledger: privacy-notice versions and the append-only
//! consent events. Nothing here updates or deletes an event.

use crate::sqldb::{OptionalExtension, params};

use super::{Catalog, CatalogError, ConsentEventRow, NoticeRow};
use crate::ids::CandidateId;
use crate::vocab::{ConsentAction, Scope};

const EVENT_COLUMNS: &str = "id, candidate_id, action, scope, recipient, country, at, notice_id, method, origin, language, withdraws, receipt";

fn event_from_row(r: &crate::sqldb::Row) -> crate::sqldb::Result<ConsentEventRow> {
    let (name, recipient, country): (String, Option<String>, Option<String>) =
        (r.get(3)?, r.get(4)?, r.get(5)?);
    let scope = Scope::parse(&name, recipient.as_deref(), country.as_deref()).map_err(|e| {
        crate::sqldb::Error::FromSqlConversionFailure(
            3,
            crate::sqldb::FromSqlError::Other(format!("consent scope: {e}").into()),
        )
    })?;
    Ok(ConsentEventRow {
        id: r.get(0)?,
        candidate: r.get(1)?,
        action: r.get(2)?,
        scope,
        at: r.get(6)?,
        notice_id: r.get(7)?,
        method: r.get(8)?,
        origin: r.get(9)?,
        language: r.get(10)?,
        withdraws: r.get(11)?,
        receipt: r.get(12)?,
    })
}

impl Catalog {
    /// Registers a notice version; false if the id is taken.
    pub fn insert_notice(&self, n: &NoticeRow) -> Result<bool, CatalogError> {
        let count = self.db().execute(
            "INSERT INTO notices (id, language, url, text_sha256, registered_at)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
            params![n.id, n.language, n.url, n.text_sha256, n.registered_at],
        )?;
        Ok(count == 1)
    }

    pub fn notice(&self, id: &str) -> Result<Option<NoticeRow>, CatalogError> {
        Ok(self
            .db()
            .query_row(
                "SELECT id, language, url, text_sha256, registered_at FROM notices WHERE id = ?1",
                params![id],
                notice_from_row,
            )
            .optional()?)
    }

    /// Every notice version, oldest first.
    pub fn notices(&self) -> Result<Vec<NoticeRow>, CatalogError> {
        let db = self.db();
        let mut st = db.prepare(
            "SELECT id, language, url, text_sha256, registered_at FROM notices ORDER BY seq",
        )?;
        let rows = st.query_map(params![], notice_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn append_consent_event(&self, e: &ConsentEventRow) -> Result<(), CatalogError> {
        self.db().execute(
            &format!(
                "INSERT INTO consent_events ({EVENT_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
            ),
            params![
                e.id,
                e.candidate.to_string(),
                e.action,
                e.scope.name(),
                e.scope.recipient(),
                e.scope.country(),
                e.at,
                e.notice_id,
                e.method,
                e.origin,
                e.language,
                e.withdraws,
                e.receipt
            ],
        )?;
        Ok(())
    }

    /// Appends a withdrawal, unless its grant was withdrawn already (by a request racing this
    /// one): false then, and nothing is written.
    pub fn append_withdrawal(&self, e: &ConsentEventRow) -> Result<bool, CatalogError> {
        match self.append_consent_event(e) {
            Ok(()) => Ok(true),
            Err(CatalogError::Db(e)) if e.is_constraint_violation() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// All consent events of a candidate, oldest first.
    pub fn consent_events(&self, c: &CandidateId) -> Result<Vec<ConsentEventRow>, CatalogError> {
        let db = self.db();
        let mut st = db.prepare(&format!(
            "SELECT {EVENT_COLUMNS} FROM consent_events WHERE candidate_id = ?1 ORDER BY seq"
        ))?;
        let rows = st.query_map(params![c.to_string()], event_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest withdrawal of a scope by a candidate.
    pub fn last_withdrawal(
        &self,
        c: &CandidateId,
        scope: &Scope,
    ) -> Result<Option<ConsentEventRow>, CatalogError> {
        Ok(self
            .consent_events(c)?
            .into_iter()
            .rfind(|e| e.action == ConsentAction::Withdraw && e.scope == *scope))
    }

    pub fn consent_event(&self, id: &str) -> Result<Option<ConsentEventRow>, CatalogError> {
        self.db()
            .query_row(
                &format!("SELECT {EVENT_COLUMNS} FROM consent_events WHERE id = ?1"),
                params![id],
                event_from_row,
            )
            .optional()
            .map_err(CatalogError::from)
    }
}

fn notice_from_row(r: &crate::sqldb::Row) -> crate::sqldb::Result<NoticeRow> {
    Ok(NoticeRow {
        id: r.get(0)?,
        language: r.get(1)?,
        url: r.get(2)?,
        text_sha256: r.get(3)?,
        registered_at: r.get(4)?,
    })
}
