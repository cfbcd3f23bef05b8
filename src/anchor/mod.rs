//! Anchoring the audit log outside the data dir: every checkpoint the log signs is handed to
//! the sinks the operator configured, so that someone holding the data dir, signing key
//! included, who cuts the log and its checkpoints back to an earlier point leaves the
//! published copies to tell.
//!
//! - `[audit.s3]`: a bucket of its own (not a region's: media must stay erasable), each
//!   checkpoint one object written once, `<prefix>checkpoint-<seq>.json`, under Object Lock
//!   when the bucket has it (`kiroku regions check` says whether it does). `kiroku audit
//!   verify` reads the bucket back ([`Anchor::read_published`]).
//! - `[audit.witness]`: a service that receives each checkpoint by POST and keeps it; it is
//!   its owner who compares.
//!
//! The log only queues a checkpoint ([`CheckpointSink`]); one thread per process publishes,
//! retrying with backoff while a sink is away. What each sink has taken is kept in
//! `<data_dir>/audit/anchor-<sink>.seq`, and at start every local checkpoint after that is
//! published, so a checkpoint written while the sink was down, or just before a crash or a
//! CLI command's exit, still gets there. Publishing is idempotent: an object that exists is
//! left as it is (the first published stays), and a witness takes the same checkpoint twice.

mod s3;
mod witness;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::audit::{CheckpointSink, Published};
use crate::config::AuditConfig;
use crate::metrics::METRICS;

pub use s3::ObjectLock;

/// Why the anchor could not start or answer.
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    #[error("audit.s3: {0}")]
    S3(String),
    #[error("audit.witness: {0}")]
    Witness(String),
    #[error("the audit anchor's runtime: {0}")]
    Runtime(String),
}

/// How long a process that ends waits for its last checkpoints to be published.
const FLUSH_WAIT: Duration = Duration::from_secs(5);
/// The longest wait between two tries of a sink that is away.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// One place checkpoints are published to.
enum Sink {
    S3(Arc<s3::S3Sink>),
    Witness(witness::WitnessSink),
}

impl Sink {
    fn name(&self) -> &'static str {
        match self {
            Sink::S3(_) => "s3",
            Sink::Witness(_) => "witness",
        }
    }

    async fn publish(&self, seq: u64, line: &str) -> Result<(), String> {
        match self {
            Sink::S3(s) => s.publish(seq, line).await,
            Sink::Witness(w) => w.publish(line).await,
        }
    }
}

/// The publishing side: queues checkpoints for each configured sink.
pub struct Anchor {
    /// Only `Drop` takes it (to shut it down without waiting, from any context).
    rt: Option<tokio::runtime::Runtime>,
    queues: Vec<UnboundedSender<(u64, String)>>,
    /// Checkpoints queued and not yet taken by their sink, over all sinks.
    pending: Arc<AtomicUsize>,
    s3: Option<Arc<s3::S3Sink>>,
}

impl std::fmt::Debug for Anchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anchor")
            .field("sinks", &self.queues.len())
            .finish()
    }
}

