//! WHIP ingest (RFC 9725): one WebRTC session received by GStreamer's `webrtcbin`, its streams
//! depayloaded (never decoded) into the muxer whose bytes the segmenter cuts like any other.
//!
//! kiroku answers an offer without trickle ICE: it gathers its candidates on the configured
//! addresses only (`[whip] ice_addresses`), waits until gathering completes and puts them all
//! in the answer. The session's streams are chosen from the offer (`pipelines/webrtc/whip.toml`)
//! and their branches exist before any media flows, so the muxer knows every track before it
//! writes the header. While the session runs, [`Session::tick`] asks the sender for keyframes,
//! releases a negotiated stream that never carries media, and notices a peer that went away.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_sdp as gst_sdp;
use gstreamer_webrtc as gst_webrtc;
use serde::Deserialize;

use super::SegmentError;
use super::profile::PipelineSource;
use super::webrtc::{self, IceSettings};
use crate::vocab::Codec;

/// Where the WHIP description lives, relative to a pipelines folder.
const WHIP_FILE: &str = "webrtc/whip.toml";
const BUILTIN_WHIP: &str = include_str!("../../pipelines/webrtc/whip.toml");
/// A negotiated stream that has carried no media this long after the session's first
/// stream did is released from the muxer, which would otherwise wait for it for ever.
const SILENT_STREAM_GRACE: Duration = Duration::from_secs(3);
/// No media at all for this long: the peer is gone (a closed tab sends no BYE).
const IDLE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct VideoCodec {
    encoding: String,
    profile: String,
    depay: String,
    mux: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AudioCodec {
    encoding: String,
    depay: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AudioOnly {
    profile: String,
    mux: String,
}

/// `pipelines/webrtc/whip.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhipDescription {
    #[allow(dead_code)] // documentation for operators
    description: String,
    latency_ms: u32,
    queue: String,
    video: Vec<VideoCodec>,
    audio: Vec<AudioCodec>,
    audio_only: AudioOnly,
}

impl WhipDescription {
    /// Reads and checks the description (every branch parses as GStreamer), naming the file
    /// in errors, so a broken `pipelines_dir` is refused when kiroku opens.
    pub fn load(source: &PipelineSource) -> Result<WhipDescription, SegmentError> {
        super::init_gstreamer()?;
        let (file, text) = match source {
            PipelineSource::Builtin => (
                format!("built-in pipelines/{WHIP_FILE}"),
                BUILTIN_WHIP.to_string(),
            ),
            PipelineSource::Dir(dir) => {
                let path = dir.join(WHIP_FILE);
                let text = std::fs::read_to_string(&path).map_err(|e| SegmentError::Profile {
                    file: path.display().to_string(),
                    why: e.to_string(),
                })?;
                (path.display().to_string(), text)
            }
        };
        let bad = |why: String| SegmentError::Profile {
            file: file.clone(),
            why,
        };
        let d: WhipDescription = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let branches = d
            .video
            .iter()
            .flat_map(|v| [&v.depay, &v.mux])
            .chain(d.audio.iter().map(|a| &a.depay))
            .chain([&d.queue, &d.audio_only.mux]);
        for b in branches {
            gst::parse::bin_from_description(b, true).map_err(|e| bad(format!("{b}: {e}")))?;
        }
        if d.video.is_empty() && d.audio.is_empty() {
            return Err(bad("no codec listed under [[video]] or [[audio]]".into()));
        }
        Ok(d)
    }

    /// The ingest profiles recordings of this description are stored under.
    pub fn profiles(&self) -> impl Iterator<Item = &str> {
        self.video
            .iter()
            .map(|v| v.profile.as_str())
            .chain([self.audio_only.profile.as_str()])
    }

    fn allowed(&self) -> String {
        self.video
            .iter()
            .map(|v| v.encoding.as_str())
            .chain(self.audio.iter().map(|a| a.encoding.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One media line of the offer that kiroku records.
#[derive(Debug, Clone)]
struct Accepted {
    mid: String,
    video: bool,
    encoding: String,
    /// The offer's payloads of that encoding, as webrtcbin's codec preferences.
    caps: gst::Caps,
    depay: String,
}

/// What an offer asks for, and what kiroku answers with.
#[derive(Debug, Clone)]
struct Plan {
    accepted: Vec<Accepted>,
    profile: String,
    mux: String,
}

/// The answer to an offer and what the recording will be.
#[derive(Debug, Clone)]
pub struct Answer {
    pub sdp: String,
    /// The ingest profile the recording is stored under (`webm`, `matroska`).
    pub profile: String,
}

/// Drops the remote candidates a loopback-only agent could not reach, so no check or media
/// ever goes anywhere but loopback.
fn loopback_candidates_only(offer: &str) -> String {
    offer
        .lines()
        .filter(|line| {
            let Some(rest) = line.strip_prefix("a=candidate:") else {
                return true;
            };
            // foundation component transport priority address port typ ...
            rest.split_whitespace()
                .nth(4)
                .and_then(|a| a.parse::<IpAddr>().ok())
                .is_some_and(|a| a.is_loopback())
        })
        .map(|l| format!("{l}\r\n"))
        .collect()
}

/// Chooses, for each media line of `offer`, the first payload (in the offer's order, the
/// browser's preference) whose encoding the description lists.
fn plan(offer: &gst_sdp::SDPMessageRef, d: &WhipDescription) -> Result<Plan, SegmentError> {
    // GStreamer's SDP parser takes nearly any text; an offer names its version and media.
    if offer.version() != Some("0") || offer.medias_len() == 0 {
        return Err(SegmentError::BadOffer(
            "not an SDP offer with media lines (v=0, m=…)".into(),
        ));
    }
    let mut accepted: Vec<Accepted> = Vec::new();
    let mut offered = Vec::new();
    let mut video_codec: Option<&VideoCodec> = None;
    for (i, media) in offer.medias().enumerate() {
        let kind = media.media().unwrap_or("");
        let video = match kind {
            "video" => true,
            "audio" => false,
            _ => continue,
        };
        // Port 0 rejects a line, unless it is `bundle-only` (RFC 8843: a max-bundle offerer
        // such as webrtcbin puts every line but the first on the bundle's transport that way).
        let bundle_only = (0..media.attributes_len())
            .filter_map(|i| media.attribute(i))
            .any(|a| a.key() == "bundle-only");
        if media.port() == 0 && !bundle_only {
            continue;
        }
        let mid = media
            .attribute_val("mid")
            .map(str::to_owned)
            .unwrap_or_else(|| i.to_string());
        let mut chosen: Option<(String, String)> = None;
        let mut caps = gst::Caps::new_empty();
        for format in media.formats() {
            let Ok(pt) = format.parse::<i32>() else {
                continue;
            };
            let Some(c) = media.caps_from_media(pt) else {
                continue;
            };
            let Some(s) = c.structure(0) else { continue };
            let Ok(encoding) = s.get::<String>("encoding-name") else {
                continue;
            };
            let encoding = encoding.to_ascii_uppercase();
            offered.push(encoding.clone());
            // Only H.264 in packetization mode 1 (non-interleaved) is depayloadable here.
            if encoding == "H264"
                && s.get::<String>("packetization-mode").ok().as_deref() != Some("1")
            {
                continue;
            }
            let depay = if video {
                d.video
                    .iter()
                    .find(|v| v.encoding == encoding)
                    .map(|v| v.depay.clone())
            } else {
                d.audio
                    .iter()
                    .find(|a| a.encoding == encoding)
                    .map(|a| a.depay.clone())
            };
            let Some(depay) = depay else { continue };
            match &chosen {
                None => chosen = Some((encoding.clone(), depay)),
                Some((first, _)) if *first != encoding => continue,
                Some(_) => {}
            }
            let mut s = s.to_owned();
            s.set_name("application/x-rtp");
            s.set("media", kind);
            caps.get_mut()
                .expect("caps built here are not shared")
                .append_structure(s);
        }
        let Some((encoding, depay)) = chosen else {
            continue;
        };
        if accepted.iter().any(|a| a.video == video) {
            return Err(SegmentError::BadOffer(format!(
                "the offer has more than one {kind} line; kiroku records one audio and one video stream"
            )));
        }
        if video {
            video_codec = d.video.iter().find(|v| v.encoding == encoding);
        }
        accepted.push(Accepted {
            mid,
            video,
            encoding,
            caps,
            depay,
        });
    }
    if accepted.is_empty() {
        offered.dedup();
        return Err(SegmentError::CodecNotAllowed {
            codec: if offered.is_empty() {
                "no audio or video".into()
            } else {
                offered.join(", ")
            },
            profile: "whip".into(),
            allowed: d.allowed(),
        });
    }
    let (profile, mux) = match video_codec {
        Some(v) => (v.profile.clone(), v.mux.clone()),
        None => (d.audio_only.profile.clone(), d.audio_only.mux.clone()),
    };
    Ok(Plan {
        accepted,
        profile,
        mux,
    })
}

/// One accepted stream's branch: depayloader and queue, linked to a muxer pad from the start.
struct Branch {
    mid: String,
    video: bool,
    bin: gst::Bin,
    /// webrtcbin's pad once the stream's first packets came.
    source: Option<gst::Pad>,
    /// Ended for carrying no media (see [`Session::release_silent_streams`]).
    silenced: bool,
}

/// A running WHIP session: what the segmenter and the capture's feeding side control.
pub struct Session {
    codecs: Vec<Codec>,
    branches: Mutex<Vec<Branch>>,
    started: Instant,
    first_media: Mutex<Option<Instant>>,
    last_media: Mutex<Instant>,
    keyframe_due: Mutex<Option<Instant>>,
    keyframe_every: Duration,
    keyframe_requests: AtomicU32,
    closing: AtomicBool,
    peer_gone: AtomicBool,
}

impl Session {
    /// Ends the recording where it stands: nothing more from the peer, end-of-stream into
    /// every branch, so the muxer finishes and the segmenter flushes its last segment.
    pub fn finish(&self) {
        if self.closing.swap(true, Ordering::SeqCst) {
            return;
        }
        for b in self
            .branches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            if let Some(pad) = &b.source {
                pad.add_probe(
                    gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
                    |_, _| gst::PadProbeReturn::Drop,
                );
            }
            if let Some(sink) = b.bin.static_pad("sink") {
                sink.send_event(gst::event::Eos::new());
            }
        }
    }

    /// The peer closed its connection (RTCP BYE) or sent nothing for a while.
    pub fn peer_gone(&self) -> bool {
        self.peer_gone.load(Ordering::SeqCst)
    }

    /// The codecs answered with, video first.
    pub fn codecs(&self) -> Vec<Codec> {
        self.codecs.clone()
    }

    /// How many keyframes kiroku asked the sender for.
    pub fn keyframe_requests(&self) -> u32 {
        self.keyframe_requests.load(Ordering::SeqCst)
    }

    /// Housekeeping, called every few tens of milliseconds by the segmenter's thread.
    pub fn tick(&self) {
        if self.closing.load(Ordering::SeqCst) {
            return;
        }
        let now = Instant::now();
        let first = *self.first_media.lock().unwrap_or_else(|p| p.into_inner());
        let last = *self.last_media.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(first) = first {
            if now.duration_since(first) >= SILENT_STREAM_GRACE {
                self.release_silent_streams();
            }
            if now.duration_since(last) >= IDLE {
                self.peer_gone.store(true, Ordering::SeqCst);
            }
        } else if now.duration_since(self.started) >= IDLE + SILENT_STREAM_GRACE {
            // Negotiated, and not one packet since: ICE or DTLS never completed.
            self.peer_gone.store(true, Ordering::SeqCst);
        }
        let mut due = self.keyframe_due.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = *due
            && now >= at
        {
            self.request_keyframe();
            *due = Some(now + self.keyframe_every);
        }
    }

    /// Asks the sender for a keyframe: an upstream force-key-unit event into webrtcbin, which
    /// its RTP session sends as RTCP PLI.
    fn request_keyframe(&self) {
        let branches = self.branches.lock().unwrap_or_else(|p| p.into_inner());
        for b in branches.iter().filter(|b| b.video && b.source.is_some()) {
            let n = self.keyframe_requests.fetch_add(1, Ordering::SeqCst);
            let event = gst::event::CustomUpstream::new(
                gst::Structure::builder("GstForceKeyUnit")
                    .field("all-headers", true)
                    .field("count", n)
                    .build(),
            );
            if let Some(sink) = b.bin.static_pad("sink") {
                // A sink pad pushes an upstream event to its peer, webrtcbin's pad.
                sink.push_event(event);
            }
        }
    }

    /// Ends each negotiated stream that never carried media, so the muxer, which waits for
    /// every stream before it writes its header, records what does come. (End-of-stream
    /// into the branch rather than releasing the muxer's pad, which raced with the muxer.)
    fn release_silent_streams(&self) {
        let mut branches = self.branches.lock().unwrap_or_else(|p| p.into_inner());
        for b in branches
            .iter_mut()
            .filter(|b| b.source.is_none() && !b.silenced)
        {
            tracing::info!(mid = %b.mid, "a negotiated stream carried no media; ended");
            if let Some(sink) = b.bin.static_pad("sink") {
                sink.send_event(gst::event::Eos::new());
            }
            b.silenced = true;
        }
    }

    fn on_media(&self) {
        let now = Instant::now();
        *self.last_media.lock().unwrap_or_else(|p| p.into_inner()) = now;
        let mut first = self.first_media.lock().unwrap_or_else(|p| p.into_inner());
        if first.is_none() {
            *first = Some(now);
        }
    }
}

/// Whether kiroku can answer `offer`: it is SDP and offers a codec of the description.
/// Checked before an ingest token is spent, so a client can retry with another offer.
pub fn check_offer(d: &WhipDescription, offer: &str) -> Result<(), SegmentError> {
    super::init_gstreamer()?;
    if offer.trim().is_empty() {
        return Err(SegmentError::BadOffer("the offer is empty".into()));
    }
    let message = gst_sdp::SDPMessage::parse_buffer(offer.as_bytes())
        .map_err(|e| SegmentError::BadOffer(format!("the offer is not SDP: {e}")))?;
    plan(&message, d).map(|_| ())
}

/// The pipeline of a negotiated session, ready for the segmenter.
pub struct Negotiated {
    pub pipeline: gst::Pipeline,
    pub sink: gstreamer_app::AppSink,
    pub session: Arc<Session>,
    pub answer: Answer,
}

/// Builds the session's pipeline for `offer`, negotiates, and returns the answer with every
/// candidate in it. Blocks for ICE gathering (milliseconds on a known address).
pub fn negotiate(
    d: &WhipDescription,
    offer: &str,
    ice: &IceSettings,
    keyframe_every: Duration,
) -> Result<Negotiated, SegmentError> {
    super::init_gstreamer()?;
    let offer = if ice.loopback_only() {
        loopback_candidates_only(offer)
    } else {
        offer.to_string()
    };
    let message = gst_sdp::SDPMessage::parse_buffer(offer.as_bytes())
        .map_err(|e| SegmentError::BadOffer(format!("the offer is not SDP: {e}")))?;
    let plan = plan(&message, d)?;
    let pipe = |e: String| SegmentError::Pipeline(e);
    let description = format!(
        "webrtcbin name=webrtc bundle-policy=max-bundle latency={latency} \
         {mux} name=mux ! appsink name=sink sync=false async=false max-buffers=0 emit-signals=false",
        latency = d.latency_ms,
        mux = plan.mux,
    );
    let pipeline = gst::parse::launch(&description)
        .map_err(|e| pipe(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| pipe("not a pipeline".into()))?;
    let by_name = |n: &str| {
        pipeline
            .by_name(n)
            .ok_or_else(|| pipe(format!("no element `{n}`")))
    };
    let webrtc = by_name("webrtc")?;
    let mux = by_name("mux")?;
    let sink = by_name("sink")?
        .downcast::<gstreamer_app::AppSink>()
        .map_err(|_| pipe("`sink` is not an appsink".into()))?;
    ice.apply(&webrtc);

    let mut branches = Vec::new();
    for a in &plan.accepted {
        let text = format!("{} ! {}", a.depay, d.queue);
        let bin = gst::parse::bin_from_description(&text, true).map_err(|e| pipe(e.to_string()))?;
        pipeline.add(&bin).map_err(|e| pipe(e.to_string()))?;
        let template = if a.video { "video_%u" } else { "audio_%u" };
        let mux_pad = mux
            .request_pad_simple(template)
            .ok_or_else(|| pipe("the muxer refused a stream".into()))?;
        bin.static_pad("src")
            .ok_or_else(|| pipe("branch without src".into()))?
            .link(&mux_pad)
            .map_err(|e| pipe(format!("{e:?}")))?;
        branches.push(Branch {
            mid: a.mid.clone(),
            video: a.video,
            bin,
            source: None,
            silenced: false,
        });
    }
    let mut codecs: Vec<Codec> = plan
        .accepted
        .iter()
        .filter_map(|a| match a.encoding.as_str() {
            "VP8" => Some(Codec::Vp8),
            "VP9" => Some(Codec::Vp9),
            "AV1" => Some(Codec::Av1),
            "H264" => Some(Codec::H264),
            "H265" => Some(Codec::H265),
            "OPUS" => Some(Codec::Opus),
            _ => None,
        })
        .collect();
    codecs.sort();
    let session = Arc::new(Session {
        codecs,
        branches: Mutex::new(branches),
        started: Instant::now(),
        first_media: Mutex::new(None),
        last_media: Mutex::new(Instant::now()),
        keyframe_due: Mutex::new(None),
        keyframe_every,
        keyframe_requests: AtomicU32::new(0),
        closing: AtomicBool::new(false),
        peer_gone: AtomicBool::new(false),
    });
    link_on_pad_added(&webrtc, &session);
    let gathered = webrtc::when_gathered(&webrtc);
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| pipe(e.to_string()))?;
    for a in &plan.accepted {
        let transceiver = webrtc.emit_by_name::<gst_webrtc::WebRTCRTPTransceiver>(
            "add-transceiver",
            &[
                &gst_webrtc::WebRTCRTPTransceiverDirection::Recvonly,
                &a.caps,
            ],
        );
        // NACK: a lost video packet is asked for again (RTX) within the jitter buffer's
        // latency, rather than costing every frame up to the next keyframe.
        transceiver.set_property("do-nack", a.video);
    }
    let offer =
        gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Offer, message);
    let refused = |what: &str| SegmentError::BadOffer(format!("webrtcbin's {what} failed"));
    webrtc::promise(&webrtc, "set-remote-description", Some(&offer))
        .ok_or_else(|| refused("set-remote-description"))?;
    let answer = webrtc::description_in(webrtc::promise(&webrtc, "create-answer", None), "answer")
        .ok_or_else(|| refused("create-answer"))?;
    webrtc::promise(&webrtc, "set-local-description", Some(&answer))
        .ok_or_else(|| refused("set-local-description"))?;
    let sdp = webrtc::local_sdp(&webrtc, &gathered)?;
    tracing::debug!(answer = %sdp, "WHIP answer");
    watch_for_bye(&webrtc, &session);
    Ok(Negotiated {
        pipeline,
        sink,
        session,
        answer: Answer {
            sdp,
            profile: plan.profile,
        },
    })
}

/// Links each of webrtcbin's new streams to the branch made for its media line.
fn link_on_pad_added(webrtc: &gst::Element, session: &Arc<Session>) {
    let weak = Arc::downgrade(session);
    webrtc.connect_pad_added(move |_, pad| {
        if pad.direction() != gst::PadDirection::Src {
            return;
        }
        let Some(session) = weak.upgrade() else {
            return;
        };
        let mid = pad
            .property::<Option<gst_webrtc::WebRTCRTPTransceiver>>("transceiver")
            .and_then(|t| t.mid())
            .map(|m| m.to_string());
        let mut branches = session.branches.lock().unwrap_or_else(|p| p.into_inner());
        let branch = branches
            .iter_mut()
            .find(|b| Some(&b.mid) == mid.as_ref() && b.source.is_none() && !b.silenced);
        let Some(branch) = branch else {
            tracing::warn!(?mid, pad = %pad.name(), caps = ?pad.current_caps(), "a stream that was not negotiated; dropped");
            drop_stream(pad);
            return;
        };
        let Some(sink) = branch.bin.static_pad("sink") else {
            return;
        };
        if let Err(e) = pad.link(&sink) {
            tracing::warn!(?mid, error = ?e, "a stream could not be linked");
            return;
        }
        let counted = Arc::downgrade(&session);
        pad.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
            move |_, _| {
                if let Some(s) = counted.upgrade() {
                    s.on_media();
                }
                gst::PadProbeReturn::Ok
            },
        );
        branch.source = Some(pad.clone());
        if branch.video {
            // The first keyframe request goes out as soon as video is linked.
            *session
                .keyframe_due
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        }
    });
}

/// Sinks a stream kiroku does not record, so webrtcbin never sees an unlinked pad (which
/// would stop the session's other streams with not-linked).
fn drop_stream(pad: &gst::Pad) {
    let Some(parent) = pad
        .parent_element()
        .and_then(|w| w.parent())
        .and_then(|p| p.downcast::<gst::Bin>().ok())
    else {
        return;
    };
    let Ok(sink) = gst::ElementFactory::make("fakesink")
        .property("async", false)
        .property("sync", false)
        .build()
    else {
        return;
    };
    if parent.add(&sink).is_ok() {
        let _ = sink.sync_state_with_parent();
        if let Some(sink_pad) = sink.static_pad("sink") {
            let _ = pad.link(&sink_pad);
        }
    }
}

/// An RTCP BYE from the peer (it closed its connection) marks the peer gone. And the RTP
/// session may send feedback often: with its defaults (64 kbit/s assumed, RTCP every 5 s),
/// NACKs and keyframe requests wait seconds, and a lost packet costs every frame up to the
/// next keyframe instead of being sent again.
fn watch_for_bye(webrtc: &gst::Element, session: &Arc<Session>) {
    let Some(rtpbin) = webrtc
        .downcast_ref::<gst::Bin>()
        .and_then(|b| b.by_name("rtpbin"))
    else {
        return;
    };
    // One RTP session: the streams are bundled.
    if let Some(rtp) = rtpbin.emit_by_name::<Option<gst::glib::Object>>("get-session", &[&0u32]) {
        rtp.set_property("bandwidth", 2_000_000f64);
        rtp.set_property("rtcp-min-interval", 100_000_000u64);
    }
    for signal in ["on-bye-ssrc", "on-bye-timeout", "on-timeout"] {
        let weak = Arc::downgrade(session);
        rtpbin.connect(signal, false, move |_| {
            if let Some(s) = weak.upgrade() {
                s.peer_gone.store(true, Ordering::SeqCst);
            }
            None
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n\
a=candidate:1 1 udp 2122260223 192.168.1.20 50000 typ host\r\n\
a=candidate:2 1 udp 2122194687 127.0.0.1 50001 typ host\r\n\
a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:0 PCMU/8000\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 102\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendonly\r\n\
a=rtpmap:96 VP8/90000\r\na=rtpmap:102 H264/90000\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n";

    fn description() -> WhipDescription {
        toml::from_str(BUILTIN_WHIP).unwrap()
    }

    fn plan_of(offer: &str) -> Result<Plan, SegmentError> {
        gst::init().unwrap();
        let m = gst_sdp::SDPMessage::parse_buffer(offer.as_bytes()).unwrap();
        plan(&m, &description())
    }

    #[test]
    fn the_browsers_first_listed_codec_that_kiroku_takes_is_recorded() {
        let p = plan_of(CHROME_OFFER).unwrap();
        let chosen: Vec<_> = p.accepted.iter().map(|a| a.encoding.as_str()).collect();
        assert_eq!(chosen, ["OPUS", "VP8"]);
        assert_eq!(p.profile, "webm");
        let h264_first = CHROME_OFFER.replace("96 102", "102 96");
        let p = plan_of(&h264_first).unwrap();
        assert_eq!(p.accepted[1].encoding, "H264");
        assert_eq!(p.profile, "matroska");
    }

    #[test]
    fn a_bundle_only_line_on_port_0_is_taken_and_a_rejected_one_is_not() {
        let bundled = CHROME_OFFER.replace(
            "m=video 9 UDP/TLS/RTP/SAVPF 96 102\r\n",
            "m=video 0 UDP/TLS/RTP/SAVPF 96 102\r\na=bundle-only\r\n",
        );
        assert_eq!(plan_of(&bundled).unwrap().accepted.len(), 2);
        let rejected = CHROME_OFFER.replace("m=video 9", "m=video 0");
        assert_eq!(plan_of(&rejected).unwrap().accepted.len(), 1);
    }

    #[test]
    fn a_voice_only_offer_is_recorded_as_webm_audio() {
        let audio_only = &CHROME_OFFER[..CHROME_OFFER.find("m=video").unwrap()];
        let p = plan_of(audio_only).unwrap();
        assert_eq!(p.accepted.len(), 1);
        assert!(!p.accepted[0].video);
        assert_eq!(p.profile, "webm");
    }

    #[test]
    fn an_offer_of_codecs_kiroku_does_not_take_is_refused_naming_them() {
        let offer = CHROME_OFFER
            .replace("opus/48000/2", "G722/8000")
            .replace("VP8/90000", "AV1/90000")
            .replace("H264/90000", "VP9/90000");
        let err = plan_of(&offer).unwrap_err();
        let SegmentError::CodecNotAllowed { codec, .. } = &err else {
            panic!("{err}")
        };
        assert!(codec.contains("AV1") && codec.contains("VP9"), "{err}");
    }

    #[test]
    fn h264_other_than_packetization_mode_1_is_not_taken() {
        let offer = CHROME_OFFER
            .replace("96 102", "102")
            .replace("packetization-mode=1", "packetization-mode=0");
        let p = plan_of(&offer).unwrap();
        assert_eq!(p.accepted.len(), 1, "only the audio is taken");
    }

    #[test]
    fn text_that_is_not_an_offer_with_media_is_a_bad_offer() {
        for text in [
            "hello",
            "",
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
        ] {
            let err = check_offer(&description(), text).unwrap_err();
            assert!(matches!(err, SegmentError::BadOffer(_)), "{text:?}: {err}");
        }
    }

    #[test]
    fn a_loopback_agent_drops_every_remote_candidate_but_loopback() {
        let kept = loopback_candidates_only(CHROME_OFFER);
        assert!(!kept.contains("192.168.1.20"));
        assert!(kept.contains("127.0.0.1 50001"));
        assert!(kept.contains("a=rtpmap:96 VP8/90000"));
    }
}
