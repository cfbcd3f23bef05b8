//! Runs one ingest profile's pipeline for one interview: bytes in through `appsrc`, muxed bytes
//! out of `appsink` (or out of kiroku's own remuxer, for profiles with `direct = true`) into
//! the [`Cutter`], plain segments out of [`Segmenter::next`].
//!
//! The input side ([`SegmenterInput`]) is pushed from the front-end's connection; the output side
//! is pulled by the capture session's own thread. `appsrc` blocks when its queue is full, which
//! back-pressures the front-end instead of buffering without bound.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::cut::Cutter;
use super::direct::{DirectFeed, DirectOutput, Fed, direct_feed};
use super::piece::PieceKind;
use super::webrtc::IceSettings;
use super::whip::{self, Session as WhipSession, WhipDescription};
use super::{Container, MediaKind, PlainSegment, Profile, SegmentError};
use crate::vocab::Codec;

/// How long one wait for muxer output lasts before the bus is checked again.
const POLL: Duration = Duration::from_millis(50);

/// What the segmenter produced next.
#[derive(Debug)]
pub enum SegmenterEvent {
    Segment(PlainSegment),
    /// The stream ended and every segment has been handed out.
    End,
}

/// The feeding side of a running segmenter: the front-end's bytes into a pipeline or into
/// kiroku's own remuxer, or a WHIP session that feeds itself. Cheap to clone.
#[derive(Clone)]
pub enum SegmenterInput {
    Bytes(gst_app::AppSrc),
    Direct(Arc<DirectFeed>),
    Whip(Arc<WhipSession>),
}

impl SegmenterInput {
    /// Hands the next bytes of the stream to the segmenter; blocks while it is busy. Fails
    /// once it has stopped (an error, a refusal, or the end), and always for a WHIP session,
    /// whose media comes over RTP.
    pub fn push(&self, bytes: Vec<u8>) -> Result<(), SegmentError> {
        match self {
            SegmenterInput::Bytes(src) => src
                .push_buffer(gst::Buffer::from_mut_slice(bytes))
                .map(|_| ())
                .map_err(|e| SegmentError::Pipeline(format!("input refused: {e:?}"))),
            SegmenterInput::Direct(feed) => feed.push(&bytes),
            SegmenterInput::Whip(_) => Err(SegmentError::Pipeline(
                "a WHIP session takes its media over RTP, not as bytes".into(),
            )),
        }
    }

    /// Marks the end of the stream; the segmenter then flushes its last segment.
    pub fn end(&self) {
        match self {
            SegmenterInput::Bytes(src) => {
                let _ = src.end_of_stream();
            }
            SegmenterInput::Direct(feed) => feed.end(),
            SegmenterInput::Whip(session) => session.finish(),
        }
    }

    /// The sender went away without ending the stream (a WHIP peer's BYE or silence).
    pub fn peer_gone(&self) -> bool {
        matches!(self, SegmenterInput::Whip(s) if s.peer_gone())
    }
}

/// Where a segmenter's muxed bytes come from.
enum Source {
    /// A GStreamer pipeline: an ingest profile's, or a WHIP session's.
    Gst(GstSource),
    /// kiroku's own remuxer, run by the pushing thread.
    Direct(DirectOutput),
}

struct GstSource {
    pipeline: gst::Pipeline,
    sink: gst_app::AppSink,
    bus: gst::Bus,
    refusal: Arc<Mutex<Option<SegmentError>>>,
    /// A WHIP session's housekeeping runs on the segmenter's thread between pulls.
    whip: Option<Arc<WhipSession>>,
}

/// What one wait for muxed bytes brought.
enum Pulled {
    Bytes(Chunk),
    End,
    Nothing,
}

/// Muxed bytes as their source holds them: a GStreamer buffer mapped in place (no copy), or
/// the remuxer's own output.
enum Chunk {
    Gst(gst::MappedBuffer<gst::buffer::Readable>),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Chunk {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Chunk::Gst(m) => m.as_slice(),
            Chunk::Owned(v) => v,
        }
    }
}

