//! A WHIP publisher on loopback: what `kiroku bench` measures WHIP ingest with (a recorded
//! WebM replayed in real time, without encoding, so the same packets reach kiroku's whole
//! path and the GStreamer-only baseline) and what the tests publish with when the client is
//! not a browser (a live test pattern and tone, VP8 or H.264, packets dropped on request).
//! The HTTP side of WHIP is the caller's: it posts [`Publisher::offer`]'s SDP and hands the
//! answer to [`Publisher::answer`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_sdp as gst_sdp;
use gstreamer_webrtc as gst_webrtc;

use super::SegmentError;
use super::webrtc::{self, IceSettings, NEGOTIATION};

/// What a publisher sends.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A recorded WebM (VP8 + Opus), replayed in real time from the answer on.
    Replay(&'a [u8]),
    /// A live 320x240 test pattern (VP8, or H.264 when `h264`) and a 440 Hz tone (Opus), each
    /// losing the given share of its RTP packets before they are sent.
    TestPattern {
        h264: bool,
        video_loss: f64,
        audio_loss: f64,
    },
}

/// A publishing session: offer made, waiting for the answer, then the media.
pub struct Publisher {
    pipeline: gst::Pipeline,
    webrtc: gst::Element,
    /// The replayed file's remainder and where it goes in, for [`Source::Replay`].
    replay: Option<(gst_app::AppSrc, Vec<u8>)>,
    sent: Arc<AtomicBool>,
    connected: Arc<AtomicBool>,
}

fn failed(what: &str) -> SegmentError {
    SegmentError::Pipeline(format!("WHIP publisher: {what}"))
}

const AUDIO_RTP: &str =
    "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000";

fn description(source: &Source<'_>) -> String {
    match source {
        Source::Replay(_) => format!(
            "webrtcbin name=webrtc bundle-policy=max-bundle \
             appsrc name=src format=bytes is-live=false ! matroskademux name=d \
             d.video_0 ! queue ! clocksync name=vsync ! rtpvp8pay pt=96 \
               ! application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000 ! webrtc. \
             d.audio_0 ! queue ! clocksync name=async ! rtpopuspay pt=111 name=apay \
               ! {AUDIO_RTP} ! webrtc."
        ),
        Source::TestPattern {
            h264,
            video_loss,
            audio_loss,
        } => {
            let video = if *h264 {
                "openh264enc gop-size=100000 bitrate=300000 ! h264parse \
                 ! rtph264pay pt=102 config-interval=-1 aggregate-mode=zero-latency"
                    .to_string()
                    + &format!(" ! identity drop-probability={video_loss} ")
                    + "! application/x-rtp,media=video,encoding-name=H264,payload=102,\
                       clock-rate=90000,packetization-mode=(string)1,profile-level-id=(string)42c01e"
            } else {
                format!(
                    "vp8enc deadline=1 cpu-used=8 target-bitrate=300000 keyframe-max-dist=100000 \
                     error-resilient=partitions ! rtpvp8pay pt=96 picture-id-mode=15-bit \
                     ! identity drop-probability={video_loss} \
                     ! application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000"
                )
            };
            format!(
                "webrtcbin name=webrtc bundle-policy=max-bundle \
                 videotestsrc is-live=true pattern=ball \
                   ! video/x-raw,width=320,height=240,framerate=30/1 ! videoconvert ! queue \
                   ! {video} ! webrtc. \
                 audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample \
                   ! queue ! opusenc ! rtpopuspay pt=111 name=apay \
                   ! identity drop-probability={audio_loss} ! {AUDIO_RTP} ! webrtc."
            )
        }
    }
}

