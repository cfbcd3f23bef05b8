//! The audit log in the shared PostgreSQL database, for kiroku on more than one node: the
//! same lines as `log.jsonl` and `checkpoints.jsonl`, one row each. Appends take the
//! log's own advisory lock (see [`crate::sqldb`]; not the catalog writers': no transaction
//! writes both) and read the chain's end inside it, so the entries of every node form one
//! line. A process's appends are batched, one transaction for all its threads' entries
//! waiting at the time (a group commit), so the one line does not make every segment of
//! every node wait for a commit of its own.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::sqldb::{Connection, Location, Transaction, Value, params};

use super::{AuditError, GENESIS, entry_seq_hash};

const STEPS: &[&str] = &["CREATE TABLE audit_entries (
        seq INTEGER PRIMARY KEY,
        line TEXT NOT NULL
     );
     CREATE TABLE audit_checkpoints (
        n INTEGER PRIMARY KEY AUTOINCREMENT,
        line TEXT NOT NULL
     );"];

/// An entry waiting for its turn to be appended: what [`super::Audit`] builds its line from.
pub(super) struct Pending {
    pub(super) event: String,
    pub(super) actor: serde_json::Value,
    pub(super) data: serde_json::Value,
}

/// What an entry became: its seq and hash, its line, and the checkpoint over it if one is due.
pub(super) type Made = (u64, [u8; 32], String, Option<String>);

pub(super) struct SharedLog {
    db: Mutex<Connection>,
    queue: Mutex<Queue>,
}

/// Entries handed to the log and not yet written, and what became of those another thread
/// wrote for them.
#[derive(Default)]
struct Queue {
    next_ticket: u64,
    waiting: Vec<(u64, Pending)>,
    done: HashMap<u64, Result<u64, String>>,
}

impl SharedLog {
    pub(super) fn open(url: &str) -> Result<SharedLog, AuditError> {
        let db = Connection::open_with_lock(&Location::Postgres(url.to_string()), "audit")?;
        db.migrate("audit_version", STEPS)?;
        Ok(SharedLog {
            db: Mutex::new(db),
            queue: Mutex::new(Queue::default()),
        })
    }

    fn db(&self) -> MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `entry` durably; its seq. Entries from this process's threads are written in
    /// batches, a group commit: each waits for the connection, and whoever gets it writes
    /// every entry waiting then (its own among them) in one transaction, so one commit's
    /// flush and one turn of the lock carry them all. `make` builds an entry from the chain's
    /// end (reading the last checkpoint only if it asks); `publish` is told of each checkpoint
    /// once it is committed, in order.
    pub(super) fn append(
        &self,
        entry: Pending,
        make: impl FnMut(u64, [u8; 32], Pending, &mut dyn FnMut() -> Option<String>) -> Made,
        publish: impl Fn(u64, &str),
    ) -> Result<u64, AuditError> {
        let ticket = {
            let mut q = self.queue();
            let ticket = q.next_ticket;
            q.next_ticket += 1;
            q.waiting.push((ticket, entry));
            ticket
        };
        let db = self.db();
        if let Some(done) = self.queue().done.remove(&ticket) {
            return done.map_err(AuditError::Batch);
        }
        let batch = std::mem::take(&mut self.queue().waiting);
        let tickets: Vec<u64> = batch.iter().map(|(t, _)| *t).collect();
        match write_batch(&db, batch, make) {
            Ok((seqs, checkpoints)) => {
                for (seq, text) in &checkpoints {
                    publish(*seq, text);
                }
                let mut q = self.queue();
                let mut own = None;
                for (t, seq) in tickets.into_iter().zip(seqs) {
                    if t == ticket {
                        own = Some(seq);
                    } else {
                        q.done.insert(t, Ok(seq));
                    }
                }
                Ok(own.expect("the writer's own entry is in its batch"))
            }
            Err(e) => {
                let mut q = self.queue();
                for t in tickets.into_iter().filter(|t| *t != ticket) {
                    q.done.insert(t, Err(e.to_string()));
                }
                Err(e)
            }
        }
    }

    /// Writes the checkpoint `make` signs over the chain's end (none when the log is empty).
    pub(super) fn checkpoint_tail(
        &self,
        make: impl FnOnce(u64, [u8; 32], Option<&str>) -> String,
    ) -> Result<Option<(u64, String)>, AuditError> {
        let db = self.db();
        let (tx, (seq, hash), last) = open_at_end(&db)?;
        if seq == 0 {
            return Ok(None);
        }
        let text = make(seq, hash, last.as_deref());
        tx.commit_with(&[(INSERT_CHECKPOINT, vec![Value::Text(text.trim_end().into())])])?;
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

/// Writes `batch` after the chain's end in one transaction: each entry's seq, in order, and
/// the checkpoints written with them.
#[allow(clippy::type_complexity)]
fn write_batch(
    db: &Connection,
    batch: Vec<(u64, Pending)>,
    mut make: impl FnMut(u64, [u8; 32], Pending, &mut dyn FnMut() -> Option<String>) -> Made,
) -> Result<(Vec<u64>, Vec<(u64, String)>), AuditError> {
    let (tx, (mut seq, mut hash), mut last) = open_at_end(db)?;
    let mut seqs = Vec::with_capacity(batch.len());
    let mut checkpoints = Vec::new();
    let mut writes = Vec::new();
    for (_, entry) in batch {
        let mut last_checkpoint = || last.clone();
        let (s, h, line, checkpoint) = make(seq, hash, entry, &mut last_checkpoint);
        writes.push((
            INSERT_ENTRY,
            vec![Value::Integer(s as i64), Value::Text(line)],
        ));
        if let Some(text) = checkpoint {
            let line = text.trim_end().to_string();
            writes.push((INSERT_CHECKPOINT, vec![Value::Text(line.clone())]));
            last = Some(line);
            checkpoints.push((s, text));
        }
        (seq, hash) = (s, h);
        seqs.push(s);
    }
    // The entries and the commit in one round trip: the log's lock is held for the
    // tail's read and the server's writing, not for a round trip per entry.
    tx.commit_with(&writes)?;
    Ok((seqs, checkpoints))
}

const INSERT_ENTRY: &str = "INSERT INTO audit_entries (seq, line) VALUES (?1, ?2)";
const INSERT_CHECKPOINT: &str = "INSERT INTO audit_checkpoints (line) VALUES (?1)";

/// A transaction holding the log's lock, opened with the chain's end (seq and hash) and the
/// last checkpoint, read in the round trip that takes the lock.
#[allow(clippy::type_complexity)]
fn open_at_end(
    db: &Connection,
) -> Result<(Transaction<'_>, (u64, [u8; 32]), Option<String>), AuditError> {
    let (tx, mut ends) = db.transaction_reading(&[
        "SELECT line FROM audit_entries ORDER BY seq DESC LIMIT 1",
        "SELECT line FROM audit_checkpoints ORDER BY n DESC LIMIT 1",
    ])?;
    let last_checkpoint = ends.pop().flatten();
    let tail = tail_of(ends.pop().flatten().as_deref())?;
    Ok((tx, tail, last_checkpoint))
}

/// The seq and hash of the chain whose last line is `last` (none: the genesis).
fn tail_of(last: Option<&str>) -> Result<(u64, [u8; 32]), AuditError> {
    match last {
        None => Ok((0, GENESIS)),
        Some(line) => entry_seq_hash(line).map_err(|why| AuditError::Tail {
            path: "audit_entries".into(),
            why,
        }),
    }
}
