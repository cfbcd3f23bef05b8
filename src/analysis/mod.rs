//! Analysis: an interview's audio analysed as it streams, only while the candidate's `analyze`
//! consent stands, its outputs sealed and stored in the interview's region like the media.
//!
//! Capture hands the analysis worker nothing but the index of each segment it stored (an
//! unbounded queue of integers: the ingest path never waits for analysis, however slow).
//! The worker reads the sealed segment back from the store, opens it, feeds it to the audio
//! tap (GStreamer, 16 kHz mono), and for each segment writes:
//!
//! - a 16 kHz WAV rendition (hound), sealed as kind `Rendition`, for external analyzers;
//! - the built-in analyzer's report for that segment, sealed as kind `Analysis`;
//!
//! - each external analyzer's output for that segment ([`external`]; failures recorded);
//!
//! and at the end the built-in report for the whole interview. Before each segment it asks
//! the ledger again: a withdrawal stops analysis at the next segment; outputs already made stay
//! sealed and are released only under `share.analysis` (see [`crate::release`]).
//! How far the worker lags behind capture is in the `analysis lagging` log line.

pub mod external;
pub mod features;
pub mod late;
pub mod report;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

use crate::app::Kiroku;
use crate::audit::{Actor, AnalysisStop, Event};
use crate::catalog::{AnalysisRow, InterviewRow, SegmentRow};
use crate::consent::Scope;
use crate::events::Happened;
use crate::recording::{output_identity, segment_identity};
use crate::seal::{self, CandidateKey, ObjectKind};
use crate::segment::{AudioTap, MediaKind};
use crate::store::ObjectKey;
use crate::vocab::{AnalysisStatus, OutputFormat};

pub const BUILTIN: &str = crate::config::BUILTIN_ANALYZER;
/// Object folder of the WAV renditions.
pub const RENDITION: &str = crate::config::RENDITION_ANALYZER;
/// Lag, in segments, from which the worker says it is falling behind.
const LAG_WARN: usize = 4;

