//! What a recording decodes to: every stream of a WebM/Matroska or MP4 file run through its
//! decoder, so tests can claim that an export plays like its input.

use std::path::Path;
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;

/// One decoded stream of a media file.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedStream {
    /// Caps name before decoding, e.g. `video/x-vp8`.
    pub codec: String,
    /// Frames (video) or packets (audio) that came out of the decoder.
    pub frames: u64,
    /// End of the last decoded buffer, in nanoseconds.
    pub end_ns: u64,
    /// Start of the first decoded buffer, in nanoseconds (a live recording need not start at 0).
    pub start_ns: u64,
}

/// Decodes every stream of a WebM/Matroska or MP4 file with explicit decoders (decodebin would
/// pick the alpha decoder for Chromium's VP8, which then fails) and reports what came out.
pub fn decode(path: &Path) -> Vec<DecodedStream> {
    gst::init().unwrap();
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc")
        .property("location", path.to_str().unwrap())
        .build()
        .unwrap();
    let head = std::fs::read(path).unwrap();
    let demuxer = if head.len() >= 8 && &head[4..8] == b"ftyp" {
        "qtdemux"
    } else {
        "matroskademux"
    };
    let demux = gst::ElementFactory::make(demuxer).build().unwrap();
    pipeline.add_many([&src, &demux]).unwrap();
    src.link(&demux).unwrap();
    let streams: Arc<Mutex<Vec<Arc<Mutex<DecodedStream>>>>> = Arc::default();
    let weak = pipeline.downgrade();
    let found = streams.clone();
    demux.connect_pad_added(move |_, pad| {
        let pipeline = weak.upgrade().unwrap();
        let caps = pad.current_caps().unwrap();
        let codec = caps.structure(0).unwrap().name().to_string();
        let decoder = match codec.as_str() {
            "video/x-vp8" => "vp8dec",
            "video/x-vp9" => "vp9dec",
            "video/x-h264" => "h264parse ! openh264dec",
            "video/x-av1" => "av1parse ! av1dec",
            "video/x-h265" => "h265parse ! avdec_h265",
            "audio/mpeg" => "avdec_aac",
            "audio/x-opus" => "opusdec",
            "audio/x-raw" => "identity",
            other => panic!("unexpected codec {other}"),
        };
        let queue = gst::ElementFactory::make("queue").build().unwrap();
        let dec = gst::parse::bin_from_description(decoder, true)
            .unwrap()
            .upcast::<gst::Element>();
        let sink = gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .build()
            .unwrap();
        pipeline.add_many([&queue, &dec, &sink]).unwrap();
        gst::Element::link_many([&queue, &dec, &sink]).unwrap();
        for e in [&queue, &dec, &sink] {
            e.sync_state_with_parent().unwrap();
        }
        pad.link(&queue.static_pad("sink").unwrap()).unwrap();
        let stream = Arc::new(Mutex::new(DecodedStream {
            codec,
            frames: 0,
            end_ns: 0,
            start_ns: u64::MAX,
        }));
        found.lock().unwrap().push(stream.clone());
        sink.static_pad("sink")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(buf) = info.buffer() {
                    let mut s = stream.lock().unwrap();
                    s.frames += 1;
                    let end = buf.pts().map(|p| p.nseconds()).unwrap_or(0)
                        + buf.duration().map(|d| d.nseconds()).unwrap_or(0);
                    s.end_ns = s.end_ns.max(end);
                    if let Some(p) = buf.pts() {
                        s.start_ns = s.start_ns.min(p.nseconds());
                    }
                }
                gst::PadProbeReturn::Ok
            });
    });
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(60)) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                panic!("{} does not decode: {}", path.display(), e.error())
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let mut out: Vec<DecodedStream> = streams
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.lock().unwrap().clone())
        .collect();
    out.sort_by(|a, b| a.codec.cmp(&b.codec));
    assert!(!out.is_empty(), "{} has no streams", path.display());
    out
}

/// Asserts that `export` holds the same streams and codecs as `input`, every frame of them,
/// ending within 0.5 s of the input.
pub fn assert_same_media(input: &Path, export: &Path) {
    let (a, b) = (decode(input), decode(export));
    assert_eq!(
        a.iter().map(|s| &s.codec).collect::<Vec<_>>(),
        b.iter().map(|s| &s.codec).collect::<Vec<_>>()
    );
    for (x, y) in a.iter().zip(&b) {
        assert!(x.frames > 0, "{x:?}");
        assert_eq!(
            x.frames, y.frames,
            "every frame of {} survives: input {x:?}, export {y:?}",
            x.codec
        );
        let diff = x.end_ns.abs_diff(y.end_ns);
        assert!(
            diff <= 500_000_000,
            "{}: input ends at {} ns, export at {} ns",
            x.codec,
            x.end_ns,
            y.end_ns
        );
    }
}

/// Encodes `seconds` of noise (which no encoder can shrink) as VP8 WebM (no audio) at about `kbps`, into
/// `path`: a recording as large as a test needs, made on the spot rather than kept as a
/// fixture. Uses GStreamer's own elements, so it needs nothing the suite does not.
pub fn make_webm(path: &Path, seconds: u32, kbps: u32) {
    gst::init().unwrap();
    let description = format!(
        "videotestsrc num-buffers={} pattern=snow ! video/x-raw,width=320,height=240,framerate=30/1 \
         ! vp8enc target-bitrate={} keyframe-max-dist=60 deadline=1 cpu-used=8 \
         ! webmmux ! filesink location={}",
        seconds * 30,
        kbps * 1000,
        path.display()
    );
    let pipeline = gst::parse::launch(&description).unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(120)) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("making {}: {}", path.display(), e.error()),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
}
