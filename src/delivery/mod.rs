//! Push release: signed webhook notifications to recruiters, from a durable outbox.
//!
//! - `recording.ready` is queued when an interview finishes while `share.recording` for its
//!   recruiter stands, or when that consent is granted after it finished. At each attempt the
//!   decision point is asked again; the notification carries a short-lived download link whose
//!   use is decided again, and recorded, like any pull.
//! - A withdrawal cancels every pending delivery resting on the withdrawn scope, and, if the
//!   recruiter has already received data of that candidate, queues `consent.withdrawn` (APPI
//!   Art. 35, GDPR Art. 19: tell each recipient).
//! - An erasure queues `candidate.erased` to every recipient that received the candidate's
//!   data (the erasure itself has already cancelled their pending `*.ready` deliveries).
//! - Signature: header `Kiroku-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
//!   "<t>.<body>")>`. Receivers check it with [`verify_signature`] and refuse a `t` outside
//!   their replay window; every delivery has a unique `id` for deduplication.
//! - Retries with exponential backoff; redirects are not followed; a delivery that fails
//!   `max_attempts` times is recorded as failed.

mod outbox;
mod sender;
mod signature;

use std::sync::Arc;

pub use sender::run;
pub use signature::{SignatureError, sign, verify_signature};

use crate::app::Kiroku;
use crate::consent::decision::Item;
use crate::events::Happened;
use crate::vocab::OutboxKind;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Makes this process's outbox follow what the ledger, capture and analysis announce:
/// consent changes, finished interviews and completed analyses. Wired once by
/// [`crate::node::open`]. A listener never fails what it hears of: problems are logged, and the
/// decision point still guards every delivery.
pub fn listen(app: &Arc<Kiroku>) {
    let weak = Arc::downgrade(app);
    app.events.listen(move |what| {
        let Some(app) = weak.upgrade() else {
            return;
        };
        match what {
            Happened::ConsentChanged(e) => outbox::consent_changed(&app, e),
            Happened::InterviewFinished(row) => {
                outbox::ready(&app, row, Item::Recording, OutboxKind::RecordingReady)
            }
            // Queues `analysis.ready` if `share.analysis` for its recruiter stands (the
            // decision point asks again at delivery).
            Happened::AnalysisCompleted(row) => {
                outbox::ready(&app, row, Item::Analysis, OutboxKind::AnalysisReady)
            }
            Happened::CandidateErased(c) => outbox::candidate_erased(&app, c),
        }
    });
}
