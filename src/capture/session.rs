//! One running capture: the feeder side pushes the front-end's bytes, the capture thread turns
//! plain segments into acknowledged sealed ones.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{CaptureError, Transport, tags};
use crate::analysis::Analysis;
use crate::app::{CaptureSlot, Kiroku};
use crate::audit::{Actor, Event};
use crate::catalog::{InterviewRow, InterviewState, SegmentRow};
use crate::consent::Scope;
use crate::events::Happened;
use crate::ids::InterviewId;
use crate::metrics::{METRICS, observe};
use crate::recording::{Manifest, ManifestEntry};
use crate::seal::{self, CandidateKey, ObjectIdentity, ObjectKind};
use crate::segment::{
    InputScan, PlainSegment, SegmentError, Segmenter, SegmenterEvent, SegmenterInput,
};
use crate::store::{ObjectKey, Store};

/// Told to the front-end as each segment becomes durable.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SegmentAck {
    pub index: u32,
    pub media_kind: &'static str,
    pub start_ms: u64,
    pub end_ms: u64,
    pub starts_on_keyframe: bool,
    pub sealed_bytes: u64,
}

#[derive(Debug, Clone)]
pub enum CaptureEvent {
    /// The segment is sealed, stored, fsynced and in the catalog.
    Stored(SegmentAck),
}

/// How a capture ended.
#[derive(Debug)]
pub struct CaptureOutcome {
    pub interview: InterviewId,
    pub state: InterviewState,
    /// Why it stopped early; `None` when it finished cleanly.
    pub reason: Option<CaptureError>,
    pub segments: u32,
    pub media_ms: u64,
    pub bytes_in: u64,
}

/// Whether a push was taken.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    Accepted,
    /// Capture has stopped (see the outcome for why); stop sending.
    CaptureOver,
}

/// The pushing side, cheap to clone into blocking tasks.
#[derive(Clone)]
pub struct Feeder {
    input: SegmenterInput,
    shared: Arc<Shared>,
    byte_limit: u64,
    transport: Transport,
    /// Bytes per wall-clock second a live stream may average (after 10 s of grace): the
    /// client sets media timestamps, real seconds it cannot.
    live_bytes_per_second: u64,
    opened: std::time::Instant,
}

/// Wall-clock seconds a live stream may send ahead of its rate, for a burst at the start.
const LIVE_RATE_GRACE_SECONDS: u64 = 10;

struct Shared {
    bytes_in: AtomicU64,
    over: AtomicBool,
    cut_by_service: AtomicBool,
    reason: Mutex<Option<CaptureError>>,
    scan: Mutex<Option<InputScan>>,
    /// The media comes as the front-end's bytes (not a WHIP session's RTP).
    takes_bytes: bool,
    /// Muxed bytes of the segments admitted so far: what the media-time rate check weighs
    /// (bytes pushed may run ahead of the segments cut from them, in an upload).
    segment_bytes: AtomicU64,
}

