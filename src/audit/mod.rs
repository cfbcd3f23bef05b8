//! The audit log: an append-only, hash-chained record of everything that decides or moves
//! personal data. Other modules may only append to it ([`Audit::record`]); `kiroku audit
//! verify` ([`verify`]) checks it.
//!
//! `<data_dir>/audit/log.jsonl` holds one entry per line:
//!
//! ```text
//! {"seq":n,"at":"…","event":"consent.granted","actor":"service","data":{…},"prev":"<hash n-1>","hash":"<hash n>"}
//! hash n = SHA-256("kiroku-audit/v1\n" + canonical JSON of the entry without `hash`)
//! ```
//!
//! Every `checkpoint_every_entries` entries, on the first entry after
//! `checkpoint_every_seconds`, and after every release and consent change (the entries that
//! matter most), a checkpoint line `{seq, hash, at, prev_sig, kid, sig}` signed with the
//! operator's Ed25519 key goes to `checkpoints.jsonl`: rewriting the chain from some entry on
//! then needs the operator's private key too. Checkpoints are chained like the entries (each
//! signs the previous one's signature, as CloudTrail's digest files do), and each is also
//! written to `[audit] publish_dir`, a folder outside the data dir (another disk, a WORM
//! mount), never overwritten there: cutting the log and its checkpoints back to an earlier
//! point, even with the signing key, leaves the published ones to tell (`verify`). Entries carry pseudonymous ids only, so erasing a
//! candidate never has to break the chain.
//!
//! The CLI and the server may append at once: each append holds an exclusive lock on the log
//! file and re-reads the tail when another process wrote since.

mod event;
mod shared;
mod verify;

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

pub use event::{AnalysisStop, ConsentChange, DeliveryAttempt, Event};
pub use verify::{AuditReport, VerifyError, verify, verify_text};

use crate::signing::{OperatorKey, canonical_json};

const DOMAIN: &[u8] = b"kiroku-audit/v1\n";
/// Signature domain of checkpoints.
pub const CHECKPOINT_DOMAIN: &str = "kiroku-audit-checkpoint/v1";
const GENESIS: [u8; 32] = [0; 32];

/// Why an entry could not be appended.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("audit log {path} ends in an entry that cannot be read: {why}")]
    Tail { path: String, why: String },
    #[error("audit log in the shared database: {0}")]
    Database(#[from] crate::sqldb::Error),
    /// The batch this entry was written in failed (the error of the thread that wrote it).
    #[error("audit log in the shared database: {0}")]
    Batch(String),
}

/// Who did what an entry records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The front-end's backend, with the service token.
    Service,
    /// An operator, with the operator token or at the command line.
    Operator,
    /// A recruiting company, by handle.
    Recruiter(String),
    /// kiroku itself (capture, deliveries, retention).
    System,
    /// The candidate, in their own session (opened from a link the front-end asked for).
    Candidate,
}

impl Actor {
    fn as_value(&self) -> Value {
        match self {
            Actor::Service => json!("service"),
            Actor::Operator => json!("operator"),
            Actor::Recruiter(h) => json!(format!("recruiter:{h}")),
            Actor::System => json!("kiroku"),
            Actor::Candidate => json!("candidate"),
        }
    }
}

/// When checkpoints are written, and where they are published.
#[derive(Debug, Clone)]
pub struct CheckpointPolicy {
    pub every_entries: u64,
    pub every_seconds: u64,
    /// A folder outside the data dir that receives a copy of every checkpoint.
    pub publish_dir: Option<PathBuf>,
    /// Whatever else is told of every checkpoint (an S3 bucket, a witness: see `anchor`).
    pub sinks: Vec<Arc<dyn CheckpointSink>>,
}

/// Told of every checkpoint once it is durable in the log's folder. Called with the log
/// locked, so it only hands the checkpoint on (to a queue); it never waits on a network.
pub trait CheckpointSink: Send + Sync + std::fmt::Debug {
    /// `line` is the checkpoint as written to `checkpoints.jsonl`, newline included.
    fn checkpointed(&self, seq: u64, line: &str);
}

/// A checkpoint as published outside the data dir, read back for `verify`.
#[derive(Debug, Clone)]
pub struct Published {
    /// Where it was read from (a file, an object key), for the report.
    pub source: String,
    pub text: String,
}

