//! Announcements: what a lower module tells the modules above it, without calling up into them.
//!
//! The consent ledger, capture and analysis sit below push delivery (and consent sits below
//! analysis), yet each change they make matters up there: a withdrawal cancels deliveries, a
//! finished interview may be delivered, a late `analyze` grant starts an analysis. Rather than
//! call `delivery` or `analysis` (which would make the modules import each other), they
//! announce a [`Happened`] on the [`Announcer`] that [`crate::app::Kiroku`] carries, and the
//! higher modules listen (wired once in [`crate::node`]).
//!
//! Listeners run synchronously, on the announcer's thread, after the change is committed: an
//! outbox row queued because of a withdrawal exists by the time the withdrawal call returns,
//! as it did when the ledger called delivery directly. A listener never fails the change it
//! hears of; it logs what it could not do.

use std::sync::{Mutex, RwLock};
use std::thread::JoinHandle;

use crate::catalog::{ConsentEventRow, InterviewRow};
use crate::ids::CandidateId;

/// Something that happened to a candidate's data, announced after it is committed.
#[derive(Debug, Clone)]
pub enum Happened {
    /// A consent event (grant or withdrawal) was appended to the ledger.
    ConsentChanged(ConsentEventRow),
    /// Capture ended an interview as `finished` (not stopped): its recording is complete.
    InterviewFinished(InterviewRow),
    /// The whole-interview analysis report of an interview was stored.
    AnalysisCompleted(InterviewRow),
    /// A candidate was erased (keys destroyed, objects deleted): every recipient that
    /// received their data is told.
    CandidateErased(CandidateId),
}

type Listener = Box<dyn Fn(&Happened) + Send + Sync>;

/// The listeners of one process, in the order they were added.
#[derive(Default)]
pub struct Announcer {
    listeners: RwLock<Vec<Listener>>,
}

impl Announcer {
    /// Adds a listener for every later announcement.
    pub fn listen(&self, listener: impl Fn(&Happened) + Send + Sync + 'static) {
        self.listeners
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Box::new(listener));
    }

    /// Tells every listener, in order.
    pub fn announce(&self, what: Happened) {
        let listeners = self
            .listeners
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for listen in listeners.iter() {
            listen(&what);
        }
    }
}

/// Long work a listener started (an analysis after a late `analyze` grant), kept so that a
/// command-line process can wait for it before it exits; `kiroku serve` never waits.
#[derive(Default)]
pub struct Background {
    running: Mutex<Vec<JoinHandle<()>>>,
}

impl Background {
    /// Runs `work` on its own named thread.
    pub fn spawn(&self, name: String, work: impl FnOnce() + Send + 'static) {
        match std::thread::Builder::new().name(name).spawn(work) {
            Ok(handle) => self.adopt(handle),
            Err(e) => tracing::error!(error = %e, "could not start background work"),
        }
    }

    /// Keeps a thread started elsewhere (an analysis worker) as background work.
    pub fn adopt(&self, handle: JoinHandle<()>) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.retain(|h| !h.is_finished());
        running.push(handle);
    }

    /// Waits for every piece of work started so far (and what it started in turn).
    pub fn wait(&self) {
        loop {
            let next = self.running.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match next {
                Some(handle) => {
                    if handle.join().is_err() {
                        tracing::error!("background work panicked");
                    }
                }
                None => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn finished() -> Happened {
        Happened::ConsentChanged(ConsentEventRow::bare(
            "ce_1",
            crate::ids::CandidateId::new_random(),
            crate::vocab::ConsentAction::Grant,
            crate::vocab::Scope::Record,
        ))
    }

    #[test]
    fn every_listener_hears_every_announcement_in_order() {
        let announcer = Announcer::default();
        let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
        for name in ["delivery", "analysis"] {
            let heard = heard.clone();
            announcer.listen(move |what| {
                heard
                    .lock()
                    .unwrap()
                    .push((name, matches!(what, Happened::ConsentChanged(_))))
            });
        }
        announcer.announce(finished());
        announcer.announce(finished());
        assert_eq!(
            *heard.lock().unwrap(),
            vec![
                ("delivery", true),
                ("analysis", true),
                ("delivery", true),
                ("analysis", true)
            ]
        );
    }

    #[test]
    fn an_announcement_with_no_listener_is_dropped_quietly() {
        let announcer = Announcer::default();
        announcer.announce(finished());
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        announcer.listen(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(count.load(Ordering::SeqCst), 0, "no replay of the past");
        announcer.announce(finished());
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn waiting_for_background_work_waits_for_what_it_started_too() {
        let background = Arc::new(Background::default());
        let done = Arc::new(AtomicUsize::new(0));
        let (b, d) = (background.clone(), done.clone());
        background.spawn("outer".into(), move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let d2 = d.clone();
            b.spawn("inner".into(), move || {
                std::thread::sleep(std::time::Duration::from_millis(50));
                d2.fetch_add(1, Ordering::SeqCst);
            });
            d.fetch_add(1, Ordering::SeqCst);
        });
        background.wait();
        assert_eq!(done.load(Ordering::SeqCst), 2);
    }
}