impl Feeder {
    /// Hands bytes to the pipeline (blocking while it is busy). Past the byte limit the capture
    /// is stopped and the limit is the reason.
    pub fn push(&self, bytes: Vec<u8>) -> Pushed {
        if self.shared.over.load(Ordering::SeqCst) {
            return Pushed::CaptureOver;
        }
        let total = self
            .shared
            .bytes_in
            .fetch_add(bytes.len() as u64, Ordering::SeqCst)
            + bytes.len() as u64;
        METRICS.bytes_in.inc_by(bytes.len() as u64);
        if total > self.byte_limit {
            self.stop_with(CaptureError::TooManyBytes {
                limit: self.byte_limit,
            });
            return Pushed::CaptureOver;
        }
        if self.transport == Transport::Live {
            let seconds = self.opened.elapsed().as_secs() + LIVE_RATE_GRACE_SECONDS;
            if total > self.live_bytes_per_second.saturating_mul(seconds) {
                self.stop_with(CaptureError::BitrateTooHigh {
                    limit: self.live_bytes_per_second * 8 / 1000,
                });
                return Pushed::CaptureOver;
            }
        }
        let unstreamable = match self
            .shared
            .scan
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            Some(scan) => {
                scan.push(&bytes);
                self.transport == Transport::Live && scan.is_unfragmented_mp4()
            }
            None => false,
        };
        if unstreamable {
            // Refused before these bytes reach the demuxer, which would hold the whole file
            // in memory waiting for its index.
            self.stop_with(CaptureError::NotStreamable);
            return Pushed::CaptureOver;
        }
        match self.input.push(bytes) {
            Ok(()) => Pushed::Accepted,
            Err(_) => {
                self.shared.over.store(true, Ordering::SeqCst);
                Pushed::CaptureOver
            }
        }
    }

    /// Ends the stream where it stands, on the front-end's backend's word (`finish`). The cut
    /// is theirs, so a last frame left incomplete is not reported as truncated media.
    pub fn end(&self) {
        self.shared.cut_by_service.store(true, Ordering::SeqCst);
        self.shared.over.store(true, Ordering::SeqCst);
        self.input.end();
    }

    /// Bytes of media taken so far: where a resumed stream goes on from.
    pub fn bytes_in(&self) -> u64 {
        self.shared.bytes_in.load(Ordering::SeqCst)
    }

    /// The sender went away without ending the stream (a WHIP peer's BYE or long silence).
    pub fn peer_gone(&self) -> bool {
        self.input.peer_gone()
    }

    /// Capture has stopped; further bytes would be thrown away.
    pub fn is_over(&self) -> bool {
        self.shared.over.load(Ordering::SeqCst)
    }

    /// Stops the capture for a reason found on the feeding side (a limit, a lost client).
    /// Segments already acknowledged stay; the one in progress is flushed as the last.
    pub fn stop_with(&self, reason: CaptureError) {
        self.shared
            .reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(reason);
        self.shared.over.store(true, Ordering::SeqCst);
        self.input.end();
    }
}

/// Where a capture's media comes from.
enum Intake<'a> {
    /// The front-end's bytes, pushed through the feeder.
    Bytes(Transport),
    /// A WHIP offer: kiroku answers it and receives the session itself.
    Whip(&'a str),
}

/// A running capture.
pub struct Capture {
    pub interview: InterviewId,
    feeder: Feeder,
    events: Option<mpsc::UnboundedReceiver<CaptureEvent>>,
    /// Taken once: by [`Capture::finish`] or [`Capture::abandon`], or else by `Drop`.
    ending: Option<Ending>,
}

/// What concluding a capture needs, owned, so that a capture dropped on an async worker can be
/// concluded on a thread of its own (concluding joins the capture thread, which waits for the
/// pipeline to flush).
struct Ending {
    interview: InterviewId,
    shared: Arc<Shared>,
    thread: JoinHandle<ThreadEnd>,
    /// The interview as the capture started, for recording its end if the thread is lost.
    row: InterviewRow,
    app: Arc<Kiroku>,
    /// Given back only once the capture has concluded.
    _slot: CaptureSlot,
    /// This node's claim on the capture, renewed until it has concluded.
    _lease: crate::app::LeaseHold,
}

struct ThreadEnd {
    row: InterviewRow,
    key: CandidateKey,
    /// The manifest as written after the last stored segment (not yet complete).
    manifest: Manifest,
    reason: Option<CaptureError>,
    /// Segment 0's plaintext as it was sealed (in memory only), which the recording is
    /// finished from without reading it back from a store that may be down.
    live_header: Option<Vec<u8>>,
}

impl Capture {
    /// Starts capturing an interview whose ingest token was spent: checks the `record` consent
    /// (refusing before one byte is taken), claims the interview's single stream and a
    /// concurrency slot, and starts the pipeline.
    pub fn start(
        app: &Arc<Kiroku>,
        interview: &InterviewId,
        transport: Transport,
    ) -> Result<Capture, CaptureError> {
        Capture::open(app, interview, Intake::Bytes(transport), None).map(|(capture, _)| capture)
    }

