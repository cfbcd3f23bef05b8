//! Checking the audit log: every entry's hash, the chain, every signed checkpoint and their
//! own chain, and, given the checkpoints published outside the data dir (a folder, an S3
//! bucket), that the log still reaches every checkpoint published. The first fault is named by its entry, so an auditor knows
//! where to look.

use std::path::Path;

use serde_json::Value;

use super::{CHECKPOINT_DOMAIN, GENESIS, Published, entry_hash};
use crate::signing::{key_id, verify_json};

/// What a clean log holds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditReport {
    pub entries: u64,
    pub checkpoints: u64,
    /// Entries after the last checkpoint: protected by the chain only, not yet by a signature.
    pub unsigned_tail: u64,
    /// Checkpoints published outside the data dir that the log was compared with.
    pub published_compared: u64,
}

/// The first fault found.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("cannot read the audit log: {0}")]
    Unreadable(String),
    #[error("entry {seq} was edited: {why}")]
    Edited { seq: u64, why: String },
    #[error("entry {seq} is missing: entries were removed before line {line}")]
    Removed { seq: u64, line: u64 },
    #[error(
        "line {line} holds entry {found} where entry {seq} belongs: an entry was inserted or reordered"
    )]
    InsertedOrReordered { seq: u64, found: u64, line: u64 },
    #[error("entry {seq} is out of order: it sits at line {line}")]
    Reordered { seq: u64, line: u64 },
    #[error("entry {seq} does not follow entry {}: the chain is broken there", seq - 1)]
    Unchained { seq: u64 },
    #[error(
        "checkpoint {n} (at entry {seq}) disagrees with the log: an entry up to {seq} was rewritten"
    )]
    CheckpointMismatch { n: u64, seq: u64 },
    #[error(
        "checkpoint {n} (at entry {seq}) names an entry the log no longer has: entries after {last} were removed"
    )]
    Truncated { n: u64, seq: u64, last: u64 },
    #[error("the log has {entries} entries but no signed checkpoint: the checkpoints were removed")]
    NoCheckpoint { entries: u64 },
    #[error("checkpoint {n} has no valid signature from the operator key {kid}")]
    BadSignature { n: u64, kid: String },
    #[error(
        "checkpoint {n} does not follow checkpoint {}: checkpoints were removed or rewritten there",
        n - 1
    )]
    CheckpointUnchained { n: u64 },
    #[error(
        "the checkpoint published at entry {seq} is not in the log: entries {from} to {seq} were cut \
         (the log ends at entry {last})",
        from = last + 1
    )]
    CutBehindPublished { seq: u64, last: u64 },
    #[error(
        "the checkpoint published at entry {seq} disagrees with the log or its checkpoints: the log \
         was rewritten up to entry {seq}"
    )]
    PublishedMismatch { seq: u64 },
    #[error("published checkpoint {file} has no valid signature from the operator key {kid}")]
    PublishedBadSignature { file: String, kid: String },
}

/// Verifies the log in `dir` against the operator's public key (hex), and against the
/// checkpoints `published` outside the data dir.
pub fn verify(
    dir: &Path,
    public_key_hex: &str,
    published: &[Published],
) -> Result<AuditReport, VerifyError> {
    // A shared lock: writers append an entry and its checkpoint under an exclusive one, so the
    // two files are read in a consistent state.
    let lock = match std::fs::File::open(dir.join("log.jsonl")) {
        Ok(f) => {
            f.lock_shared()
                .map_err(|e| VerifyError::Unreadable(e.to_string()))?;
            Some(f)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(VerifyError::Unreadable(e.to_string())),
    };
    let log = read(&dir.join("log.jsonl"))?;
    let checkpoints = match std::fs::read_to_string(dir.join("checkpoints.jsonl")) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(VerifyError::Unreadable(e.to_string())),
    };
    drop(lock);
    verify_text(&log, &checkpoints, public_key_hex, published)
}