impl Source {
    fn pull(&mut self) -> Result<Pulled, SegmentError> {
        match self {
            Source::Gst(g) => g.pull(),
            Source::Direct(d) => Ok(match d.recv(POLL) {
                Some(Fed::Bytes(b)) => Pulled::Bytes(Chunk::Owned(b)),
                Some(Fed::End) => Pulled::End,
                Some(Fed::Failed(e)) => return Err(e),
                None => Pulled::Nothing,
            }),
        }
    }

    fn stop(&self) {
        match self {
            Source::Gst(g) => {
                let _ = g.pipeline.set_state(gst::State::Null);
            }
            Source::Direct(d) => d.stop(),
        }
    }
}

impl GstSource {
    fn pull(&mut self) -> Result<Pulled, SegmentError> {
        self.check_failures()?;
        if let Some(session) = &self.whip {
            session.tick();
        }
        match self
            .sink
            .try_pull_sample(gst::ClockTime::from_nseconds(POLL.as_nanos() as u64))
        {
            Some(sample) => {
                let buffer = sample
                    .buffer_owned()
                    .ok_or_else(|| SegmentError::Pipeline("sample without buffer".into()))?;
                let map = buffer
                    .into_mapped_buffer_readable()
                    .map_err(|_| SegmentError::Pipeline("unreadable buffer".into()))?;
                Ok(Pulled::Bytes(Chunk::Gst(map)))
            }
            None if self.sink.is_eos() => {
                // A refusal or error may race with the end; neither may pass as a clean end.
                self.check_failures()?;
                Ok(Pulled::End)
            }
            None => Ok(Pulled::Nothing),
        }
    }

    fn check_failures(&mut self) -> Result<(), SegmentError> {
        let refused = self.refusal.lock().expect("refusal lock").take();
        if let Some(refused) = refused {
            return Err(refused);
        }
        while let Some(msg) = self.bus.pop() {
            if let gst::MessageView::Error(e) = msg.view() {
                // A refusal makes the demuxer fail with not-linked; report the refusal, not that.
                let refused = self.refusal.lock().expect("refusal lock").take();
                return Err(
                    refused.unwrap_or_else(|| SegmentError::Unreadable(e.error().to_string()))
                );
            }
        }
        Ok(())
    }
}

/// A running segmenter and the cutter behind it. Dropping it stops it.
pub struct Segmenter {
    source: Source,
    cutter: Option<Cutter>,
    /// The codecs of the streams recorded, in the order they were offered.
    codecs: Arc<Mutex<Vec<Codec>>>,
    pending: VecDeque<PlainSegment>,
    /// Most muxed bytes a segment may gather before it is cut.
    max_segment_bytes: u64,
    /// Why the segmenter stopped, told once the segments cut before are handed out.
    failed: Option<SegmentError>,
    next_index: u32,
    media: MediaKind,
    done: bool,
}

impl Segmenter {
    fn with_source(
        source: Source,
        container: Container,
        target: Duration,
        codecs: Arc<Mutex<Vec<Codec>>>,
    ) -> Segmenter {
        Segmenter {
            source,
            cutter: Some(Cutter::new(container, target.as_nanos() as u64)),
            codecs,
            pending: VecDeque::new(),
            max_segment_bytes: u64::MAX,
            failed: None,
            next_index: 0,
            media: MediaKind::VideoAudio,
            done: false,
        }
    }