impl Publisher {
    /// Builds the publisher and makes its offer (ICE on 127.0.0.1, every candidate in it).
    pub fn offer(source: Source<'_>) -> Result<(Publisher, String), SegmentError> {
        super::init_gstreamer()?;
        let pipeline = gst::parse::launch(&description(&source))
            .map_err(|e| failed(&e.to_string()))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| failed("not a pipeline"))?;
        let webrtc = pipeline
            .by_name("webrtc")
            .ok_or_else(|| failed("no webrtcbin"))?;
        IceSettings::loopback().apply(&webrtc);
        let sent = Arc::new(AtomicBool::new(false));
        // Everything is sent once the audio payloader sees the end.
        if let Some(pad) = pipeline.by_name("apay").and_then(|p| p.static_pad("sink")) {
            let sent = sent.clone();
            pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
                if let Some(gst::PadProbeData::Event(e)) = &info.data
                    && e.type_() == gst::EventType::Eos
                {
                    sent.store(true, Ordering::SeqCst);
                }
                gst::PadProbeReturn::Ok
            });
        }
        let connected = Arc::new(AtomicBool::new(false));
        let up = connected.clone();
        webrtc.connect_notify(Some("connection-state"), move |w, _| {
            if w.property::<gst_webrtc::WebRTCPeerConnectionState>("connection-state")
                == gst_webrtc::WebRTCPeerConnectionState::Connected
            {
                up.store(true, Ordering::SeqCst);
            }
        });
        let gathered = webrtc::when_gathered(&webrtc);
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| failed(&e.to_string()))?;
        let replay = match source {
            Source::Replay(media) => {
                let src = pipeline
                    .by_name("src")
                    .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
                    .ok_or_else(|| failed("no appsrc"))?;
                // The header and the first cluster go in before the offer, so the payloaders
                // have caps when webrtcbin writes it; what they send before the session is up
                // is lost.
                let second_cluster = media
                    .windows(4)
                    .enumerate()
                    .filter(|(_, w)| *w == [0x1F, 0x43, 0xB6, 0x75])
                    .map(|(i, _)| i)
                    .nth(1)
                    .ok_or_else(|| failed("the replayed media needs two clusters"))?;
                src.push_buffer(gst::Buffer::from_slice(media[..second_cluster].to_vec()))
                    .map_err(|e| failed(&format!("{e:?}")))?;
                Some((src, media[second_cluster..].to_vec()))
            }
            Source::TestPattern { .. } => None,
        };
        let publisher = Publisher {
            pipeline,
            webrtc,
            replay,
            sent,
            connected,
        };
        publisher.wait_for_streams()?;
        let offer = webrtc::description_in(
            webrtc::promise(&publisher.webrtc, "create-offer", None),
            "offer",
        )
        .ok_or_else(|| failed("no offer"))?;
        webrtc::promise(&publisher.webrtc, "set-local-description", Some(&offer))
            .ok_or_else(|| failed("set-local-description failed"))?;
        let sdp = webrtc::local_sdp(&publisher.webrtc, &gathered)?;
        Ok((publisher, sdp))
    }

    /// Waits until both streams have a transceiver (made send-only) and caps, which the offer
    /// is written from.
    fn wait_for_streams(&self) -> Result<(), SegmentError> {
        let deadline = Instant::now() + NEGOTIATION;
        loop {
            let transceivers = (0..)
                .map_while(|i: i32| {
                    self.webrtc
                        .emit_by_name::<Option<gst_webrtc::WebRTCRTPTransceiver>>(
                            "get-transceiver",
                            &[&i],
                        )
                })
                .map(|t| {
                    t.set_property(
                        "direction",
                        gst_webrtc::WebRTCRTPTransceiverDirection::Sendonly,
                    )
                })
                .count();
            let with_caps = self
                .webrtc
                .sink_pads()
                .iter()
                .filter(|p| p.current_caps().is_some())
                .count();
            if transceivers >= 2 && with_caps >= 2 {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(failed("the streams did not come"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Applies the answer, waits for the session to connect and, for a replay, sends the rest
    /// of the file paced by its timestamps from now on.
    pub fn answer(&self, sdp: &str) -> Result<(), SegmentError> {
        let message =
            gst_sdp::SDPMessage::parse_buffer(sdp.as_bytes()).map_err(|_| failed("bad answer"))?;
        let answer =
            gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Answer, message);
        webrtc::promise(&self.webrtc, "set-remote-description", Some(&answer))
            .ok_or_else(|| failed("set-remote-description failed"))?;
        let deadline = Instant::now() + NEGOTIATION;
        while !self.connected.load(Ordering::SeqCst) {
            if Instant::now() > deadline {
                return Err(failed("the session did not connect"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let Some((src, rest)) = &self.replay else {
            return Ok(());
        };
        // The media's time starts now: earlier running time went to negotiation.
        let now = self
            .pipeline
            .current_running_time()
            .map(|t| t.nseconds() as i64)
            .unwrap_or(0);
        for name in ["vsync", "async"] {
            if let Some(sync) = self.pipeline.by_name(name) {
                sync.set_property("ts-offset", now);
            }
        }
        for chunk in rest.chunks(64 * 1024) {
            src.push_buffer(gst::Buffer::from_slice(chunk.to_vec()))
                .map_err(|e| failed(&format!("{e:?}")))?;
        }
        let _ = src.end_of_stream();
        Ok(())
    }

    /// Waits until a replayed file was sent whole, at most `within`.
    pub fn wait_until_sent(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while !self.sent.load(Ordering::SeqCst) {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