/// Verifies a log and its checkpoints given as their text (one entry, one checkpoint per
/// line), wherever they were read from: the files, or the shared database.
pub fn verify_text(
    log: &[u8],
    checkpoints: &str,
    public_key_hex: &str,
    published: &[Published],
) -> Result<AuditReport, VerifyError> {
    let mut hashes: Vec<[u8; 32]> = Vec::new();
    let mut prev = GENESIS;
    let mut lines: Vec<&[u8]> = log.split(|b| *b == b'\n').collect();
    if lines.last() == Some(&&[][..]) {
        lines.pop();
    }
    // Where each sequence number sits, read leniently, to tell a reordering from a removal.
    let seqs: Vec<Option<u64>> = lines
        .iter()
        .map(|l| serde_json::from_slice::<Value>(l).ok()?["seq"].as_u64())
        .collect();
    for (i, line) in lines.into_iter().enumerate() {
        let expected = i as u64 + 1;
        let line_no = expected;
        let entry: Value = serde_json::from_slice(line).map_err(|e| VerifyError::Edited {
            seq: expected,
            why: format!("line {line_no} is not a readable entry ({e})"),
        })?;
        let seq = entry["seq"].as_u64().ok_or(VerifyError::Edited {
            seq: expected,
            why: "its sequence number is gone".into(),
        })?;
        let stored = entry["hash"]
            .as_str()
            .and_then(|h| hex::decode(h).ok())
            .and_then(|h| <[u8; 32]>::try_from(h).ok());
        if stored != Some(entry_hash(&entry)) {
            return Err(VerifyError::Edited {
                seq,
                why: "its contents do not match its hash".into(),
            });
        }
        if seq > expected {
            if let Some(at) = seqs[i + 1..].iter().position(|s| *s == Some(expected)) {
                return Err(VerifyError::Reordered {
                    seq: expected,
                    line: (i + 1 + at) as u64 + 1,
                });
            }
            return Err(VerifyError::Removed {
                seq: expected,
                line: line_no,
            });
        }
        if seq < expected {
            return Err(VerifyError::InsertedOrReordered {
                seq: expected,
                found: seq,
                line: line_no,
            });
        }
        if entry["prev"].as_str() != Some(hex::encode(prev).as_str()) {
            return Err(VerifyError::Unchained { seq });
        }
        prev = entry_hash(&entry);
        hashes.push(prev);
    }
    let last = hashes.len() as u64;
    let kid = key_id(&hex::decode(public_key_hex.trim()).unwrap_or_default());
    let mut signed_up_to = 0;
    let mut count = 0;
    let mut prev_sig = String::new();
    let mut chained = false;
    let mut local_sigs = std::collections::HashSet::new();
    for (i, line) in checkpoints.lines().enumerate() {
        let n = i as u64 + 1;
        let cp: Value = serde_json::from_str(line).map_err(|_| VerifyError::BadSignature {
            n,
            kid: kid.clone(),
        })?;
        if !signed_by(&cp, public_key_hex) {
            return Err(VerifyError::BadSignature {
                n,
                kid: kid.clone(),
            });
        }
        // Checkpoints written before they were chained carry no `prev_sig`; once one does,
        // every later one must name its predecessor.
        match cp["prev_sig"].as_str() {
            Some(p) if p == prev_sig => chained = true,
            None if !chained => {}
            _ => return Err(VerifyError::CheckpointUnchained { n }),
        }
        let sig = cp["sig"].as_str().unwrap_or_default();
        prev_sig = sig.to_string();
        local_sigs.insert(prev_sig.clone());
        let seq = cp["seq"].as_u64().unwrap_or(0);
        if seq == 0 || seq > last {
            return Err(VerifyError::Truncated { n, seq, last });
        }
        if cp["hash"].as_str() != Some(hex::encode(hashes[seq as usize - 1]).as_str()) {
            return Err(VerifyError::CheckpointMismatch { n, seq });
        }
        signed_up_to = signed_up_to.max(seq);
        count += 1;
    }
    // The first entry always writes a checkpoint, so a log without one had them removed.
    if last > 0 && count == 0 {
        return Err(VerifyError::NoCheckpoint { entries: last });
    }
    compare_published(published, public_key_hex, &hashes, &local_sigs, &kid)?;
    Ok(AuditReport {
        entries: last,
        checkpoints: count,
        unsigned_tail: last - signed_up_to,
        published_compared: published.len() as u64,
    })
}

/// Whether a checkpoint line carries a valid signature of `public_key_hex` over its body.
fn signed_by(cp: &Value, public_key_hex: &str) -> bool {
    let mut body = serde_json::json!({"seq": cp["seq"], "hash": cp["hash"], "at": cp["at"]});
    if let Some(prev) = cp.get("prev_sig") {
        body["prev_sig"] = prev.clone();
    }
    verify_json(
        public_key_hex,
        CHECKPOINT_DOMAIN,
        &body,
        cp["sig"].as_str().unwrap_or_default(),
    )
}

/// Every published checkpoint must be signed by the key, reached by the log (`hashes`, one
/// per entry) with the same hash, and among the local checkpoints.
fn compare_published(
    published: &[Published],
    public_key_hex: &str,
    hashes: &[[u8; 32]],
    local_sigs: &std::collections::HashSet<String>,
    kid: &str,
) -> Result<(), VerifyError> {
    let last = hashes.len() as u64;
    let mut checked = Vec::with_capacity(published.len());
    for p in published {
        let bad = || VerifyError::PublishedBadSignature {
            file: p.source.clone(),
            kid: kid.to_string(),
        };
        let cp: Value = serde_json::from_str(p.text.trim()).map_err(|_| bad())?;
        if !signed_by(&cp, public_key_hex) {
            return Err(bad());
        }
        checked.push(cp);
    }
    // A cut is named by its whole range: up to the last entry anything published reached.
    let reached = checked.iter().filter_map(|cp| cp["seq"].as_u64()).max();
    if let Some(seq) = reached.filter(|s| *s > last) {
        return Err(VerifyError::CutBehindPublished { seq, last });
    }
    for cp in checked {
        let seq = cp["seq"].as_u64().unwrap_or(0);
        let same_hash =
            seq > 0 && cp["hash"].as_str() == Some(hex::encode(hashes[seq as usize - 1]).as_str());
        let sig = cp["sig"].as_str().unwrap_or_default();
        if !same_hash || !local_sigs.contains(sig) {
            return Err(VerifyError::PublishedMismatch { seq });
        }
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, VerifyError> {
    match std::fs::read(path) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(VerifyError::Unreadable(e.to_string())),
    }
}
