//! A real headless Chromium publishing over WHIP: a page served on its own loopback origin
//! (so kiroku's CORS is exercised as a front-end's would be) that takes the fake camera and
//! microphone, publishes for a while, ends with DELETE and reports back what happened.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use serde_json::Value;

/// The publishing page: `?whip=URL&token=T&seconds=N`.
const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8"><title>kiroku WHIP test publisher</title>
<script>
const q = new URLSearchParams(location.search);
const report = {events: []};
const t0 = performance.now();
const note = (e) => report.events.push(((performance.now() - t0) / 1000).toFixed(3) + ' ' + e);
async function main() {
  const stream = await navigator.mediaDevices.getUserMedia(
      {audio: true, video: {width: 320, height: 240, frameRate: 30}});
  const pc = new RTCPeerConnection({bundlePolicy: 'max-bundle', iceServers: []});
  pc.onconnectionstatechange = () => {
    note('pc ' + pc.connectionState);
    if (pc.connectionState === 'connected' && report.connected_ms === undefined)
      report.connected_ms = performance.now() - t0;
  };
  for (const track of stream.getTracks())
    pc.addTransceiver(track, {direction: 'sendonly', streams: [stream]});
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise(res => {
    if (pc.iceGatheringState === 'complete') return res();
    const t = setTimeout(res, 3000);
    pc.onicegatheringstatechange = () => {
      if (pc.iceGatheringState === 'complete') { clearTimeout(t); res(); }
    };
  });
  const r = await fetch(q.get('whip'), {method: 'POST', body: pc.localDescription.sdp,
      headers: {'Content-Type': 'application/sdp', 'Authorization': 'Bearer ' + q.get('token')}});
  report.post_status = r.status;
  report.location = r.headers.get('Location');
  const answer = await r.text();
  if (r.status !== 201) { report.answer = answer; throw new Error('POST ' + r.status); }
  report.answer = answer;
  await pc.setRemoteDescription({type: 'answer', sdp: answer});
  while (report.connected_ms === undefined && performance.now() - t0 < 15000)
    await new Promise(res => setTimeout(res, 20));
  await new Promise(res => setTimeout(res, +q.get('seconds') * 1000));
  report.deleted_ms = performance.now() - t0;
  const d = await fetch(new URL(report.location, q.get('whip')), {method: 'DELETE',
      headers: {'Authorization': 'Bearer ' + q.get('token')}});
  report.delete_status = d.status;
  const stats = await pc.getStats();
  stats.forEach(s => {
    if (s.type === 'outbound-rtp')
      report[s.kind + '_packets_sent'] = s.packetsSent;
    if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
      const remote = stats.get(s.remoteCandidateId);
      report.remote_address = remote && (remote.address || remote.ip);
    }
  });
  pc.close();
}
main().catch(e => { report.error = String(e && e.stack || e); })
  .finally(() => fetch('/report', {method: 'POST', body: JSON.stringify(report)}));
</script>"#;

/// The page's server: its origin, and the report the page posts back.
pub struct PageServer {
    pub origin: String,
    report: Arc<Mutex<Option<Value>>>,
}

impl PageServer {
    /// Serves the page on a free loopback port.
    pub async fn start() -> PageServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let report: Arc<Mutex<Option<Value>>> = Arc::default();
        let got = report.clone();
        let router = Router::new()
            .route("/", get(|| async { axum::response::Html(PAGE) }))
            .route(
                "/report",
                post(move |body: String| async move {
                    *got.lock().unwrap() = Some(serde_json::from_str(&body).unwrap_or(Value::Null));
                }),
            );
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        PageServer { origin, report }
    }

    /// The page's report, once it posted it.
    pub fn report(&self) -> Option<Value> {
        self.report.lock().unwrap().clone()
    }
}

/// A headless Chromium showing one page; killed when dropped.
pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Opens `url` in Debian's Chromium with fake media devices, loopback WebRTC allowed.
    /// Fails loudly when Chromium is not installed (`make test` installs it).
    pub fn open(url: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                "--allow-loopback-in-peer-connection",
                "--autoplay-policy=no-user-gesture-required",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium must be installed for the WHIP browser test (make test installs it)");
        Browser {
            child,
            _profile: profile,
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for the page's report, at most `within`.
pub async fn wait_for_report(page: &PageServer, within: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(r) = page.report() {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the page did not report within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