    /// [`Capture::start`] with a concurrency slot taken before (a WebSocket takes it before
    /// its upgrade, so that a full node answers 429 and a slot is never promised twice).
    pub fn start_holding(
        app: &Arc<Kiroku>,
        interview: &InterviewId,
        transport: Transport,
        slot: CaptureSlot,
    ) -> Result<Capture, CaptureError> {
        Capture::open(app, interview, Intake::Bytes(transport), Some(slot))
            .map(|(capture, _)| capture)
    }

    /// Starts capturing a WHIP session (its ingest token spent): the same checks as
    /// [`Capture::start`], then kiroku answers `offer` and receives the session itself. Returns
    /// the SDP answer; the interview's profile becomes the one the answered codecs are stored
    /// under.
    pub fn start_whip(
        app: &Arc<Kiroku>,
        interview: &InterviewId,
        offer: &str,
    ) -> Result<(Capture, String), CaptureError> {
        let (capture, answer) = Capture::open(app, interview, Intake::Whip(offer), None)?;
        let answer = answer.ok_or_else(|| {
            CaptureError::Media(SegmentError::Pipeline("no WHIP answer was made".into()))
        })?;
        Ok((capture, answer))
    }

    fn open(
        app: &Arc<Kiroku>,
        interview: &InterviewId,
        intake: Intake<'_>,
        slot: Option<CaptureSlot>,
    ) -> Result<(Capture, Option<String>), CaptureError> {
        let mut row = super::interview_row(app, interview)?;
        if app.catalog.erased_at(&row.candidate)?.is_some() {
            return Err(CaptureError::CandidateErased);
        }
        if !app.ledger().allows_record(&row.candidate)? {
            return Err(CaptureError::NoRecordConsent);
        }
        // Read before the interview turns `capturing`: a catalog failure here leaves it as it was.
        let transfer = transfer_scope(app, &row)?;
        let profile = app
            .profiles
            .by_name(&row.profile)
            .ok_or(CaptureError::UnknownInterview)?
            .clone();
        let key = app
            .interview_key(&row)?
            .ok_or(CaptureError::UnknownInterview)?
            .1;
        let slot = match slot {
            Some(slot) => slot,
            None => app
                .take_capture_slot()
                .ok_or(CaptureError::TooManyCaptures)?,
        };
        // Held before the lease is written: a recovery pass of this process in between must
        // see the capture as its own.
        let lease = app.hold_lease(*interview);
        if !app
            .catalog
            .start_capturing(interview, app.node(), app.lease_until())?
        {
            return Err(CaptureError::AlreadyStreamed);
        }
        let target = Duration::from_secs_f64(app.config.segment.target_seconds);
        let built = match intake {
            Intake::Bytes(transport) if profile.direct && app.config.segment.direct_remux => {
                Segmenter::start_direct(&profile, target).map(|(s, i)| (s, i, None, transport))
            }
            Intake::Bytes(transport) => {
                Segmenter::start(&profile, target).map(|(s, i)| (s, i, None, transport))
            }
            Intake::Whip(offer) => {
                let ice = super::ice_settings(&app.config);
                Segmenter::start_whip(&app.whip, offer, &ice, target)
                    .map(|(s, i, answer)| (s, i, Some(answer), Transport::Live))
            }
        };
        let (mut segmenter, input, answer, transport) = match built {
            Ok(s) => s,
            Err(e) => {
                app.catalog.end_interview(
                    interview,
                    InterviewState::Stopped,
                    Some("media_pipeline_failed"),
                    0,
                )?;
                return Err(e.into());
            }
        };
        segmenter.limit_segment_bytes(app.config.limits.max_segment_bytes);
        let shared = Arc::new(Shared {
            bytes_in: AtomicU64::new(0),
            over: AtomicBool::new(false),
            cut_by_service: AtomicBool::new(false),
            reason: Mutex::new(None),
            scan: Mutex::new(None),
            takes_bytes: answer.is_none(),
            segment_bytes: AtomicU64::new(0),
        });
        let answer = match answer {
            Some(a) => {
                // The answered codecs decide the profile the recording is stored under.
                let content_type = app
                    .profiles
                    .by_name(&a.profile)
                    .map(|p| p.content_types[0].clone())
                    .ok_or(CaptureError::UnknownInterview)?;
                app.catalog
                    .set_capture_profile(interview, &content_type, &a.profile)?;
                (row.content_type, row.profile) = (content_type, a.profile);
                Some(a.sdp)
            }
            None => {
                *shared.scan.lock().unwrap_or_else(|p| p.into_inner()) =
                    InputScan::for_content_type(&row.content_type);
                None
            }
        };
        let feeder = Feeder {
            input,
            shared: shared.clone(),
            byte_limit: app.config.limits.max_bytes_per_interview,
            transport,
            live_bytes_per_second: app.config.limits.max_stream_kbps * 1000 / 8,
            opened: std::time::Instant::now(),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let row_candidate = row.candidate;
        let started = row.clone();
        let worker = Worker {
            app: app.clone(),
            row,
            key,
            segmenter,
            acks: tx,
            shared,
            live: (transport == Transport::Live).then_some(LiveClock {
                opened: feeder.opened,
                origin_ns: None,
            }),
            transfer,
            lease_renewed: std::cell::Cell::new(std::time::Instant::now()),
        };
        let span = tracing::info_span!("interview", interview = %interview);
        let thread = std::thread::Builder::new()
            .name(format!("capture-{}", &interview.to_string()[..8]))
            .spawn(move || span.in_scope(|| worker.run()))
            .map_err(|e| {
                CaptureError::Media(crate::segment::SegmentError::Pipeline(e.to_string()))
            })?;
        tracing::info!(interview = %interview, "capture started");
        app.audit.record_or_warn(
            Event::CaptureStarted {
                interview: *interview,
                candidate: row_candidate,
            },
            &Actor::Service,
        );
        let capture = Capture {
            interview: *interview,
            events: Some(rx),
            ending: Some(Ending {
                interview: *interview,
                shared: feeder.shared.clone(),
                thread,
                row: started,
                app: app.clone(),
                _slot: slot,
                _lease: lease,
            }),
            feeder,
        };
        Ok((capture, answer))
    }

    pub fn feeder(&self) -> Feeder {
        self.feeder.clone()
    }

    /// The capture thread has ended on its own (the stream's end reached the cutter, or a
    /// withdrawal or error stopped it); [`Capture::finish`] then only concludes.
    pub fn has_ended(&self) -> bool {
        self.ending.as_ref().is_none_or(|e| e.thread.is_finished())
    }

    /// The acknowledgements, in order; take it once.
    pub fn take_events(&mut self) -> mpsc::UnboundedReceiver<CaptureEvent> {
        self.events.take().expect("events taken once")
    }

    /// Ends the stream cleanly and waits until every segment is stored (blocking).
    pub fn finish(self) -> CaptureOutcome {
        let shared = &self.feeder.shared;
        if !shared.cut_by_service.load(Ordering::SeqCst)
            && let Some(scan) = shared
                .scan
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
            && let Some(why) = scan.incomplete()
        {
            self.feeder
                .shared
                .reason
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(CaptureError::Truncated(why));
        }
        self.feeder.input.end();
        self.conclude()
    }

    /// Ends the stream because of `reason` (the client vanished, say) and waits (blocking).
    pub fn abandon(self, reason: CaptureError) -> CaptureOutcome {
        self.feeder.stop_with(reason);
        self.conclude()
    }

    fn conclude(mut self) -> CaptureOutcome {
        match self.ending.take() {
            Some(ending) => ending.conclude(),
            // `finish` and `abandon` consume the capture and only they and `Drop` take its
            // ending, so it is always there; answered without a panic all the same.
            None => CaptureOutcome {
                interview: self.interview,
                state: InterviewState::Stopped,
                reason: None,
                segments: 0,
                media_ms: 0,
                bytes_in: self.feeder.shared.bytes_in.load(Ordering::SeqCst),
            },
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let Some(ending) = self.ending.take() else {
            return;
        };
        // Dropped without finish (a panic or a bug upstream): still end and record it.
        self.feeder.stop_with(CaptureError::ClientGone);
        if tokio::runtime::Handle::try_current().is_err() {
            // A plain thread (the command line, a blocking task): wait here, as `abandon`
            // would.
            ending.conclude();
            return;
        }
        // On an async worker, joining the capture thread would stall every other connection
        // until the pipeline flushed: a thread of its own concludes instead. If none can be
        // started, the capture thread still ends on its own and the interview is found
        // interrupted, and recovered, at the next start.
        let interview = ending.interview;
        let spawned = std::thread::Builder::new()
            .name(format!("capture-end-{}", &interview.to_string()[..8]))
            .spawn(move || {
                ending.conclude();
            });
        if let Err(e) = spawned {
            tracing::error!(interview = %interview, error = %e, "a dropped capture could not be concluded; it is recovered at the next start");
        }
    }
}

impl Ending {
    /// Waits for the capture thread, seals the final manifest and records the end (blocking).
    fn conclude(self) -> CaptureOutcome {
        let Ok(end) = self.thread.join() else {
            return Ending::thread_lost(&self.interview, &self.shared, &self.app, &self.row);
        };
        let feeder_reason = self
            .shared
            .reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let bytes_in = self.shared.bytes_in.load(Ordering::SeqCst);
        // The capture thread's reason first, except where the feeding side cut the input
        // short on purpose: then the demuxer's complaint about the cut stream is a consequence.
        let first = match feeder_reason {
            Some(
                cut @ (CaptureError::NotStreamable
                | CaptureError::TooManyBytes { .. }
                | CaptureError::BitrateTooHigh { .. }),
            ) => Some(cut),
            other => end.reason.or(other),
        };
        let reason = match first {
            // No byte ever came: the demuxer's complaint about an empty stream is not a fault
            // of the media; the interview simply ended without any.
            Some(CaptureError::Media(SegmentError::Unreadable(_)))
                if bytes_in == 0 && self.shared.takes_bytes =>
            {
                None
            }
            other => other,
        };
        let state = if reason.is_some() {
            InterviewState::Stopped
        } else {
            InterviewState::Finished
        };
        let code = reason.as_ref().map(|r| r.code()).unwrap_or("finished");
        METRICS.captures_ended.with_label_values(&[code]).inc();
        let mut manifest = end.manifest;
        manifest.complete_with(code);
        // An erased candidate's interview leaves nothing more behind, not even its manifest.
        let erased = !matches!(self.app.catalog.erased_at(&end.row.candidate), Ok(None));
        match self.app.region(&end.row.region) {
            Some(_) if erased => {}
            Some(region) => {
                manifest.finished = match self.app.catalog.segments(&self.interview) {
                    Ok(rows) if rows.len() == manifest.segments.len() => super::finish_recording(
                        &self.app,
                        &end.row,
                        &end.key,
                        &region.store,
                        &rows,
                        end.live_header.as_deref(),
                    ),
                    Ok(_) => {
                        tracing::error!(
                            "the catalog lists other segments than the capture stored; the recording is not finished"
                        );
                        None
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the catalog could not be read; the recording is not finished");
                        None
                    }
                };
                if let Err(e) = manifest.store(&end.key, &end.row, &region.store) {
                    tracing::error!(error = %e, "final manifest could not be written; segments stay recoverable");
                }
            }
            // The region was configured when the capture started and the config does not
            // change under a running process: a bug, reported rather than panicked on.
            None => {
                tracing::error!(region = %end.row.region, "the interview's region is gone; final manifest not written")
            }
        }
        if let Err(e) = self
            .app
            .catalog
            .end_interview(&self.interview, state, Some(code), bytes_in)
        {
            tracing::error!(error = %e, "could not record the end of capture");
        }
        tracing::info!(interview = %self.interview, state = state.as_str(), reason = code, segments = manifest.segments.len(), "capture ended");
        self.app.audit.record_or_warn(
            Event::CaptureEnded {
                interview: self.interview,
                candidate: end.row.candidate,
                state,
                reason: code,
                segments: manifest.segments.len(),
            },
            &Actor::System,
        );
        if state == InterviewState::Finished {
            let mut row = end.row.clone();
            row.state = state;
            self.app.events.announce(Happened::InterviewFinished(row));
        }
        CaptureOutcome {
            interview: self.interview,
            state,
            reason,
            segments: manifest.segments.len() as u32,
            media_ms: manifest
                .segments
                .last()
                .map(|e| e.end_ns / 1_000_000)
                .unwrap_or(0),
            bytes_in,
        }
    }

    /// The capture thread panicked and its manifest with it: the interview is recorded as
    /// stopped (its stored segments stay recoverable) and no final manifest is written.
    fn thread_lost(
        interview: &InterviewId,
        shared: &Shared,
        app: &Kiroku,
        row: &InterviewRow,
    ) -> CaptureOutcome {
        let bytes_in = shared.bytes_in.load(Ordering::SeqCst);
        let reason = CaptureError::Media(SegmentError::Pipeline(
            "the capture thread stopped unexpectedly".into(),
        ));
        let code = reason.code();
        METRICS.captures_ended.with_label_values(&[code]).inc();
        tracing::error!(interview = %interview, reason = code, "capture thread panicked");
        if let Err(e) =
            app.catalog
                .end_interview(interview, InterviewState::Stopped, Some(code), bytes_in)
        {
            tracing::error!(error = %e, "could not record the end of capture");
        }
        app.audit.record_or_warn(
            Event::CaptureEnded {
                interview: *interview,
                candidate: row.candidate,
                state: InterviewState::Stopped,
                reason: code,
                segments: 0,
            },
            &Actor::System,
        );
        CaptureOutcome {
            interview: *interview,
            state: InterviewState::Stopped,
            reason: Some(reason),
            segments: 0,
            media_ms: 0,
            bytes_in,
        }
    }
}

/// The capture thread: plain segments in, acknowledged sealed segments out.
struct Worker {
    app: Arc<Kiroku>,
    row: InterviewRow,
    key: CandidateKey,
    segmenter: Segmenter,
    acks: mpsc::UnboundedSender<CaptureEvent>,
    shared: Arc<Shared>,
    /// A live stream's clock, for the acknowledgement lag its front-end sees.
    live: Option<LiveClock>,
    /// The region's country when it is not the candidate's home: the `transfer` scope for it
    /// must stand at every segment boundary, as `record` must.
    transfer: Option<Scope>,
    /// When this capture last renewed its lease (set with it at the start).
    lease_renewed: std::cell::Cell<std::time::Instant>,
}

/// The `transfer` scope an interview's storage rests on: `transfer:<region's country>` when
/// that is not the candidate's home country, else none.
fn transfer_scope(app: &Kiroku, row: &InterviewRow) -> Result<Option<Scope>, CaptureError> {
    let home = app
        .catalog
        .candidate(&row.candidate)?
        .ok_or(CaptureError::UnknownCandidate)?
        .home_country;
    let region = app
        .region(&row.region)
        .ok_or(CaptureError::UnknownInterview)?;
    Ok((region.region.country != home).then(|| Scope::Transfer(region.region.country.clone())))
}

/// Every how many segments the interim manifest is sealed and stored during capture (the
/// header's segment among the first); the final one is sealed at the end whatever the count.
const INTERIM_MANIFEST_EVERY: usize = 8;

/// When a live stream opened and where its media time starts: a segment ending at media time
/// `t` was recorded `t - origin` after the opening, give or take the network.
struct LiveClock {
    opened: Instant,
    origin_ns: Option<u64>,
}

impl LiveClock {
    /// How long after the recording of its end the segment `entry` is acknowledged now.
    fn lag(&mut self, entry: &ManifestEntry) -> Duration {
        let origin = *self.origin_ns.get_or_insert(entry.start_ns);
        let recorded = self.opened + Duration::from_nanos(entry.end_ns.saturating_sub(origin));
        Instant::now().saturating_duration_since(recorded)
    }
}

impl Worker {
    /// Renews this capture's lease once a third of it has passed, at a segment boundary: a
    /// command-line ingest runs no heartbeat of its own, and a renewal on every segment would
    /// add a synced write to each.
    fn renew_lease_when_due(&self) {
        let third =
            std::time::Duration::from_secs(self.app.config.server.capture_lease_seconds) / 3;
        if self.lease_renewed.get().elapsed() < third {
            return;
        }
        self.lease_renewed.set(std::time::Instant::now());
        if let Err(e) =
            self.app
                .catalog
                .renew_leases(&[self.row.id], self.app.node(), self.app.lease_until())
        {
            tracing::warn!(interview = %self.row.id, error = %e, "the capture lease could not be renewed");
        }
    }

    /// Notes the recording's codecs in the catalog, once, as its first media segment comes:
    /// the demuxer has offered every stream by then. The interview's status tells from them
    /// which browsers may not play the recording.
    fn record_codecs(&self) -> Result<(), CaptureError> {
        Ok(self
            .app
            .catalog
            .set_codecs(&self.row.id, &self.segmenter.codecs())?)
    }

    fn run(mut self) -> ThreadEnd {
        let mut manifest = Manifest::new(&self.row, Vec::new(), None);
        let mut live_header = None;
        // Analysis runs beside capture, never in its way: it is told each stored segment's
        // index and reads it back itself. Nothing starts without `analyze` consent.
        let analysis = match Analysis::start(&self.app, &self.row) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "analysis could not start; capture goes on");
                None
            }
        };
        let reason = loop {
            match self.segmenter.next() {
                Ok(SegmenterEvent::Segment(seg)) => {
                    let cut_at = Instant::now();
                    if seg.index == 1
                        && let Err(e) = self.record_codecs()
                    {
                        break Some(e);
                    }
                    let header =
                        (seg.kind == crate::vocab::MediaKind::Header).then(|| seg.bytes.clone());
                    match self.admit(&seg).and_then(|scopes| self.keep(seg, &scopes)) {
                        Ok(entry) => {
                            live_header = live_header.or(header);
                            observe(&METRICS.seal_store_seconds, cut_at.elapsed());
                            METRICS.segments_stored.inc();
                            if let Some(clock) = self.live.as_mut().filter(|_| entry.index > 0) {
                                observe(&METRICS.ack_lag_seconds, clock.lag(&entry));
                            }
                            if let Some(a) = &analysis {
                                a.stored(entry.index);
                            }
                            manifest.segments.push(entry)
                        }
                        Err(e) => break Some(e),
                    }
                }
                Ok(SegmenterEvent::End) => break None,
                Err(e) => break Some(CaptureError::Media(e)),
            }
            // An interim list, sealed every few segments: the store's own record should the
            // catalog be lost. After a crash, recovery seals the exact list from the catalog,
            // where every acknowledged segment is; rewriting it after every segment cost a new
            // file (and an upload, in S3) per segment, the largest share of a node's CPU under
            // load (file creation churn, measured with `kiroku bench streams` and perf).
            if manifest.segments.len() % INTERIM_MANIFEST_EVERY == 1 {
                let stored = self
                    .store()
                    .and_then(|store| Ok(manifest.store(&self.key, &self.row, store)?));
                if let Err(e) = stored {
                    break Some(e);
                }
            }
        };
        if reason.is_some() {
            self.segmenter.stop();
            self.shared.over.store(true, Ordering::SeqCst);
        }
        if let Some(a) = analysis {
            a.ended();
        }
        ThreadEnd {
            row: self.row,
            key: self.key,
            manifest,
            reason,
            live_header,
        }
    }

    /// The interview's store. `Capture::start` found its region, and regions are fixed for the
    /// process's life, so this fails only if that invariant is ever broken.
    fn store(&self) -> Result<&Store, CaptureError> {
        self.app
            .region(&self.row.region)
            .map(|r| &r.store)
            .ok_or(CaptureError::UnknownInterview)
    }

    /// The checks at every segment boundary: consent still stands, limits hold. Returns the
    /// consent scopes in force, which become the segment's tags.
    fn admit(&self, seg: &PlainSegment) -> Result<Vec<Scope>, CaptureError> {
        // An erased candidate has no standing scope (the ledger says so), so the common
        // case costs no query more; only a missing `record` asks why.
        let scopes = self.app.ledger().current_scopes(&self.row.candidate)?;
        if !scopes.contains(&Scope::Record) {
            if self.app.catalog.erased_at(&self.row.candidate)?.is_some() {
                return Err(CaptureError::CandidateErased);
            }
            return Err(CaptureError::ConsentWithdrawn);
        }
        if let Some(transfer @ Scope::Transfer(country)) = &self.transfer
            && !scopes.contains(transfer)
        {
            return Err(CaptureError::TransferConsentWithdrawn {
                country: country.to_string(),
            });
        }
        let limits = &self.app.config.limits;
        if seg.end_ns > limits.max_seconds_per_interview * 1_000_000_000 {
            return Err(CaptureError::TooLong {
                limit: limits.max_seconds_per_interview,
            });
        }
        let bytes = self
            .shared
            .segment_bytes
            .fetch_add(seg.bytes.len() as u64, Ordering::SeqCst)
            + seg.bytes.len() as u64;
        let allowed = limits.max_stream_kbps * 1000 / 8 * (seg.end_ns / 1_000_000_000 + 10);
        if bytes > allowed {
            return Err(CaptureError::BitrateTooHigh {
                limit: limits.max_stream_kbps,
            });
        }
        Ok(scopes)
    }

    /// Seals, stores, catalogs and acknowledges one segment.
    fn keep(&self, seg: PlainSegment, scopes: &[Scope]) -> Result<ManifestEntry, CaptureError> {
        let tags = tags::segment_tags(&self.row, &seg, scopes);
        let identity = ObjectIdentity {
            kind: ObjectKind::Segment,
            region: self.row.region.clone(),
            candidate: self.row.candidate,
            interview: self.row.id,
            index: seg.index,
            key_version: self.row.key_version,
        };
        let sealed = seal::seal(&self.key, &identity, seg.is_last, seg.bytes)?;
        let key = ObjectKey::segment(&self.row.candidate, &self.row.id, seg.index);
        self.store()?.put(&key, &sealed, &tags)?;
        let row = SegmentRow {
            interview: self.row.id,
            index: seg.index,
            object_key: key.clone(),
            media_kind: seg.kind,
            plain_len: sealed.plain_len(),
            sealed_len: sealed.len(),
            start_ns: seg.start_ns,
            end_ns: seg.end_ns,
            starts_on_keyframe: seg.starts_on_keyframe,
            is_final: seg.is_last,
            commitment: *sealed.commitment(),
            tags,
            stored_at: crate::util::now_rfc3339(),
            clusters: seg.clusters,
        };
        self.app.catalog.insert_segment(&row)?;
        self.renew_lease_when_due();
        // The segment is stored and catalogued: an audit failure is logged, never a reason to
        // withhold its acknowledgement.
        self.app.audit.record_or_warn(
            Event::SegmentStored {
                interview: self.row.id,
                candidate: self.row.candidate,
                segment: seg.index,
                commitment: hex::encode(row.commitment),
                region: self.row.region.clone(),
            },
            &Actor::System,
        );
        tracing::info!(
            segment = seg.index,
            kind = seg.kind.as_str(),
            start_ms = seg.start_ns / 1_000_000,
            end_ms = seg.end_ns / 1_000_000,
            bytes = row.sealed_len,
            "segment stored"
        );
        let _ = self.acks.send(CaptureEvent::Stored(SegmentAck {
            index: seg.index,
            media_kind: seg.kind.as_str(),
            start_ms: seg.start_ns / 1_000_000,
            end_ms: seg.end_ns / 1_000_000,
            starts_on_keyframe: seg.starts_on_keyframe,
            sealed_bytes: row.sealed_len,
        }));
        Ok(ManifestEntry::from_row(&row))
    }
}
