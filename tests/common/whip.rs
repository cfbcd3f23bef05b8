//! A WHIP client that is not a browser: GStreamer's own webrtcbin publishing a test pattern
//! (VP8) and a tone (Opus), with packets dropped on the way in if asked, and the HTTP side
//! of RFC 9725 (POST the offer, apply the answer, DELETE the session) done here.

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_sdp as gst_sdp;
use gstreamer_webrtc as gst_webrtc;

/// A publishing session.
pub struct WhipClient {
    pipeline: gst::Pipeline,
    /// The session's absolute URL (from the answer's `Location`).
    pub location: String,
    /// The SDP answer kiroku gave.
    pub answer: String,
    token: String,
}

/// What kiroku said to an offer that it did not answer with 201.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub body: String,
}

/// The test pattern and tone, RTP-payloaded, through `identity drop-probability=` the
/// video's and the audio's loss.
fn description(video_loss: f64, audio_loss: f64) -> String {
    format!(
        "webrtcbin name=webrtc bundle-policy=max-bundle \
         videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 \
           ! videoconvert ! queue ! vp8enc deadline=1 cpu-used=8 target-bitrate=300000 \
             keyframe-max-dist=100000 error-resilient=partitions \
           ! rtpvp8pay pt=96 picture-id-mode=15-bit ! identity drop-probability={video_loss} \
           ! application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000 ! webrtc. \
         audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample ! queue \
           ! opusenc ! rtpopuspay pt=111 ! identity drop-probability={audio_loss} \
           ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000 ! webrtc."
    )
}

/// Starts publishing to `url` (`…/v1/interviews/{id}/whip`) with `token`, losing `loss` of the
/// RTP packets of each stream before they are sent. Blocks until kiroku answered.
pub fn publish(url: &str, token: &str, loss: f64) -> Result<WhipClient, Refused> {
    publish_losing(url, token, loss, loss)
}

/// As [`publish`], losing `video_loss` of the video packets and `audio_loss` of the audio's
/// (1.0: a stream negotiated that never carries media).
pub fn publish_losing(
    url: &str,
    token: &str,
    video_loss: f64,
    audio_loss: f64,
) -> Result<WhipClient, Refused> {
    gst::init().unwrap();
    let pipeline = gst::parse::launch(&description(video_loss, audio_loss))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let webrtc = pipeline.by_name("webrtc").unwrap();
    // The client gathers on loopback only, as the server does in tests.
    let agent = webrtc.property::<gst::glib::Object>("ice-agent");
    agent.emit_by_name::<bool>("add-local-ip-address", &[&"127.0.0.1"]);
    agent.set_property("ice-tcp", false);
    let (gathered_tx, gathered) = mpsc::channel::<()>();
    let gathered_tx = Mutex::new(gathered_tx);
    webrtc.connect_notify(Some("ice-gathering-state"), move |w, _| {
        if w.property::<gst_webrtc::WebRTCICEGatheringState>("ice-gathering-state")
            == gst_webrtc::WebRTCICEGatheringState::Complete
        {
            let _ = gathered_tx.lock().unwrap().send(());
        }
    });
    let (needed_tx, needed) = mpsc::channel::<()>();
    let needed_tx = Arc::new(Mutex::new(needed_tx));
    webrtc.connect("on-negotiation-needed", false, move |_| {
        let _ = needed_tx.lock().unwrap().send(());
        None
    });
    pipeline.set_state(gst::State::Playing).unwrap();
    needed
        .recv_timeout(Duration::from_secs(10))
        .expect("webrtcbin asks to negotiate");
    for i in 0i32.. {
        let t = webrtc
            .emit_by_name::<Option<gst_webrtc::WebRTCRTPTransceiver>>("get-transceiver", &[&i]);
        let Some(t) = t else { break };
        t.set_property(
            "direction",
            gst_webrtc::WebRTCRTPTransceiverDirection::Sendonly,
        );
    }
    let offer = promise(&webrtc, "create-offer", None)
        .and_then(|r| r.get::<gst_webrtc::WebRTCSessionDescription>("offer").ok())
        .expect("webrtcbin makes an offer");
    promise(&webrtc, "set-local-description", Some(&offer));
    gathered
        .recv_timeout(Duration::from_secs(10))
        .expect("the client's ICE gathering completes");
    let sdp = webrtc
        .property::<gst_webrtc::WebRTCSessionDescription>("local-description")
        .sdp()
        .as_text()
        .unwrap();
    let http = reqwest::blocking::Client::new();
    let resp = http
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/sdp")
        .body(sdp)
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned);
    let body = resp.text().unwrap();
    if status != 201 {
        let _ = pipeline.set_state(gst::State::Null);
        return Err(Refused { status, body });
    }
    let location = url::Url::parse(url)
        .unwrap()
        .join(&location.expect("a 201 carries Location"))
        .unwrap()
        .to_string();
    let message = gst_sdp::SDPMessage::parse_buffer(body.as_bytes()).unwrap();
    let answer =
        gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Answer, message);
    promise(&webrtc, "set-remote-description", Some(&answer));
    Ok(WhipClient {
        pipeline,
        location,
        answer: body,
        token: token.to_string(),
    })
}

/// Emits `action` with `description` (or no options, for `create-offer`) and waits for its
/// promise; returns the reply.
fn promise(
    webrtc: &gst::Element,
    action: &str,
    description: Option<&gst_webrtc::WebRTCSessionDescription>,
) -> Option<gst::Structure> {
    let (tx, rx) = mpsc::channel();
    let p = gst::Promise::with_change_func(move |reply| {
        let _ = tx.send(reply.ok().flatten().map(|s| s.to_owned()));
    });
    match description {
        Some(d) => webrtc.emit_by_name::<()>(action, &[d, &p]),
        None => webrtc.emit_by_name::<()>(action, &[&None::<gst::Structure>, &p]),
    }
    rx.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{action} answers"))
}

impl WhipClient {
    /// `DELETE` on the session with `token`: the status.
    pub fn delete_with(&self, token: &str) -> u16 {
        reqwest::blocking::Client::new()
            .delete(&self.location)
            .bearer_auth(token)
            .send()
            .unwrap()
            .status()
            .as_u16()
    }

    /// Ends the session as a WHIP client should: `DELETE`, then stop sending.
    pub fn finish(self) -> u16 {
        let status = self.delete_with(&self.token.clone());
        let _ = self.pipeline.set_state(gst::State::Null);
        status
    }

    /// Stops sending without a `DELETE` (a closed tab, a lost network).
    pub fn vanish(self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

impl Drop for WhipClient {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