/// Reads the checkpoints published to `folder` (`[audit] publish_dir`); none when it does
/// not exist.
pub fn read_published_dir(folder: &Path) -> Result<Vec<Published>, VerifyError> {
    let mut files: Vec<_> = match std::fs::read_dir(folder) {
        Ok(rd) => rd.flatten().map(|e| e.path()).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(VerifyError::Unreadable(format!(
                "{}: {e}",
                folder.display()
            )));
        }
    };
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f)
                .map_err(|e| VerifyError::Unreadable(format!("{}: {e}", f.display())))?;
            Ok(Published {
                source: f.display().to_string(),
                text,
            })
        })
        .collect()
}

/// The name a checkpoint at entry `seq` is published under (a file, an object key's last
/// part); names sort by `seq`.
pub fn published_name(seq: u64) -> String {
    format!("checkpoint-{seq:012}.json")
}

/// The appending side of the log.
pub struct Audit {
    dir: PathBuf,
    signer: Arc<OperatorKey>,
    policy: CheckpointPolicy,
    state: Mutex<Tail>,
    /// The log in the shared PostgreSQL database (kiroku on several nodes) instead of the
    /// files in `dir`.
    shared: Option<shared::SharedLog>,
}

/// What this process knows of the end of the log.
struct Tail {
    len: u64,
    seq: u64,
    hash: [u8; 32],
}

impl Audit {
    /// Opens (creating) the log in `dir`.
    pub fn open(
        dir: &Path,
        signer: Arc<OperatorKey>,
        policy: CheckpointPolicy,
    ) -> Result<Audit, AuditError> {
        std::fs::create_dir_all(dir).map_err(|source| AuditError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let audit = Audit {
            dir: dir.to_path_buf(),
            signer,
            policy,
            state: Mutex::new(Tail {
                len: u64::MAX,
                seq: 0,
                hash: GENESIS,
            }),
            shared: None,
        };
        Ok(audit)
    }

    /// Opens the log kept in the PostgreSQL database at `url` (the catalog's): every node
    /// appends to the one chain there. `dir` still holds the anchor sinks' markers.
    pub fn open_shared(
        dir: &Path,
        url: &str,
        signer: Arc<OperatorKey>,
        policy: CheckpointPolicy,
    ) -> Result<Audit, AuditError> {
        let mut audit = Audit::open(dir, signer, policy)?;
        audit.shared = Some(shared::SharedLog::open(url)?);
        Ok(audit)
    }

    /// Adds checkpoint sinks (the anchor's, started once the log could tell what they missed).
    pub fn add_sinks(&mut self, sinks: impl IntoIterator<Item = Arc<dyn CheckpointSink>>) {
        self.policy.sinks.extend(sinks);
    }

    /// Whether the log is in the shared database rather than the audit folder's files.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("log.jsonl")
    }

    pub fn checkpoints_path(&self) -> PathBuf {
        self.dir.join("checkpoints.jsonl")
    }

    /// Appends one entry durably; returns its sequence number.
    pub fn record(&self, event: Event, actor: &Actor) -> Result<u64, AuditError> {
        let (name, data) = event.into_parts();
        self.append(&name, actor, data)
    }

    /// Records and logs a failure to record, for callers that must go on regardless (a
    /// segment already acknowledged cannot be taken back because its entry failed).
    pub fn record_or_warn(&self, event: Event, actor: &Actor) {
        let (name, data) = event.into_parts();
        if let Err(e) = self.append(&name, actor, data) {
            tracing::error!(event = name, error = %e, "audit entry could not be written");
        }
    }

    /// Appends one entry: the chain's next link, durable, checkpointed when due.
    fn append(&self, event: &str, actor: &Actor, data: Value) -> Result<u64, AuditError> {
        if let Some(log) = &self.shared {
            let entry = shared::Pending {
                event: event.to_string(),
                actor: actor.as_value(),
                data,
            };
            return log.append(
                entry,
                |tail_seq, tail_hash, entry, last_checkpoint| {
                    let (seq, hash, at, line) =
                        self.next_entry(tail_seq, tail_hash, &entry.event, entry.actor, entry.data);
                    let checkpoint = self
                        .checkpoint_due(seq, &entry.event, &mut *last_checkpoint)
                        .then(|| {
                            self.checkpoint_text(seq, &hash, &at, last_checkpoint().as_deref())
                        });
                    (seq, hash, line, checkpoint)
                },
                |seq, text| self.publish(seq, text),
            );
        }
        let path = self.log_path();
        let io = |source| AuditError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut tail = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        file.lock().map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len != tail.len {
            *tail = read_tail(&mut file, len, &path)?;
        }
        let (seq, hash, at, mut line) =
            self.next_entry(tail.seq, tail.hash, event, actor.as_value(), data);
        line.push('\n');
        file.write_all(line.as_bytes()).map_err(io)?;
        file.sync_data().map_err(io)?;
        *tail = Tail {
            len: len + line.len() as u64,
            seq,
            hash,
        };
        if self.checkpoint_due(seq, event, &mut || last_line(&self.checkpoints_path())) {
            self.checkpoint(seq, &hash, &at)?;
        }
        // The lock on the log is released when `file` closes, after any checkpoint.
        Ok(seq)
    }

