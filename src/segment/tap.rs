//! The analysis audio tap: the recording's plaintext segments in, as they are stored; the first
//! audio track out, decoded to 16 kHz mono `f32` (`pipelines/analysis/audio-tap.toml`).
//!
//! Samples are handed back per segment: after a segment's bytes go in, [`AudioTap::samples_until`]
//! waits (briefly) until the decoder has produced audio up to that segment's end time, and
//! returns what lies before it; anything later is kept for the next segment.

use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::profile::PipelineSource;
use super::{Container, SegmentError};

/// Samples per second out of the tap.
pub const TAP_RATE: u64 = 16_000;
/// How far short of a segment's end the decoded audio may stop.
const SLACK_NS: u64 = 50_000_000;

/// The tap's pipeline description file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TapDescription {
    #[allow(dead_code)] // documentation for operators
    description: String,
    pipeline: String,
}

/// Reads and parses the tap's description; the error names its file.
fn read_description(source: &PipelineSource) -> Result<(String, TapDescription), SegmentError> {
    let (file, text) = source.tap()?;
    let d = toml::from_str(&text).map_err(|e| SegmentError::Profile {
        file: file.clone(),
        why: e.to_string(),
    })?;
    Ok((file, d))
}

/// Checks at start-up that the tap's description is there and reads, so a broken
/// `pipelines_dir` is refused when kiroku opens rather than failing every analysis later.
pub(super) fn check_description(source: &PipelineSource) -> Result<(), SegmentError> {
    read_description(source).map(|_| ())
}

pub struct AudioTap {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    sink: gst_app::AppSink,
    /// Decoded samples not yet handed out, and the media time of the first of them.
    held: Vec<f32>,
    held_start_ns: Option<u64>,
    ended: bool,
}

impl AudioTap {
    /// Starts the tap described in `analysis/audio-tap.toml` of the pipeline descriptions, for
    /// a recording in `container`.
    pub fn start(source: &PipelineSource, container: Container) -> Result<AudioTap, SegmentError> {
        super::init_gstreamer()?;
        let (file, d) = read_description(source)?;
        let bad = |why: String| SegmentError::Profile {
            file: file.clone(),
            why,
        };
        let description = d.pipeline.replace("{demuxer}", container.demuxer());
        let pipeline = gst::parse::launch(&description)
            .map_err(|e| bad(e.to_string()))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| bad("not a pipeline".into()))?;
        let src = pipeline
            .by_name("src")
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            .ok_or_else(|| bad("`src` must be an appsrc".into()))?;
        let sink = pipeline
            .by_name("sink")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or_else(|| bad("`sink` must be an appsink".into()))?;
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| SegmentError::Pipeline(e.to_string()))?;
        Ok(AudioTap {
            pipeline,
            src,
            sink,
            held: Vec::new(),
            held_start_ns: None,
            ended: false,
        })
    }

    /// Feeds the next stored segment's plaintext.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), SegmentError> {
        self.src
            .push_buffer(gst::Buffer::from_slice(bytes.to_vec()))
            .map(|_| ())
            .map_err(|e| SegmentError::Pipeline(format!("audio tap: {e:?}")))
    }

    /// Ends the input: the next [`AudioTap::samples_until`] drains everything.
    pub fn end(&mut self) {
        let _ = self.src.end_of_stream();
    }

    /// The decoded samples before media time `end_ns` (all of them once the input ended),
    /// waiting at most `wait` for the decoder to get there.
    pub fn samples_until(
        &mut self,
        end_ns: Option<u64>,
        wait: Duration,
    ) -> Result<Vec<f32>, SegmentError> {
        let deadline = Instant::now() + wait;
        loop {
            // The resampler keeps a few milliseconds back until more input comes, so "up to
            // the segment's end" means within 50 ms of it; the rest goes with the next one.
            if let Some(end) = end_ns
                && self.held_end_ns() + SLACK_NS >= end
            {
                break;
            }
            if self.ended {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.sink.try_pull_sample(gst::ClockTime::from_mseconds(
                left.as_millis().min(50) as u64
            )) {
                Some(sample) => self.take(&sample),
                None => {
                    if self.sink.is_eos() {
                        self.ended = true;
                    }
                    self.check_bus()?;
                }
            }
        }
        let n = match end_ns {
            Some(end) if !self.ended || end < self.held_end_ns() => {
                let start = self.held_start_ns.unwrap_or(0);
                (end.saturating_sub(start) * TAP_RATE / 1_000_000_000) as usize
            }
            _ => self.held.len(),
        }
        .min(self.held.len());
        let out: Vec<f32> = self.held.drain(..n).collect();
        if let Some(s) = self.held_start_ns.as_mut() {
            *s += n as u64 * 1_000_000_000 / TAP_RATE;
        }
        Ok(out)
    }

    fn held_end_ns(&self) -> u64 {
        self.held_start_ns.unwrap_or(0) + self.held.len() as u64 * 1_000_000_000 / TAP_RATE
    }

    fn take(&mut self, sample: &gst::Sample) {
        let Some(buf) = sample.buffer() else { return };
        if self.held_start_ns.is_none() {
            self.held_start_ns = Some(buf.pts().map(|p| p.nseconds()).unwrap_or(0));
        }
        if let Ok(map) = buf.map_readable() {
            self.held.extend(
                map.as_slice()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
        }
    }

    fn check_bus(&mut self) -> Result<(), SegmentError> {
        let Some(bus) = self.pipeline.bus() else {
            return Ok(());
        };
        while let Some(msg) = bus.pop() {
            match msg.view() {
                gst::MessageView::Error(e) => {
                    self.ended = true;
                    return Err(SegmentError::Unreadable(format!(
                        "audio tap: {}",
                        e.error()
                    )));
                }
                gst::MessageView::Eos(_) => self.ended = true,
                _ => {}
            }
        }
        Ok(())
    }
}

impl Drop for AudioTap {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