impl Anchor {
    /// Starts publishing for the sinks in `config`; `None` when none is configured.
    /// `audit_dir` holds the local checkpoints and what each sink has taken.
    pub fn start(
        config: &AuditConfig,
        audit_dir: &Path,
        checkpoints: &str,
    ) -> Result<Option<Arc<Anchor>>, AnchorError> {
        if config.s3.is_none() && config.witness.is_none() {
            return Ok(None);
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("audit-anchor")
            .enable_all()
            .build()
            .map_err(|e| AnchorError::Runtime(e.to_string()))?;
        let mut sinks = Vec::new();
        let mut s3_sink = None;
        if let Some(c) = &config.s3 {
            let sink = Arc::new(s3::S3Sink::new(c, &rt)?);
            s3_sink = Some(sink.clone());
            sinks.push(Sink::S3(sink));
        }
        if let Some(w) = &config.witness {
            sinks.push(Sink::Witness(witness::WitnessSink::new(w)?));
        }
        let pending = Arc::new(AtomicUsize::new(0));
        let mut queues = Vec::new();
        for sink in sinks {
            let (tx, rx) = unbounded_channel();
            let marker = audit_dir.join(format!("anchor-{}.seq", sink.name()));
            let backlog = unpublished(checkpoints, read_marker(&marker));
            pending.fetch_add(backlog.len(), Ordering::SeqCst);
            rt.spawn(publish_loop(sink, rx, backlog, marker, pending.clone()));
            queues.push(tx);
        }
        Ok(Some(Arc::new(Anchor {
            rt: Some(rt),
            queues,
            pending,
            s3: s3_sink,
        })))
    }

    /// The checkpoints published to `[audit.s3]`, for `audit verify`; none without it.
    pub fn read_published(&self) -> Result<Vec<Published>, AnchorError> {
        let Some(s3) = self.s3.clone() else {
            return Ok(Vec::new());
        };
        self.run(async move { s3.read_all().await })
            .map_err(AnchorError::S3)
    }

    /// `kiroku regions check` for the checkpoint bucket: reachable, and whether it has Object
    /// Lock. `None` without `[audit.s3]`.
    pub fn check_bucket(&self) -> Option<Result<(String, ObjectLock), AnchorError>> {
        let s3 = self.s3.clone()?;
        let bucket = s3.bucket().to_string();
        Some(
            self.run(async move { s3.check().await })
                .map(|lock| (bucket, lock))
                .map_err(AnchorError::S3),
        )
    }

    /// Waits (up to `limit`) until every queued checkpoint was taken by its sink; false if
    /// some are still waiting.
    pub fn flush(&self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while self.pending.load(Ordering::SeqCst) > 0 {
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// Runs `fut` on the anchor's runtime and waits for it, from any thread.
    fn run<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = Result<T, String>> + Send + 'static,
    ) -> Result<T, String> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let Some(rt) = self.rt.as_ref() else {
            return Err("the anchor's runtime stopped".into());
        };
        rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .unwrap_or_else(|_| Err("the anchor's runtime stopped".into()))
    }
}

impl CheckpointSink for Anchor {
    fn checkpointed(&self, seq: u64, line: &str) {
        for q in &self.queues {
            if q.send((seq, line.to_string())).is_ok() {
                self.pending.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

impl Drop for Anchor {
    /// A process that ends (a CLI command, `serve` stopping) gives its last checkpoints a
    /// moment to get out; what does not is published at the next start.
    fn drop(&mut self) {
        if !self.flush(FLUSH_WAIT) {
            tracing::warn!(
                waiting = self.pending.load(Ordering::SeqCst),
                "audit checkpoints not yet published; they will be at the next start"
            );
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Publishes what `rx` brings, in order, after the `backlog` found at start; a sink that is
/// away is retried with backoff, and nothing is dropped.
async fn publish_loop(
    sink: Sink,
    mut rx: UnboundedReceiver<(u64, String)>,
    mut backlog: VecDeque<(u64, String)>,
    marker: PathBuf,
    pending: Arc<AtomicUsize>,
) {
    let mut taken = read_marker(&marker);
    let mut backoff = Duration::from_millis(500);
    let mut failing = false;
    loop {
        if backlog.is_empty() {
            match rx.recv().await {
                Some(c) => backlog.push_back(c),
                None => return,
            }
        }
        while let Ok(c) = rx.try_recv() {
            backlog.push_back(c);
        }
        let Some((seq, line)) = backlog.front() else {
            continue;
        };
        // Already taken (found at start and queued live, or a second checkpoint at one entry).
        if taken.is_some_and(|t| *seq <= t) {
            backlog.pop_front();
            pending.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        match sink.publish(*seq, line).await {
            Ok(()) => {
                METRICS
                    .checkpoints_published
                    .with_label_values(&[sink.name(), "ok"])
                    .inc();
                if failing {
                    tracing::info!(sink = sink.name(), "audit checkpoints are published again");
                }
                taken = Some(*seq);
                if let Err(e) = crate::util::write_atomic(&marker, seq.to_string().as_bytes()) {
                    tracing::warn!(sink = sink.name(), error = %e, "what the sink took could not be noted; it is published again at start");
                }
                backlog.pop_front();
                pending.fetch_sub(1, Ordering::SeqCst);
                backoff = Duration::from_millis(500);
                failing = false;
            }
            Err(e) => {
                METRICS
                    .checkpoints_published
                    .with_label_values(&[sink.name(), "failed"])
                    .inc();
                if !failing {
                    tracing::error!(sink = sink.name(), error = %e, "an audit checkpoint could not be published; retrying");
                }
                failing = true;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// The highest checkpoint a sink has taken, as noted in `marker`.
fn read_marker(marker: &Path) -> Option<u64> {
    std::fs::read_to_string(marker).ok()?.trim().parse().ok()
}

/// The local checkpoints after `taken`, in order.
fn unpublished(checkpoints: &str, taken: Option<u64>) -> VecDeque<(u64, String)> {
    checkpoints
        .lines()
        .filter_map(|l| {
            let seq = serde_json::from_str::<serde_json::Value>(l).ok()?["seq"].as_u64()?;
            (taken.is_none_or(|t| seq > t)).then(|| (seq, format!("{l}\n")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_start_only_the_checkpoints_after_what_a_sink_took_are_published() {
        let path = "{\"seq\":1}\n{\"seq\":4}\n{\"seq\":9}\n";
        let all: Vec<u64> = unpublished(path, None).iter().map(|c| c.0).collect();
        assert_eq!(all, [1, 4, 9]);
        let after: Vec<u64> = unpublished(path, Some(4)).iter().map(|c| c.0).collect();
        assert_eq!(after, [9]);
        assert!(unpublished(path, Some(9)).is_empty());
        assert_eq!(unpublished(path, Some(4))[0].1, "{\"seq\":9}\n");
    }

    #[test]
    fn a_marker_that_cannot_be_read_means_nothing_was_taken() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_marker(&dir.path().join("none.seq")), None);
        std::fs::write(dir.path().join("bad.seq"), "twelve").unwrap();
        assert_eq!(read_marker(&dir.path().join("bad.seq")), None);
        std::fs::write(dir.path().join("ok.seq"), "12\n").unwrap();
        assert_eq!(read_marker(&dir.path().join("ok.seq")), Some(12));
    }
}