    /// Builds and starts the profile's pipeline, cutting segments of about `target`.
    pub fn start(
        profile: &Profile,
        target: Duration,
    ) -> Result<(Segmenter, SegmenterInput), SegmentError> {
        super::init_gstreamer()?;
        let (pipeline, src, demux, mux, sink) =
            build(profile).map_err(|why| SegmentError::Profile {
                file: profile.name.clone(),
                why,
            })?;
        let refusal = Arc::new(Mutex::new(None));
        let codecs = Arc::new(Mutex::new(Vec::new()));
        link_streams_on_demand(
            &pipeline,
            &demux,
            &mux,
            profile,
            refusal.clone(),
            codecs.clone(),
        );
        let bus = pipeline
            .bus()
            .ok_or_else(|| SegmentError::Pipeline("pipeline has no bus".into()))?;
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| SegmentError::Pipeline(e.to_string()))?;
        let source = Source::Gst(GstSource {
            pipeline,
            sink,
            bus,
            refusal,
            whip: None,
        });
        let seg = Segmenter::with_source(source, profile.container, target, codecs);
        Ok((seg, SegmenterInput::Bytes(src)))
    }

    /// Starts kiroku's own remuxer for a profile with `direct = true` (Matroska/WebM in and
    /// out), cutting segments of about `target`: no GStreamer in the path.
    pub fn start_direct(
        profile: &Profile,
        target: Duration,
    ) -> Result<(Segmenter, SegmenterInput), SegmentError> {
        let codecs = Arc::new(Mutex::new(Vec::new()));
        let (feed, output) = direct_feed(profile, codecs.clone());
        let seg = Segmenter::with_source(Source::Direct(output), profile.container, target, codecs);
        Ok((seg, SegmenterInput::Direct(feed)))
    }

    /// Answers a WHIP offer and starts receiving: the session's streams go through the
    /// description's depayloaders into the muxer, cut into segments of about `target`. The
    /// answer names the ingest profile the recording is stored under.
    pub fn start_whip(
        description: &WhipDescription,
        offer: &str,
        ice: &IceSettings,
        target: Duration,
    ) -> Result<(Segmenter, SegmenterInput, whip::Answer), SegmentError> {
        let n = whip::negotiate(description, offer, ice, target)?;
        let bus = n
            .pipeline
            .bus()
            .ok_or_else(|| SegmentError::Pipeline("pipeline has no bus".into()))?;
        let codecs = Arc::new(Mutex::new(n.session.codecs()));
        let source = Source::Gst(GstSource {
            pipeline: n.pipeline,
            sink: n.sink,
            bus,
            refusal: Arc::new(Mutex::new(None)),
            whip: Some(n.session.clone()),
        });
        let seg = Segmenter::with_source(source, Container::Matroska, target, codecs);
        Ok((seg, SegmenterInput::Whip(n.session), n.answer))
    }

    /// Waits for the next segment or the end. An error stops the segmenter for good.
    #[allow(clippy::should_implement_trait)] // blocking and fallible: not an Iterator
    pub fn next(&mut self) -> Result<SegmenterEvent, SegmentError> {
        loop {
            if let Some(seg) = self.pending.pop_front() {
                return Ok(SegmenterEvent::Segment(seg));
            }
            if let Some(e) = self.failed.take() {
                return Err(e);
            }
            if self.done {
                return Ok(SegmenterEvent::End);
            }
            match self.source.pull() {
                Err(e) => return Err(self.halt_with(e)),
                Ok(Pulled::Bytes(bytes)) => {
                    let cutter = self.cutter.as_mut().expect("cutter lives until the end");
                    let pieces = cutter
                        .push(&bytes)
                        .map_err(|e| self.halt_with(SegmentError::Pipeline(e.to_string())))?;
                    let pending = self.cutter.as_ref().map_or(0, |c| c.pending_bytes() as u64);
                    self.queue(pieces, false);
                    if pending > self.max_segment_bytes {
                        // The segments cut before stay: they are handed out first.
                        self.stop();
                        self.done = true;
                        self.failed = Some(SegmentError::SegmentTooLarge {
                            limit: self.max_segment_bytes,
                        });
                    }
                }
                Ok(Pulled::End) => {
                    let cutter = self.cutter.take().expect("cutter lives until the end");
                    let pieces = cutter
                        .finish()
                        .map_err(|e| self.halt_with(SegmentError::Pipeline(e.to_string())))?;
                    self.queue(pieces, true);
                    self.done = true;
                }
                Ok(Pulled::Nothing) => {}
            }
        }
    }

    /// The codecs of the streams being recorded; complete once the first media segment is out
    /// (the demuxer offers every stream before any media flows).
    /// Sorted in the vocabulary's order (video before audio), whatever order the pads came in.
    pub fn codecs(&self) -> Vec<Codec> {
        let mut codecs = self
            .codecs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        codecs.sort();
        codecs
    }

    /// Bounds the muxed bytes one segment may gather; past it the segmenter stops with
    /// [`SegmentError::SegmentTooLarge`], segments already handed out kept.
    pub fn limit_segment_bytes(&mut self, limit: u64) {
        self.max_segment_bytes = limit;
    }

    /// Stops the segmenter now; pending input pushes fail from here on.
    pub fn stop(&self) {
        self.source.stop();
    }

    /// Pulls and drops the muxer's output until the end: the GStreamer-only baseline of
    /// `kiroku bench`. Returns the number of bytes the muxer produced.
    pub fn drain_without_cutting(mut self) -> Result<u64, SegmentError> {
        let mut total = 0u64;
        loop {
            match self.source.pull()? {
                Pulled::Bytes(b) => total += b.len() as u64,
                Pulled::End => return Ok(total),
                Pulled::Nothing => {}
            }
        }
    }

    fn halt_with(&mut self, err: SegmentError) -> SegmentError {
        self.stop();
        self.done = true;
        self.pending.clear();
        err
    }

    fn queue(&mut self, pieces: Vec<super::Piece>, ending: bool) {
        let count = pieces.len();
        for (i, piece) in pieces.into_iter().enumerate() {
            let kind = match piece.kind {
                PieceKind::Header => {
                    self.media = self
                        .cutter
                        .as_ref()
                        .map(media_kind_of)
                        .unwrap_or(self.media);
                    MediaKind::Header
                }
                PieceKind::Media => self.media,
            };
            self.pending.push_back(PlainSegment {
                index: self.next_index,
                kind,
                bytes: piece.bytes,
                start_ns: piece.start_ns,
                end_ns: piece.end_ns,
                starts_on_keyframe: piece.starts_on_keyframe,
                is_last: ending && i + 1 == count,
                clusters: piece.clusters,
            });
            self.next_index += 1;
        }
    }
}

