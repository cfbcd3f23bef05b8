//! A WHIP publisher that replays a recorded WebM (VP8 + Opus) in real time over WebRTC on
//! loopback, without encoding: what `kiroku bench` measures WHIP ingest with, so the same
//! packets reach kiroku's whole path and the GStreamer-only baseline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_sdp as gst_sdp;
use gstreamer_webrtc as gst_webrtc;

use super::SegmentError;

const WAIT: Duration = Duration::from_secs(10);

/// A publishing session: offer made, waiting for the answer, then the file in real time.
pub struct Publisher {
    pipeline: gst::Pipeline,
    webrtc: gst::Element,
    src: gst_app::AppSrc,
    media: Vec<u8>,
    /// Where the file's second cluster starts: what comes before goes in at once.
    header: usize,
    sent: Arc<AtomicBool>,
    connected: Arc<AtomicBool>,
}

fn failed(what: &str) -> SegmentError {
    SegmentError::Pipeline(format!("bench publisher: {what}"))
}

impl Publisher {
    /// Builds the publisher for `media` and makes its offer (ICE on 127.0.0.1, gathered).
    pub fn offer(media: &[u8]) -> Result<(Publisher, String), SegmentError> {
        super::init_gstreamer()?;
        let description = "webrtcbin name=webrtc bundle-policy=max-bundle \
            appsrc name=src format=bytes is-live=false ! matroskademux name=d \
            d.video_0 ! queue ! clocksync name=vsync ! rtpvp8pay pt=96 \
              ! application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000 ! webrtc. \
            d.audio_0 ! queue ! clocksync name=async ! rtpopuspay pt=111 name=apay \
              ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000 ! webrtc.";
        let pipeline = gst::parse::launch(description)
            .map_err(|e| failed(&e.to_string()))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| failed("not a pipeline"))?;
        let webrtc = pipeline
            .by_name("webrtc")
            .ok_or_else(|| failed("no webrtcbin"))?;
        let src = pipeline
            .by_name("src")
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            .ok_or_else(|| failed("no appsrc"))?;
        let agent = webrtc.property::<gst::glib::Object>("ice-agent");
        agent.emit_by_name::<bool>("add-local-ip-address", &[&"127.0.0.1"]);
        agent.set_property("ice-tcp", false);
        let sent = Arc::new(AtomicBool::new(false));
        // The file is sent once the audio payloader sees its end.
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
        let (gathered_tx, gathered) = mpsc::channel::<()>();
        let gathered_tx = Mutex::new(gathered_tx);
        webrtc.connect_notify(Some("ice-gathering-state"), move |w, _| {
            if w.property::<gst_webrtc::WebRTCICEGatheringState>("ice-gathering-state")
                == gst_webrtc::WebRTCICEGatheringState::Complete
            {
                let _ = gathered_tx
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .send(());
            }
        });
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| failed(&e.to_string()))?;
        // The streams exist only once the demuxer read the header: push it first.
        // The header and the first cluster go in before the offer, so the payloaders have
        // caps when webrtcbin writes it; what they send before the session is up is lost.
        let clusters: Vec<usize> = media
            .windows(4)
            .enumerate()
            .filter(|(_, w)| *w == [0x1F, 0x43, 0xB6, 0x75])
            .map(|(i, _)| i)
            .take(2)
            .collect();
        let header = *clusters
            .get(1)
            .ok_or_else(|| failed("the bench media needs two clusters"))?;
        let publisher = Publisher {
            pipeline,
            webrtc,
            src,
            media: media.to_vec(),
            header,
            sent,
            connected,
        };
        let offer = publisher.negotiate(&gathered)?;
        Ok((publisher, offer))
    }

    fn negotiate(&self, gathered: &mpsc::Receiver<()>) -> Result<String, SegmentError> {
        // Transceivers come from the payloaders' pads; they appear once the demuxer has the
        // file's header, so the header goes in now and the rest once the session is up.
        self.src
            .push_buffer(gst::Buffer::from_slice(self.media[..self.header].to_vec()))
            .map_err(|e| failed(&format!("{e:?}")))?;
        let deadline = std::time::Instant::now() + WAIT;
        let with_caps = || {
            self.webrtc
                .sink_pads()
                .iter()
                .filter(|p| p.current_caps().is_some())
                .count()
        };
        loop {
            let n = (0..)
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
            if n >= 2 && with_caps() >= 2 {
                break;
            }
            if std::time::Instant::now() > deadline {
                return Err(failed("the file's streams did not come"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let offer = promise(&self.webrtc, "create-offer", None)?
            .get::<gst_webrtc::WebRTCSessionDescription>("offer")
            .map_err(|_| failed("no offer"))?;
        promise(&self.webrtc, "set-local-description", Some(&offer))?;
        gathered
            .recv_timeout(WAIT)
            .map_err(|_| failed("ICE gathering did not complete"))?;
        self.webrtc
            .property::<gst_webrtc::WebRTCSessionDescription>("local-description")
            .sdp()
            .as_text()
            .map_err(|e| failed(&e.to_string()))
    }

    /// Applies kiroku's answer and sends the rest of the file, paced by its timestamps from
    /// now on.
    pub fn answer(&self, sdp: &str) -> Result<(), SegmentError> {
        let message =
            gst_sdp::SDPMessage::parse_buffer(sdp.as_bytes()).map_err(|_| failed("bad answer"))?;
        let answer =
            gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Answer, message);
        promise(&self.webrtc, "set-remote-description", Some(&answer))?;
        let deadline = std::time::Instant::now() + WAIT;
        while !self.connected.load(Ordering::SeqCst) {
            if std::time::Instant::now() > deadline {
                return Err(failed("the session did not connect"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
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
        for chunk in self.media[self.header..].chunks(64 * 1024) {
            self.src
                .push_buffer(gst::Buffer::from_slice(chunk.to_vec()))
                .map_err(|e| failed(&format!("{e:?}")))?;
        }
        let _ = self.src.end_of_stream();
        Ok(())
    }

    /// Waits until the whole file was sent, at most `within`.
    pub fn wait_until_sent(&self, within: Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        while !self.sent.load(Ordering::SeqCst) {
            if std::time::Instant::now() > deadline {
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

fn promise(
    webrtc: &gst::Element,
    action: &str,
    description: Option<&gst_webrtc::WebRTCSessionDescription>,
) -> Result<gst::Structure, SegmentError> {
    let (tx, rx) = mpsc::channel();
    let p = gst::Promise::with_change_func(move |reply| {
        let _ = tx.send(reply.ok().flatten().map(|s| s.to_owned()));
    });
    match description {
        Some(d) => webrtc.emit_by_name::<()>(action, &[d, &p]),
        None => webrtc.emit_by_name::<()>(action, &[&None::<gst::Structure>, &p]),
    }
    Ok(rx
        .recv_timeout(WAIT)
        .map_err(|_| failed(&format!("{action} did not answer")))?
        .unwrap_or_else(|| gst::Structure::new_empty("empty")))
}
