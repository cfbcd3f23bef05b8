//! The spool uploader: one thread per S3 region drains what writers left in the local spool
//! while the bucket was unreachable, with backoff, and stops retrying blindly when the store
//! refuses kiroku's credentials.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::client::CallError;
use super::{S3Store, TagSupport};

/// After 401/403, the uploader waits this long before asking again.
const AUTH_PAUSE: Duration = Duration::from_secs(60);

impl S3Store {
    pub(super) fn wake_uploader(&self) {
        let (m, c) = &*self.wake;
        *m.lock().unwrap_or_else(|p| p.into_inner()) = true;
        c.notify_all();
    }

    /// Uploads what the spool holds, oldest key first; stops at the first failure. Returns how
    /// many objects left the spool.
    pub fn drain_once(&self) -> usize {
        // Another process (a CLI `ingest`) may have spooled objects since this one started.
        if let Err(e) = self.spool.rescan() {
            tracing::error!(region = %self.region, error = %e, "the spool folder cannot be read");
        }
        let mut done = 0;
        for key in self.spool.keys() {
            if self.stopping.load(Ordering::SeqCst) {
                break; // what is left stays spooled for the next start
            }
            let (bytes, tags) = match (self.spool.get(&key), self.spool.get_tags(&key)) {
                (Ok(b), Ok(t)) => (b, t),
                (Err(e), _) | (_, Err(e)) => {
                    // Never uploaded without its tags; it stays for the operator to see.
                    tracing::error!(region = %self.region, key = %key, error = %e, "a spooled object or its tags cannot be read");
                    continue;
                }
            };
            match self.upload(&key, bytes.clone(), &tags) {
                Ok(()) => match self.spool.release_if_unchanged(&key, &bytes) {
                    Ok(true) => done += 1,
                    Ok(false) => {} // a newer copy came; it goes next round
                    Err(e) => {
                        tracing::error!(region = %self.region, error = %e, "spool entry could not be removed")
                    }
                },
                // The store refused this object (not the region): the others go on.
                Err(CallError::Other(why)) => {
                    tracing::error!(region = %self.region, key = %key, error = %why, "the store refuses this spooled object; it stays in the spool");
                }
                Err(e) => {
                    tracing::warn!(region = %self.region, error = %e.text(), "spool upload failed; will retry");
                    self.note_failure(&e);
                    break;
                }
            }
        }
        done
    }

    /// The uploader thread: drains the spool whenever something is spooled, and retries with
    /// backoff (1 s doubling to 30 s; 60 s after credentials were refused).
    pub fn spawn_uploader(self: &Arc<Self>) -> Option<std::thread::JoinHandle<()>> {
        let store = Arc::downgrade(self);
        let wake = self.wake.clone();
        let name = format!("uploader-{}", self.region);
        let stopped = |s: &S3Store| s.stopping.load(Ordering::SeqCst);
        std::thread::Builder::new().name(name).spawn(move || {
            // One process drains a spool at a time; another waits for the claim.
            let _claim = loop {
                let Some(s) = store.upgrade().filter(|s| !stopped(s)) else { return };
                if let Some(c) = s.spool.claim() {
                    break c;
                }
                tracing::warn!(region = %s.region, "another process is draining this region's spool; waiting");
                drop(s);
                pause_unless_stopped(&store, Duration::from_secs(30));
            };
            if let Some(s) = store.upgrade() {
                let found = s.detect_tagging();
                tracing::info!(region = %s.region, tags = ?found, "S3 region: tags go as x-amz-meta-* metadata, and as object tags where supported");
            }
            let mut backoff = Duration::from_secs(1);
            loop {
                let Some(s) = store.upgrade().filter(|s| !stopped(s)) else { return };
                let _ = s.spool.rescan();
                if s.spool.keys().is_empty() {
                    drop(s);
                    let (m, c) = &*wake;
                    let mut woken = m.lock().unwrap_or_else(|p| p.into_inner());
                    if !*woken {
                        woken = c
                            .wait_timeout(woken, Duration::from_secs(1))
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                    }
                    *woken = false;
                    continue;
                }
                if s.tag_support() == TagSupport::Unknown && !s.looks_down() {
                    s.detect_tagging();
                }
                s.drain_once();
                let (left, failing) = (s.spool.keys().len(), s.failing());
                drop(s);
                if left == 0 {
                    backoff = Duration::from_secs(1);
                    continue;
                }
                let pause = if failing.is_some() { AUTH_PAUSE } else { backoff };
                pause_unless_stopped(&store, pause);
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        })
        .ok()
    }

    /// Stops the uploader: the upload in flight completes, nothing more starts.
    pub fn stop_uploader(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake_uploader();
    }
}

/// Sleeps up to `d`, waking early when the uploader is told to stop (or the store is gone).
fn pause_unless_stopped(store: &std::sync::Weak<S3Store>, d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        match store.upgrade() {
            Some(s) if !s.stopping.load(Ordering::SeqCst) => {}
            _ => return,
        }
        std::thread::sleep(
            Duration::from_millis(100).min(until.saturating_duration_since(Instant::now())),
        );
    }
}