/// Why a segment could not be analysed.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("analysis input: {0}")]
    Input(String),
    #[error(transparent)]
    Media(#[from] crate::segment::SegmentError),
    #[error(transparent)]
    Seal(#[from] seal::SealError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error(transparent)]
    Consent(#[from] crate::consent::ConsentError),
    #[error(transparent)]
    KeyLookup(#[from] crate::app::KeyLookupError),
    #[error("segment {0} is not the one the catalog lists")]
    NotCatalogued(u32),
}

/// What capture tells the worker.
pub enum Note {
    /// Segment `index` was stored at that instant.
    Stored(u32, std::time::Instant),
    Ended,
}

/// The capture side of one interview's analysis.
pub struct Analysis {
    app: Arc<Kiroku>,
    tx: Sender<Note>,
    /// Segments stored but not yet analysed: the worker's lag.
    lag: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Analysis {
    /// Starts analysing an interview if the candidate's `analyze` consent stands now;
    /// otherwise nothing runs and nothing is computed.
    pub fn start(app: &Arc<Kiroku>, row: &InterviewRow) -> Result<Option<Analysis>, AnalysisError> {
        if !allowed(app, row)? {
            return Ok(None);
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let worker = Worker::new(app, row)?;
        let lag = Arc::new(AtomicUsize::new(0));
        let worker_lag = lag.clone();
        let thread = std::thread::Builder::new()
            .name(format!("analysis-{}", &row.id.to_string()[..8]))
            .spawn(move || worker.run(rx, worker_lag))
            .map_err(|e| AnalysisError::Input(e.to_string()))?;
        Ok(Some(Analysis {
            app: app.clone(),
            tx,
            lag,
            thread: Some(thread),
        }))
    }

    pub fn stored(&self, index: u32) {
        self.lag.fetch_add(1, Ordering::SeqCst);
        let _ = self.tx.send(Note::Stored(index, std::time::Instant::now()));
    }

    /// Segments stored and not yet analysed.
    pub fn lag(&self) -> usize {
        self.lag.load(Ordering::SeqCst)
    }

    /// Says the capture ended; the worker finishes on its own time, as background work that
    /// a command-line process (`kiroku ingest`) waits for before it exits.
    pub fn ended(mut self) {
        let _ = self.tx.send(Note::Ended);
        if let Some(t) = self.thread.take() {
            self.app.background.adopt(t);
        }
    }

    /// Says the capture ended and waits for the worker (tests, `kiroku analyze`).
    pub fn ended_and_wait(mut self) {
        let _ = self.tx.send(Note::Ended);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs the analysis of an ended interview from its stored segments (when `analyze` stands).
pub fn analyze_stored(app: &Arc<Kiroku>, row: &InterviewRow) -> Result<bool, AnalysisError> {
    let Some(a) = Analysis::start(app, row)? else {
        return Ok(false);
    };
    for s in app.catalog.segments(&row.id)? {
        a.stored(s.index);
    }
    a.ended_and_wait();
    Ok(true)
}

fn allowed(app: &Kiroku, row: &InterviewRow) -> Result<bool, AnalysisError> {
    Ok(app
        .ledger()
        .standing_grant(&row.candidate, &Scope::Analyze)?
        .is_some())
}

struct Worker {
    app: Arc<Kiroku>,
    row: InterviewRow,
    key: CandidateKey,
    tap: Option<AudioTap>,
    features: features::Extractor,
    done: u32,
}

impl Worker {
    fn new(app: &Arc<Kiroku>, row: &InterviewRow) -> Result<Worker, AnalysisError> {
        let (_, key) = app
            .interview_key(row)?
            .ok_or_else(|| AnalysisError::Input("the interview's key is gone".into()))?;
        Ok(Worker {
            app: app.clone(),
            row: row.clone(),
            key,
            tap: None,
            features: features::Extractor::default(),
            done: 0,
        })
    }

    fn run(mut self, rx: Receiver<Note>, lag: Arc<AtomicUsize>) {
        let mut stopped = false;
        loop {
            match rx.recv().unwrap_or(Note::Ended) {
                Note::Stored(i, stored_at) => {
                    let behind = lag.fetch_sub(1, Ordering::SeqCst) - 1;
                    if behind >= LAG_WARN {
                        tracing::warn!(interview = %self.row.id, lag_segments = behind, "analysis lagging behind capture");
                    }
                    if !stopped {
                        stopped = self.step(i);
                        crate::metrics::observe(
                            &crate::metrics::METRICS.analysis_lag_seconds,
                            stored_at.elapsed(),
                        );
                    }
                }
                Note::Ended => {
                    if !stopped {
                        self.finish();
                    }
                    return;
                }
            }
        }
    }

    /// One segment; returns true when analysis must stop (consent withdrawn, or a failure).
    fn step(&mut self, index: u32) -> bool {
        match allowed(&self.app, &self.row) {
            Ok(true) => {}
            Ok(false) => {
                self.app.audit.record_or_warn(
                    Event::AnalysisStopped {
                        interview: self.row.id,
                        candidate: self.row.candidate,
                        segment: Some(index),
                        reason: AnalysisStop::AnalyzeConsentWithdrawn,
                    },
                    &Actor::System,
                );
                return true;
            }
            Err(e) => {
                tracing::error!(error = %e, "analysis could not check consent; it stops");
                return true;
            }
        }
        match self.segment(index) {
            Ok(()) => false,
            Err(e) => {
                tracing::warn!(interview = %self.row.id, segment = index, error = %e, "analysis failed; capture goes on");
                self.record_failure(BUILTIN, Some(index), &e.to_string());
                true
            }
        }
    }

    fn segment(&mut self, index: u32) -> Result<(), AnalysisError> {
        // One row, not the interview's whole list: this runs for every segment.
        let seg: SegmentRow = self
            .app
            .catalog
            .segment(&self.row.id, index)?
            .ok_or_else(|| {
                AnalysisError::Input(format!("segment {index} is not in the catalog"))
            })?;
        let region = self
            .app
            .region(&self.row.region)
            .ok_or_else(|| AnalysisError::Input("the interview's region is gone".into()))?;
        let sealed = region.store.get(&seg.object_key)?;
        let opened = seal::open(&self.key, &segment_identity(&self.row, index), &sealed)?;
        // The sealed object proves it is this interview's segment `index`; the catalog's
        // commitment proves it is the very segment capture acknowledged, as export checks.
        if opened.commitment != seg.commitment {
            return Err(AnalysisError::NotCatalogued(index));
        }
        let tap = match &mut self.tap {
            Some(tap) => tap,
            None => {
                let container = self
                    .app
                    .profiles
                    .by_name(&self.row.profile)
                    .map(|p| p.container)
                    .ok_or_else(|| {
                        AnalysisError::Input(format!(
                            "the interview's ingest profile `{}` is no longer configured",
                            self.row.profile
                        ))
                    })?;
                self.tap
                    .insert(AudioTap::start(self.app.profiles.source(), container)?)
            }
        };
        tap.push(&opened.plaintext)?;
        if seg.media_kind == MediaKind::Header {
            return Ok(());
        }
        if seg.is_final {
            tap.end();
        }
        let until = (!seg.is_final).then_some(seg.end_ns);
        let samples = tap.samples_until(until, Duration::from_secs(5))?;
        let hops_before = self.features.features.hops.len();
        let subs_before = self.features.features.subs.len();
        let (clip_before, n_before) = (
            self.features.features.clipped,
            self.features.features.samples,
        );
        self.features.push(&samples);
        if seg.is_final {
            self.features.finish();
        }
        let f = &self.features.features;
        let report = report::report(
            &f.hops[hops_before..],
            &f.subs[subs_before..],
            f.clipped - clip_before,
            f.samples - n_before,
        );
        let rendition = wav(&samples)?;
        for a in &self.app.config.analyzers {
            match external::run(a, &rendition) {
                Ok(out) => self.put(
                    ObjectKind::Analysis {
                        analyzer: a.name.clone(),
                    },
                    Some(index),
                    OutputFormat::Json,
                    serde_json::to_vec(&out).expect("JSON serialises"),
                )?,
                Err(why) => {
                    tracing::warn!(interview = %self.row.id, analyzer = %a.name, segment = index, error = %why, "external analyzer failed");
                    self.record_failure(&a.name, Some(index), &why);
                }
            }
        }
        self.put(
            ObjectKind::Rendition,
            Some(index),
            OutputFormat::Wav,
            rendition,
        )?;
        self.put(
            builtin(),
            Some(index),
            OutputFormat::Json,
            serde_json::to_vec(&report).expect("report serialises"),
        )?;
        self.done += 1;
        Ok(())
    }

    fn finish(&mut self) {
        // A withdrawal after the last segment still comes before the whole-interview report.
        if !allowed(&self.app, &self.row).unwrap_or(false) {
            self.app.audit.record_or_warn(
                Event::AnalysisStopped {
                    interview: self.row.id,
                    candidate: self.row.candidate,
                    segment: None,
                    reason: AnalysisStop::AnalyzeConsentWithdrawn,
                },
                &Actor::System,
            );
            return;
        }
        self.features.finish();
        let whole = report::whole(&self.features.features);
        let body = serde_json::to_vec(&whole).expect("report serialises");
        match self.put(builtin(), None, OutputFormat::Json, body) {
            Ok(()) => {
                self.app.audit.record_or_warn(
                    Event::AnalysisCompleted {
                        interview: self.row.id,
                        candidate: self.row.candidate,
                        segments: self.done,
                        analyzer: BUILTIN.into(),
                        version: report::VERSION.into(),
                    },
                    &Actor::System,
                );
                self.app
                    .events
                    .announce(Happened::AnalysisCompleted(self.row.clone()));
            }
            Err(e) => self.record_failure(BUILTIN, None, &e.to_string()),
        }
    }

    /// Seals and stores one output in the interview's region and records it, under the name
    /// of the analyzer that made it (renditions under [`RENDITION`]).
    fn put(
        &self,
        kind: ObjectKind,
        segment: Option<u32>,
        format: OutputFormat,
        plain: Vec<u8>,
    ) -> Result<(), AnalysisError> {
        let (analyzer, tag) = match &kind {
            ObjectKind::Analysis { analyzer } => (analyzer.clone(), "analysis"),
            _ => (RENDITION.to_string(), "rendition"),
        };
        let region = self
            .app
            .region(&self.row.region)
            .ok_or_else(|| AnalysisError::Input("the interview's region is gone".into()))?;
        let identity = output_identity(&self.row, kind, segment);
        let sealed = seal::seal(&self.key, &identity, segment.is_none(), plain)?;
        let key = ObjectKey::analysis(
            &self.row.candidate,
            &self.row.id,
            &analyzer,
            segment,
            format.as_str(),
        );
        let tags = serde_json::json!({
            "kiroku": 1,
            "kind": tag,
            "analyzer": analyzer,
            "candidate": self.row.candidate.to_string(),
            "interview": self.row.id.to_string(),
            "segment": segment,
            "region": self.row.region.to_string(),
            "key_version": self.row.key_version,
            "consent_scopes": ["analyze"],
        });
        region.store.put(&key, &sealed, &tags)?;
        self.app.catalog.insert_analysis(&AnalysisRow {
            interview: self.row.id,
            analyzer,
            segment,
            kind: format,
            object_key: Some(key),
            plain_len: sealed.plain_len(),
            commitment: Some(hex::encode(sealed.commitment())),
            status: AnalysisStatus::Ok,
            error: None,
            created_at: crate::util::now_rfc3339(),
        })?;
        Ok(())
    }

    fn record_failure(&self, analyzer: &str, segment: Option<u32>, why: &str) {
        let _ = self.app.catalog.insert_analysis(&AnalysisRow {
            interview: self.row.id,
            analyzer: analyzer.into(),
            segment,
            kind: OutputFormat::Json,
            object_key: None,
            plain_len: 0,
            commitment: None,
            status: AnalysisStatus::Failed,
            error: Some(why.chars().take(500).collect()),
            created_at: crate::util::now_rfc3339(),
        });
        self.app.audit.record_or_warn(
            Event::AnalysisFailed {
                interview: self.row.id,
                analyzer: analyzer.into(),
                segment,
            },
            &Actor::System,
        );
    }
}

/// The built-in analyzer's output kind.
fn builtin() -> ObjectKind {
    ObjectKind::Analysis {
        analyzer: BUILTIN.into(),
    }
}

/// A 16-bit PCM WAV of 16 kHz mono samples, in memory.
pub fn wav(samples: &[f32]) -> Result<Vec<u8>, AnalysisError> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: features::RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::with_capacity(44 + samples.len() * 2));
    {
        let mut w = hound::WavWriter::new(&mut out, spec)
            .map_err(|e| AnalysisError::Input(e.to_string()))?;
        for s in samples {
            w.write_sample((s.clamp(-1.0, 1.0) * i16::MAX as f32) as i16)
                .map_err(|e| AnalysisError::Input(e.to_string()))?;
        }
        w.finalize()
            .map_err(|e| AnalysisError::Input(e.to_string()))?;
    }
    Ok(out.into_inner())
}
