//! The audit log in the shared PostgreSQL database, for kiroku on more than one node: the
//! same lines as `log.jsonl` and `checkpoints.jsonl`, one row each. Appends take the
//! database's writers' lock (see [`crate::sqldb`]) and read the chain's end inside it, so the
//! entries of every node form one line.

use std::sync::{Mutex, MutexGuard};

use crate::sqldb::{Connection, Location, OptionalExtension, params};

use super::{AuditError, GENESIS, entry_seq_hash};

const STEPS: &[&str] = &["CREATE TABLE audit_entries (
        seq INTEGER PRIMARY KEY,
        line TEXT NOT NULL
     );
     CREATE TABLE audit_checkpoints (
        n INTEGER PRIMARY KEY AUTOINCREMENT,
        line TEXT NOT NULL
     );"];

pub(super) struct SharedLog {
    db: Mutex<Connection>,
}

impl SharedLog {
    pub(super) fn open(url: &str) -> Result<SharedLog, AuditError> {
        let db = Connection::open(&Location::Postgres(url.to_string()))?;
        db.migrate("audit_version", STEPS)?;
        Ok(SharedLog { db: Mutex::new(db) })
    }

    fn db(&self) -> MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends the entry `make` builds from the chain's end (its seq and hash, and the last
    /// checkpoint, read only if `make` asks), and the checkpoint it returns, in one
    /// transaction; the entry's seq and the checkpoint.
    pub(super) fn append(
        &self,
        make: impl FnOnce(
            u64,
            [u8; 32],
            &mut dyn FnMut() -> Option<String>,
        ) -> (u64, String, Option<String>),
    ) -> Result<(u64, Option<String>), AuditError> {
        let db = self.db();
        let tx = db.transaction()?;
        let (tail_seq, tail_hash) = tail(&tx)?;
        let mut read: Option<Result<Option<String>, AuditError>> = None;
        let mut last = || match read.get_or_insert_with(|| last_checkpoint(&tx)) {
            Ok(line) => line.clone(),
            Err(_) => None,
        };
        let (seq, line, checkpoint) = make(tail_seq, tail_hash, &mut last);
        if let Some(Err(e)) = read {
            return Err(e);
        }
        tx.execute(
            "INSERT INTO audit_entries (seq, line) VALUES (?1, ?2)",
            params![seq, line],
        )?;
        if let Some(text) = &checkpoint {
            tx.execute(
                "INSERT INTO audit_checkpoints (line) VALUES (?1)",
                params![text.trim_end()],
            )?;
        }
        tx.commit()?;
        Ok((seq, checkpoint))
    }

    /// Writes the checkpoint `make` signs over the chain's end (none when the log is empty).
    pub(super) fn checkpoint_tail(
        &self,
        make: impl FnOnce(u64, [u8; 32], Option<&str>) -> String,
    ) -> Result<Option<(u64, String)>, AuditError> {
        let db = self.db();
        let tx = db.transaction()?;
        let (seq, hash) = tail(&tx)?;
        if seq == 0 {
            return Ok(None);
        }
        let text = make(seq, hash, last_checkpoint(&tx)?.as_deref());
        tx.execute(
            "INSERT INTO audit_checkpoints (line) VALUES (?1)",
            params![text.trim_end()],
        )?;
        tx.commit()?;
        Ok(Some((seq, text)))
    }

    /// The entries and the checkpoints as the files would hold them (a line each), read
    /// together under the writers' lock so they agree.
    pub(super) fn texts(&self) -> Result<(String, String), AuditError> {
        let db = self.db();
        let tx = db.transaction()?;
        let lines = |sql: &str| -> Result<String, AuditError> {
            let mut out = String::new();
            for line in tx
                .prepare(sql)?
                .query_map(params![], |r| r.get::<_, String>(0))?
            {
                out.push_str(&line?);
                out.push('\n');
            }
            Ok(out)
        };
        let entries = lines("SELECT line FROM audit_entries ORDER BY seq")?;
        let checkpoints = lines("SELECT line FROM audit_checkpoints ORDER BY n")?;
        tx.commit()?;
        Ok((entries, checkpoints))
    }
}

fn tail(db: &Connection) -> Result<(u64, [u8; 32]), AuditError> {
    let last: Option<String> = db
        .query_row(
            "SELECT line FROM audit_entries ORDER BY seq DESC LIMIT 1",
            params![],
            |r| r.get(0),
        )
        .optional()?;
    match last {
        None => Ok((0, GENESIS)),
        Some(line) => entry_seq_hash(&line).map_err(|why| AuditError::Tail {
            path: "audit_entries".into(),
            why,
        }),
    }
}

fn last_checkpoint(db: &Connection) -> Result<Option<String>, AuditError> {
    Ok(db
        .query_row(
            "SELECT line FROM audit_checkpoints ORDER BY n DESC LIMIT 1",
            params![],
            |r| r.get(0),
        )
        .optional()?)
}