impl Drop for Segmenter {
    fn drop(&mut self) {
        self.source.stop();
    }
}

/// Runs `bytes` through the profile's pipeline and throws the output away: the GStreamer-only
/// remux that `kiroku bench` compares the whole ingest path against.
pub fn remux_only(profile: &Profile, bytes: &[u8]) -> Result<u64, SegmentError> {
    let (seg, input) = Segmenter::start(profile, Duration::from_secs(4))?;
    let feeder = {
        let input = input.clone();
        let bytes = bytes.to_vec();
        std::thread::spawn(move || {
            for chunk in bytes.chunks(64 * 1024) {
                if input.push(chunk.to_vec()).is_err() {
                    break;
                }
            }
            input.end();
        })
    };
    let out = seg.drain_without_cutting();
    let _ = feeder.join();
    out
}

fn media_kind_of(c: &Cutter) -> MediaKind {
    let t = c.tracks();
    match (t.video_tracks.is_empty(), t.audio_tracks.is_empty()) {
        (false, false) => MediaKind::VideoAudio,
        (false, true) => MediaKind::Video,
        _ => MediaKind::Audio,
    }
}

type Built = (
    gst::Pipeline,
    gst_app::AppSrc,
    gst::Element,
    gst::Element,
    gst_app::AppSink,
);

fn build(profile: &Profile) -> Result<Built, String> {
    let element = gst::parse::launch(&profile.pipeline).map_err(|e| e.to_string())?;
    let pipeline = element
        .downcast::<gst::Pipeline>()
        .map_err(|_| "the description is not a pipeline".to_string())?;
    let by_name = |n: &str| {
        pipeline
            .by_name(n)
            .ok_or_else(|| format!("no element named `{n}`"))
    };
    let src = by_name("src")?
        .downcast::<gst_app::AppSrc>()
        .map_err(|_| "`src` must be an appsrc".to_string())?;
    let sink = by_name("sink")?
        .downcast::<gst_app::AppSink>()
        .map_err(|_| "`sink` must be an appsink".to_string())?;
    let (demux, mux) = (by_name("demux")?, by_name("mux")?);
    Ok((pipeline, src, demux, mux, sink))
}