    /// The entry after (`seq`, `prev`): its number, hash, time and line (no newline).
    fn next_entry(
        &self,
        seq: u64,
        prev: [u8; 32],
        event: &str,
        actor: Value,
        data: Value,
    ) -> (u64, [u8; 32], String, String) {
        let at = crate::util::now_rfc3339();
        let seq = seq + 1;
        let mut entry = json!({
            "seq": seq,
            "at": at,
            "event": event,
            "actor": actor,
            "data": data,
            "prev": hex::encode(prev),
        });
        let hash = entry_hash(&entry);
        entry["hash"] = json!(hex::encode(hash));
        (seq, hash, at, canonical_json(&entry))
    }

    /// Whether entry `seq` (of `event`) gets a checkpoint. The last checkpoint written is read
    /// (`last_checkpoint`) only when its age decides, not on every append.
    fn checkpoint_due(
        &self,
        seq: u64,
        event: &str,
        last_checkpoint: &mut dyn FnMut() -> Option<String>,
    ) -> bool {
        if event.starts_with("release.")
            || event.starts_with("consent.")
            || event == "candidate.erased"
        {
            return true;
        }
        if self.policy.every_entries > 0 && seq.is_multiple_of(self.policy.every_entries) {
            return true;
        }
        let Some(last) = last_checkpoint() else {
            return true;
        };
        let Ok(v) = serde_json::from_str::<Value>(&last) else {
            return true;
        };
        let last_at = v["at"]
            .as_str()
            .and_then(|t| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            })
            .map(|t| t.unix_timestamp())
            .unwrap_or(0);
        crate::util::now_unix() - last_at >= self.policy.every_seconds as i64
    }

    /// A checkpoint over the chain up to `seq`, signed, chained to `last_checkpoint`; its
    /// line, newline included.
    fn checkpoint_text(
        &self,
        seq: u64,
        hash: &[u8; 32],
        at: &str,
        last_checkpoint: Option<&str>,
    ) -> String {
        // Chained: the previous checkpoint's signature is part of what this one signs.
        let prev_sig = last_checkpoint
            .and_then(|l| serde_json::from_str::<Value>(l).ok())
            .and_then(|v| v["sig"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let body = json!({"seq": seq, "hash": hex::encode(hash), "at": at, "prev_sig": prev_sig});
        let sig = self.signer.sign_json(CHECKPOINT_DOMAIN, &body);
        let mut line = body;
        line["kid"] = json!(self.signer.kid());
        line["sig"] = json!(sig);
        let mut text = canonical_json(&line);
        text.push('\n');
        text
    }

    /// Signs and appends a checkpoint over the chain up to `seq` to the checkpoints file.
    fn checkpoint(&self, seq: u64, hash: &[u8; 32], at: &str) -> Result<(), AuditError> {
        let path = self.checkpoints_path();
        let io = |source| AuditError::Io {
            path: path.display().to_string(),
            source,
        };
        let text = self.checkpoint_text(seq, hash, at, last_line(&path).as_deref());
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_data().map_err(io)?;
        self.publish(seq, &text);
        Ok(())
    }

    /// Hands a durable checkpoint to `publish_dir` and the sinks.
    fn publish(&self, seq: u64, text: &str) {
        if let Some(dir) = &self.policy.publish_dir
            && let Err(e) = publish(dir, seq, text)
        {
            // The local checkpoint stands; `verify` shows the published copy missing.
            tracing::error!(dir = %dir.display(), error = %e, "an audit checkpoint could not be published");
        }
        for sink in &self.policy.sinks {
            sink.checkpointed(seq, text);
        }
    }

    /// Writes a checkpoint now over whatever the log holds (at shutdown, say).
    pub fn checkpoint_now(&self) -> Result<(), AuditError> {
        if let Some(log) = &self.shared {
            if let Some((seq, text)) = log.checkpoint_tail(|seq, hash, last| {
                self.checkpoint_text(seq, &hash, &crate::util::now_rfc3339(), last)
            })? {
                self.publish(seq, &text);
            }
            return Ok(());
        }
        let path = self.log_path();
        let io = |source| AuditError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut file = match OpenOptions::new().read(true).append(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(e)),
        };
        file.lock().map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let tail = read_tail(&mut file, len, &path)?;
        if tail.seq == 0 {
            return Ok(());
        }
        self.checkpoint(tail.seq, &tail.hash, &crate::util::now_rfc3339())
    }

    /// Verifies the whole log (`verify`), read where it lives: the files, or the database.
    pub fn verify(
        &self,
        public_key_hex: &str,
        published: &[Published],
    ) -> Result<AuditReport, VerifyError> {
        match &self.shared {
            Some(log) => {
                let (entries, checkpoints) = log
                    .texts()
                    .map_err(|e| VerifyError::Unreadable(e.to_string()))?;
                verify::verify_text(entries.as_bytes(), &checkpoints, public_key_hex, published)
            }
            None => verify(&self.dir, public_key_hex, published),
        }
    }

    /// Every checkpoint line written so far (what the anchor sinks catch up on at start).
    pub fn checkpoints_text(&self) -> Result<String, AuditError> {
        match &self.shared {
            Some(log) => Ok(log.texts()?.1),
            None => match std::fs::read_to_string(self.checkpoints_path()) {
                Ok(t) => Ok(t),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
                Err(source) => Err(AuditError::Io {
                    path: self.checkpoints_path().display().to_string(),
                    source,
                }),
            },
        }
    }

    /// The log's entries, oldest first, as their lines (tests, the console's audit view).
    pub fn entry_lines(&self) -> Result<Vec<String>, AuditError> {
        match &self.shared {
            Some(log) => Ok(log.texts()?.0.lines().map(str::to_owned).collect()),
            None => match std::fs::read_to_string(self.log_path()) {
                Ok(t) => Ok(t.lines().map(str::to_owned).collect()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
                Err(source) => Err(AuditError::Io {
                    path: self.log_path().display().to_string(),
                    source,
                }),
            },
        }
    }
}

/// Writes checkpoint `text` (at entry `seq`) to `dir` as its own file, never replacing one.
fn publish(dir: &Path, seq: u64, text: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(published_name(seq));
    let mut f = match OpenOptions::new().write(true).create_new(true).open(&path) {
        Ok(f) => f,
        // Two checkpoints at one entry (a shutdown's, say): the first one published stays.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    };
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    File::open(dir)?.sync_all()
}

/// The hash of an entry: over everything but its own `hash` field.
fn entry_hash(entry: &Value) -> [u8; 32] {
    let mut without = entry.clone();
    if let Some(o) = without.as_object_mut() {
        o.remove("hash");
    }
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(DOMAIN);
    ctx.update(canonical_json(&without).as_bytes());
    ctx.finish().as_ref().try_into().expect("32 bytes")
}

/// Reads the last entry's sequence number and hash.
fn read_tail(file: &mut File, len: u64, path: &Path) -> Result<Tail, AuditError> {
    let fail = |why: String| AuditError::Tail {
        path: path.display().to_string(),
        why,
    };
    if len == 0 {
        return Ok(Tail {
            len,
            seq: 0,
            hash: GENESIS,
        });
    }
    let back = len.min(64 * 1024);
    let mut buf = vec![0u8; back as usize];
    file.seek(SeekFrom::Start(len - back))
        .and_then(|_| file.read_exact(&mut buf))
        .map_err(|e| fail(e.to_string()))?;
    if buf.last() != Some(&b'\n') {
        return Err(fail(
            "the last line is incomplete; run `kiroku audit verify`".into(),
        ));
    }
    let text = String::from_utf8_lossy(&buf[..buf.len() - 1]);
    let last = text.rsplit('\n').next().unwrap_or_default();
    let (seq, hash) = entry_seq_hash(last).map_err(fail)?;
    Ok(Tail { len, seq, hash })
}

/// An entry line's sequence number and hash.
fn entry_seq_hash(line: &str) -> Result<(u64, [u8; 32]), String> {
    let v: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let seq = v["seq"].as_u64().ok_or("no seq")?;
    let hash = v["hash"]
        .as_str()
        .and_then(|h| hex::decode(h).ok())
        .and_then(|h| <[u8; 32]>::try_from(h).ok())
        .ok_or("no hash")?;
    Ok((seq, hash))
}

/// The last line of a small-lined file, reading only its end.
fn last_line(path: &Path) -> Option<String> {
    let mut f = File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let back = len.min(4096);
    f.seek(SeekFrom::Start(len - back)).ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    text.lines().last().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audit(dir: &Path, every: u64) -> Audit {
        audit_publishing(dir, every, None)
    }

    fn audit_publishing(dir: &Path, every: u64, publish_dir: Option<PathBuf>) -> Audit {
        let key = Arc::new(OperatorKey::load_or_create(&dir.join("op.pk8")).unwrap());
        Audit::open(
            &dir.join("audit"),
            key,
            CheckpointPolicy {
                every_entries: every,
                every_seconds: 3600,
                publish_dir,
                sinks: Vec::new(),
            },
        )
        .unwrap()
    }

    #[test]
    fn entries_chain_and_two_writers_share_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let a = audit(dir.path(), 3);
        let b = audit(dir.path(), 3);
        assert_eq!(a.append("x", &Actor::System, json!({})).unwrap(), 1);
        assert_eq!(b.append("y", &Actor::Operator, json!({})).unwrap(), 2);
        assert_eq!(a.append("z", &Actor::Service, json!({"n": 1})).unwrap(), 3);
        let pk = a.signer.public_key_hex();
        let report = verify(&a.dir, &pk, &[]).unwrap();
        assert_eq!(report.entries, 3);
        // The first entry writes a checkpoint (none existed), and seq 3 is a multiple of 3.
        assert_eq!(report.checkpoints, 2);
    }

    /// A log of `n` entries with a checkpoint every 4; returns (audit, its lines, public key).
    fn log_of(dir: &Path, n: u64) -> (Audit, Vec<String>, String) {
        let a = audit(dir, 4);
        for i in 0..n {
            a.append("segment.stored", &Actor::System, json!({"segment": i}))
                .unwrap();
        }
        let lines = std::fs::read_to_string(a.log_path())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        let pk = a.signer.public_key_hex();
        (a, lines, pk)
    }

    fn rewrite(a: &Audit, lines: &[String]) {
        std::fs::write(a.log_path(), lines.join("\n") + "\n").unwrap();
    }

    #[test]
    fn verify_names_an_edited_entry() {
        let dir = tempfile::tempdir().unwrap();
        let (a, mut lines, pk) = log_of(dir.path(), 6);
        lines[2] = lines[2].replace("\"segment\":2", "\"segment\":9");
        rewrite(&a, &lines);
        let e = verify(&a.dir, &pk, &[]).unwrap_err();
        assert!(matches!(e, VerifyError::Edited { seq: 3, .. }), "{e}");
    }

    #[test]
    fn verify_names_a_removed_entry() {
        let dir = tempfile::tempdir().unwrap();
        let (a, mut lines, pk) = log_of(dir.path(), 6);
        lines.remove(3);
        rewrite(&a, &lines);
        assert_eq!(
            verify(&a.dir, &pk, &[]).unwrap_err(),
            VerifyError::Removed { seq: 4, line: 4 }
        );
    }

    #[test]
    fn verify_names_reordered_and_inserted_entries() {
        let dir = tempfile::tempdir().unwrap();
        let (a, mut lines, pk) = log_of(dir.path(), 6);
        lines.swap(1, 2);
        rewrite(&a, &lines);
        assert_eq!(
            verify(&a.dir, &pk, &[]).unwrap_err(),
            VerifyError::Reordered { seq: 2, line: 3 }
        );
        lines.swap(1, 2);
        let copy = lines[1].clone();
        lines.insert(2, copy);
        rewrite(&a, &lines);
        assert_eq!(
            verify(&a.dir, &pk, &[]).unwrap_err(),
            VerifyError::InsertedOrReordered {
                seq: 3,
                found: 2,
                line: 3
            }
        );
    }

    #[test]
    fn a_chain_rewritten_without_the_signing_key_fails_at_its_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let (a, lines, pk) = log_of(dir.path(), 6);
        // An attacker recomputes every hash from entry 2 on, but cannot re-sign checkpoints.
        let mut prev = GENESIS;
        let mut forged = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            let mut v: Value = serde_json::from_str(l).unwrap();
            if i == 1 {
                v["data"]["segment"] = json!(99);
            }
            v["prev"] = json!(hex::encode(prev));
            let h = entry_hash(&v);
            v["hash"] = json!(hex::encode(h));
            prev = h;
            forged.push(canonical_json(&v));
        }
        rewrite(&a, &forged);
        assert_eq!(
            verify(&a.dir, &pk, &[]).unwrap_err(),
            VerifyError::CheckpointMismatch { n: 2, seq: 4 }
        );
    }

    #[test]
    fn a_log_cut_short_of_its_checkpoint_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let (a, lines, pk) = log_of(dir.path(), 6);
        rewrite(&a, &lines[..3]);
        assert_eq!(
            verify(&a.dir, &pk, &[]).unwrap_err(),
            VerifyError::Truncated {
                n: 2,
                seq: 4,
                last: 3
            }
        );
    }

    #[test]
    fn a_log_whose_checkpoints_were_removed_fails() {
        let dir = tempfile::tempdir().unwrap();
        let (a, _, pk) = log_of(dir.path(), 3);
        std::fs::write(a.checkpoints_path(), "").unwrap();
        assert_eq!(
            verify(&a.dir, &pk, &[]).unwrap_err(),
            VerifyError::NoCheckpoint { entries: 3 }
        );
    }

    #[test]
    fn checkpoints_signed_by_another_key_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (a, _, _) = log_of(dir.path(), 2);
        let other = OperatorKey::load_or_create(&dir.path().join("other.pk8")).unwrap();
        assert!(matches!(
            verify(&a.dir, &other.public_key_hex(), &[]).unwrap_err(),
            VerifyError::BadSignature { n: 1, .. }
        ));
    }

    /// Cut back to an earlier checkpoint, log and checkpoints alike (what someone with the
    /// data dir, even with the signing key, can do): the local files agree with each other,
    /// and only the published copies tell, naming the entries cut.
    #[test]
    fn a_log_cut_back_with_its_checkpoints_fails_against_the_published_ones() {
        let dir = tempfile::tempdir().unwrap();
        let a = audit_publishing(dir.path(), 4, Some(dir.path().join("witness")));
        for i in 0..12 {
            a.append("segment.stored", &Actor::System, json!({"segment": i}))
                .unwrap();
        }
        let pk = a.signer.public_key_hex();
        let witness = dir.path().join("witness");
        assert!(verify(&a.dir, &pk, &read_published_dir(&witness).unwrap()).is_ok());
        let lines: Vec<String> = std::fs::read_to_string(a.log_path())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        rewrite(&a, &lines[..8]);
        let checkpoints: Vec<String> = std::fs::read_to_string(a.checkpoints_path())
            .unwrap()
            .lines()
            .filter(|l| {
                serde_json::from_str::<Value>(l).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
                    <= 8
            })
            .map(str::to_owned)
            .collect();
        std::fs::write(a.checkpoints_path(), checkpoints.join("\n") + "\n").unwrap();
        assert!(
            verify(&a.dir, &pk, &[]).is_ok(),
            "the local files alone cannot tell"
        );
        let e = verify(&a.dir, &pk, &read_published_dir(&witness).unwrap()).unwrap_err();
        assert_eq!(e, VerifyError::CutBehindPublished { seq: 12, last: 8 });
        assert!(e.to_string().contains("entries 9 to 12 were cut"), "{e}");
    }

    #[test]
    fn a_checkpoint_removed_from_the_middle_breaks_the_checkpoint_chain() {
        let dir = tempfile::tempdir().unwrap();
        let (a, _, pk) = log_of(dir.path(), 12);
        let mut checkpoints: Vec<String> = std::fs::read_to_string(a.checkpoints_path())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        assert!(checkpoints.len() >= 3, "{checkpoints:?}");
        checkpoints.remove(1);
        std::fs::write(a.checkpoints_path(), checkpoints.join("\n") + "\n").unwrap();
        assert_eq!(
            verify(&a.dir, &pk, &[]).unwrap_err(),
            VerifyError::CheckpointUnchained { n: 2 }
        );
    }

    #[test]
    fn every_release_and_consent_change_is_checkpointed_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = audit(dir.path(), 1000);
        a.append("segment.stored", &Actor::System, json!({}))
            .unwrap();
        a.append("segment.stored", &Actor::System, json!({}))
            .unwrap();
        for event in ["consent.withdrawn", "release.provided"] {
            let seq = a.append(event, &Actor::System, json!({})).unwrap();
            let last: Value =
                serde_json::from_str(&last_line(&a.checkpoints_path()).unwrap()).unwrap();
            assert_eq!(last["seq"], seq, "{event} is signed for at once");
        }
        let report = verify(&a.dir, &a.signer.public_key_hex(), &[]).unwrap();
        assert_eq!((report.entries, report.unsigned_tail), (4, 0));
    }
}
