//! What both ends of a WHIP session do with webrtcbin alike: gather ICE candidates only where
//! told, wait for gathering to complete, and wait on the promises of its signalling actions.

use std::net::IpAddr;
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_webrtc as gst_webrtc;

use super::SegmentError;

/// How long one signalling step (a promise, ICE gathering) may take.
pub(super) const NEGOTIATION: Duration = Duration::from_secs(10);

/// Where an ICE agent gathers candidates and which ports it uses.
#[derive(Debug, Clone, Default)]
pub struct IceSettings {
    /// The local addresses candidates are gathered on; empty: every interface.
    pub addresses: Vec<IpAddr>,
    /// The UDP ports (inclusive) the agent binds; `None`: any.
    pub ports: Option<(u16, u16)>,
}

impl IceSettings {
    /// Loopback only, for a publisher and a server on one machine.
    pub fn loopback() -> IceSettings {
        IceSettings {
            addresses: vec![IpAddr::from([127, 0, 0, 1])],
            ports: None,
        }
    }

    /// Only loopback addresses: a remote candidate elsewhere cannot be reached from them.
    pub(super) fn loopback_only(&self) -> bool {
        !self.addresses.is_empty() && self.addresses.iter().all(|a| a.is_loopback())
    }

    /// Sets webrtcbin's ICE agent to gather on these addresses and ports only, over UDP.
    pub(super) fn apply(&self, webrtc: &gst::Element) {
        let agent = webrtc.property::<gst::glib::Object>("ice-agent");
        for address in &self.addresses {
            agent.emit_by_name::<bool>("add-local-ip-address", &[&address.to_string()]);
        }
        agent.set_property("ice-tcp", false);
        if let Some((min, max)) = self.ports {
            agent.set_property("min-rtp-port", min as u32);
            agent.set_property("max-rtp-port", max as u32);
        }
        // libnice would otherwise look for UPnP gateways on every interface (multicast
        // SSDP) and hold gathering back until that times out.
        let nice = agent.property::<gst::glib::Object>("agent");
        if nice.find_property("upnp").is_some() {
            nice.set_property("upnp", false);
        }
    }
}

/// A receiver that gets one message when webrtcbin's ICE gathering completes.
pub(super) fn when_gathered(webrtc: &gst::Element) -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel::<()>();
    let tx = Mutex::new(tx);
    webrtc.connect_notify(Some("ice-gathering-state"), move |w, _| {
        if w.property::<gst_webrtc::WebRTCICEGatheringState>("ice-gathering-state")
            == gst_webrtc::WebRTCICEGatheringState::Complete
        {
            let _ = tx.lock().unwrap_or_else(|p| p.into_inner()).send(());
        }
    });
    rx
}

/// Emits a signalling action (`create-offer`, `set-remote-description`, …) with a
/// description, or with no options when there is none, and waits for its promise. `None`
/// when webrtcbin did not answer in time or answered with an error.
pub(super) fn promise(
    webrtc: &gst::Element,
    action: &str,
    description: Option<&gst_webrtc::WebRTCSessionDescription>,
) -> Option<gst::Structure> {
    let (tx, rx) = mpsc::channel();
    let p = gst::Promise::with_change_func(move |reply| {
        let _ = tx.send(reply.ok().map(|s| {
            s.map(|s| s.to_owned())
                .unwrap_or_else(|| gst::Structure::new_empty("done"))
        }));
    });
    match description {
        Some(d) => webrtc.emit_by_name::<()>(action, &[d, &p]),
        None => webrtc.emit_by_name::<()>(action, &[&None::<gst::Structure>, &p]),
    }
    let reply = rx.recv_timeout(NEGOTIATION).ok().flatten()?;
    // webrtcbin answers a failed action with an `error` field.
    (!reply.has_field("error")).then_some(reply)
}

/// The description in a promise's reply (`offer`, `answer`).
pub(super) fn description_in(
    reply: Option<gst::Structure>,
    field: &str,
) -> Option<gst_webrtc::WebRTCSessionDescription> {
    reply?
        .get::<gst_webrtc::WebRTCSessionDescription>(field)
        .ok()
}

/// Waits for gathering, then webrtcbin's local description as SDP text.
pub(super) fn local_sdp(
    webrtc: &gst::Element,
    gathered: &mpsc::Receiver<()>,
) -> Result<String, SegmentError> {
    let failed = |why: &str| SegmentError::Pipeline(why.to_string());
    gathered
        .recv_timeout(NEGOTIATION)
        .map_err(|_| failed("ICE gathering did not complete"))?;
    webrtc
        .property::<Option<gst_webrtc::WebRTCSessionDescription>>("local-description")
        .ok_or_else(|| failed("no local description"))?
        .sdp()
        .as_text()
        .map_err(|e| failed(&e.to_string()))
}