/// Checks a profile at load time: the pipeline and the stream branch parse, and the named
/// elements exist with the right types.
pub(super) fn check_description(profile: &Profile) -> Result<(), String> {
    let (pipeline, ..) = build(profile)?;
    let _ = pipeline.set_state(gst::State::Null);
    gst::parse::bin_from_description(&profile.stream, true).map_err(|e| format!("stream: {e}"))?;
    for (codec, branch) in &profile.stream_by_codec {
        if !profile.allowed_codecs.contains(codec) {
            return Err(format!("stream_by_codec: {codec} is not in allowed_codecs"));
        }
        gst::parse::bin_from_description(branch, true)
            .map_err(|e| format!("stream_by_codec.\"{codec}\": {e}"))?;
    }
    if profile.direct
        && (profile.container != Container::Matroska
            || profile
                .content_types
                .iter()
                .any(|t| Container::of(t) != Some(Container::Matroska)))
    {
        return Err("direct: only for a profile that takes and writes Matroska/WebM".into());
    }
    if profile.allowed_codecs.is_empty() || profile.content_types.is_empty() {
        return Err("allowed_codecs and content_types must not be empty".into());
    }
    Ok(())
}

/// Links each elementary stream the demuxer exposes to the muxer through the profile's stream
/// branch, or records a refusal when its codec is not allowed (the pad stays unlinked, which
/// stops the demuxer before anything is muxed).
fn link_streams_on_demand(
    pipeline: &gst::Pipeline,
    demux: &gst::Element,
    mux: &gst::Element,
    profile: &Profile,
    refusal: Arc<Mutex<Option<SegmentError>>>,
    codecs: Arc<Mutex<Vec<Codec>>>,
) {
    let pipeline = pipeline.downgrade();
    let mux = mux.downgrade();
    let allowed = profile.allowed_codecs.clone();
    let profile_for_branch = profile.clone();
    let profile_name = profile.name.clone();
    demux.connect_pad_added(move |_, pad| {
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let structure = caps.structure(0);
        let codec = structure
            .map(|s| s.name().to_string())
            .unwrap_or_else(|| "unknown".into());
        let refuse = |err: SegmentError| {
            let mut slot = refusal.lock().expect("refusal lock");
            slot.get_or_insert(err);
        };
        if !allowed.contains(&codec) {
            refuse(SegmentError::CodecNotAllowed {
                codec,
                profile: profile_name.clone(),
                allowed: allowed.join(", "),
            });
            return;
        }
        let (Some(pipeline), Some(mux)) = (pipeline.upgrade(), mux.upgrade()) else {
            return;
        };
        let template = if codec.starts_with("video/") {
            "video_%u"
        } else {
            "audio_%u"
        };
        let linked = (|| -> Result<(), String> {
            let branch = profile_for_branch.stream_for(&codec);
            let bin = gst::parse::bin_from_description(branch, true).map_err(|e| e.to_string())?;
            pipeline.add(&bin).map_err(|e| e.to_string())?;
            bin.sync_state_with_parent().map_err(|e| e.to_string())?;
            let sink = bin
                .static_pad("sink")
                .ok_or("stream branch has no sink pad")?;
            pad.link(&sink).map_err(|e| format!("{e:?}"))?;
            let mux_pad = mux
                .request_pad_simple(template)
                .ok_or("muxer refused a stream pad")?;
            let src = bin
                .static_pad("src")
                .ok_or("stream branch has no src pad")?;
            src.link(&mux_pad).map_err(|e| format!("{e:?}"))?;
            Ok(())
        })();
        match linked {
            Ok(()) => {
                if let Some(c) = structure.and_then(codec_of) {
                    codecs.lock().unwrap_or_else(|p| p.into_inner()).push(c);
                }
            }
            Err(why) => refuse(SegmentError::Pipeline(format!(
                "could not link a {codec} stream: {why}"
            ))),
        }
    });
}

/// The codec a demuxer's stream carries, from its caps (`audio/mpeg` is AAC with
/// `mpegversion=4`, MP3 with 1). `None` for a codec kiroku has no word for (an operator's
/// profile may allow more than the shipped ones).
fn codec_of(caps: &gst::StructureRef) -> Option<Codec> {
    match caps.name().as_str() {
        "audio/mpeg" => match caps.get::<i32>("mpegversion").ok()? {
            2 | 4 => Some(Codec::Aac),
            1 => Some(Codec::Mp3),
            _ => None,
        },
        name => super::codec_of_caps(name),
    }
}
