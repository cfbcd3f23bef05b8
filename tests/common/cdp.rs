//! A real headless Chromium driven over the Chrome DevTools Protocol, for the page tests:
//! Debian's `chromium` with its fake camera and microphone fed from files, one page, real
//! mouse clicks and typing (`Input.*`), JavaScript evaluated in the page, screenshots, and
//! every console error, uncaught exception and CSP violation collected. No driver binary and
//! no DOM emulator: the protocol is a WebSocket the browser opens itself.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

/// What the page said went wrong: console errors, exceptions, CSP violations.
pub type Problems = Arc<Mutex<Vec<String>>>;

#[derive(Default)]
struct Inbox {
    replies: std::collections::HashMap<u64, Value>,
    loads: u64,
}

/// One headless Chromium with one page.
pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    out: mpsc::UnboundedSender<String>,
    inbox: Arc<Mutex<Inbox>>,
    notify: Arc<Notify>,
    next: std::sync::atomic::AtomicU64,
    pub problems: Problems,
}

/// The fake devices' media: a moving test picture and tone bursts with pauses (speech and
/// silence for the analysis), made with GStreamer and hound in `dir`.
pub fn fake_media(dir: &Path) -> (PathBuf, PathBuf) {
    let video = dir.join("camera.y4m");
    let status = Command::new("gst-launch-1.0")
        .args(["-q", "videotestsrc", "num-buffers=45", "pattern=ball", "!"])
        .args([
            "video/x-raw,width=320,height=240,framerate=15/1,format=I420",
            "!",
        ])
        .args(["y4menc", "!", "filesink"])
        .arg(format!("location={}", video.display()))
        .status()
        .expect("gst-launch-1.0 runs (gstreamer1.0-tools)");
    assert!(status.success(), "the fake camera file was not made");
    let audio = dir.join("microphone.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&audio, spec).unwrap();
    for (tone_s, gap_s) in [(1.2, 0.8), (1.6, 0.6), (0.9, 1.0)] {
        for i in 0..(tone_s * 48_000.0) as u32 {
            let t = i as f32 / 48_000.0;
            // A voice-like tone: 160 Hz with two harmonics.
            let v = 0.25 * (2.0 * std::f32::consts::PI * 160.0 * t).sin()
                + 0.1 * (2.0 * std::f32::consts::PI * 320.0 * t).sin()
                + 0.05 * (2.0 * std::f32::consts::PI * 480.0 * t).sin();
            w.write_sample((v * i16::MAX as f32) as i16).unwrap();
        }
        for _ in 0..(gap_s * 48_000.0) as u32 {
            w.write_sample(0i16).unwrap();
        }
    }
    w.finalize().unwrap();
    (video, audio)
}

impl Browser {
    /// Starts Chromium headless on `about:blank` with the fake devices playing `media`.
    /// Fails loudly when Chromium is not installed (`make test` installs it).
    pub async fn start(media: &(PathBuf, PathBuf)) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-port=0",
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                "--autoplay-policy=no-user-gesture-required",
                "--window-size=1024,900",
            ])
            .arg(format!(
                "--use-file-for-fake-video-capture={}",
                media.0.display()
            ))
            .arg(format!(
                "--use-file-for-fake-audio-capture={}",
                media.1.display()
            ))
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium must be installed for the page tests (make test installs it)");
        // Chromium writes the port it listens on into the profile.
        let active = profile.path().join("DevToolsActivePort");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&active)
                && let Some(port) = text
                    .lines()
                    .next()
                    .and_then(|l| l.trim().parse::<u16>().ok())
            {
                break port;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "chromium never opened its DevTools port"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let page_ws = loop {
            let list: Value = reqwest::get(format!("http://127.0.0.1:{port}/json/list"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if let Some(p) = list
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["type"] == "page")
            {
                break p["webSocketDebuggerUrl"].as_str().unwrap().to_string();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let (ws, _) = tokio_tungstenite::connect_async(&page_ws).await.unwrap();
        let (mut sink, mut stream) = ws.split();
        let (out, mut rx) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                if sink
                    .send(tokio_tungstenite::tungstenite::Message::text(m))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        let inbox: Arc<Mutex<Inbox>> = Arc::default();
        let notify = Arc::new(Notify::new());
        let problems: Problems = Arc::default();
        let (inbox2, notify2, problems2) = (inbox.clone(), notify.clone(), problems.clone());
        tokio::spawn(async move {
            while let Some(Ok(m)) = stream.next().await {
                let Ok(text) = m.into_text() else { continue };
                let Ok(v) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                if let Some(id) = v["id"].as_u64() {
                    inbox2.lock().unwrap().replies.insert(id, v);
                } else {
                    note_event(&v, &inbox2, &problems2);
                }
                notify2.notify_waiters();
            }
        });
        let b = Browser {
            child,
            _profile: profile,
            out,
            inbox,
            notify,
            next: std::sync::atomic::AtomicU64::new(1),
            problems,
        };
        for domain in ["Runtime.enable", "Log.enable", "Page.enable"] {
            b.send(domain, json!({})).await;
        }
        b
    }

    /// Sends a command and waits for its result.
    pub async fn send(&self, method: &str, params: Value) -> Value {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.out
            .send(json!({"id": id, "method": method, "params": params}).to_string())
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let waiting = self.notify.notified();
            if let Some(v) = self.inbox.lock().unwrap().replies.remove(&id) {
                assert!(v["error"].is_null(), "{method}: {}", v["error"]);
                return v["result"].clone();
            }
            assert!(
                tokio::time::timeout_at(deadline, waiting).await.is_ok(),
                "{method} got no answer"
            );
        }
    }

    /// Opens `url` and waits for its load event.
    pub async fn go(&self, url: &str) {
        let before = self.inbox.lock().unwrap().loads;
        self.send("Page.navigate", json!({"url": url})).await;
        self.wait_until("the page loaded", Duration::from_secs(30), || {
            self.inbox.lock().unwrap().loads > before
        })
        .await;
    }

    /// Evaluates `expr` in the page (awaiting a promise) and returns its value.
    pub async fn eval(&self, expr: &str) -> Value {
        let r = self
            .send(
                "Runtime.evaluate",
                json!({"expression": expr, "awaitPromise": true, "returnByValue": true}),
            )
            .await;
        assert!(
            r["exceptionDetails"].is_null(),
            "{expr}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Waits until `expr` is truthy in the page, at most `within`.
    pub async fn wait_for(&self, what: &str, expr: &str, within: Duration) -> Value {
        match self.truthy_within(expr, within).await {
            Some(v) => v,
            None => panic!(
                "waited {within:?} for {what} ({expr}); problems so far: {:?}",
                self.problems.lock().unwrap()
            ),
        }
    }

    /// `expr`'s value once it is truthy in the page; none if it is not within `within`.
    pub async fn truthy_within(&self, expr: &str, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let v = self.eval(expr).await;
            if !(v.is_null() || v == false || v == 0 || v == "") {
                return Some(v);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    async fn wait_until(&self, what: &str, within: Duration, f: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + within;
        while !f() {
            assert!(tokio::time::Instant::now() < deadline, "waited for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the middle of the element `selector` with the mouse, as a person would.
    pub async fn click(&self, selector: &str) {
        let sel = serde_json::to_string(selector).unwrap();
        let at = self
            .wait_for(
                &format!("{selector} to be visible"),
                &format!(
                    "(() => {{ const e = document.querySelector({sel}); if (!e) return null; \
                     e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
                     return r.width && r.height && !e.disabled ? [r.x + r.width / 2, r.y + r.height / 2] : null; }})()"
                ),
                Duration::from_secs(20),
            )
            .await;
        let (x, y) = (at[0].as_f64().unwrap(), at[1].as_f64().unwrap());
        for kind in ["mousePressed", "mouseReleased"] {
            self.send(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            )
            .await;
        }
    }

    /// Clicks into `selector` and types `text`.
    pub async fn type_into(&self, selector: &str, text: &str) {
        self.click(selector).await;
        self.send("Input.insertText", json!({"text": text})).await;
    }

    /// Presses Tab `n` times and returns the id (or text) of the focused element: the page
    /// is usable from the keyboard.
    pub async fn tab(&self, n: usize) -> Value {
        for _ in 0..n {
            for kind in ["keyDown", "keyUp"] {
                self.send(
                    "Input.dispatchKeyEvent",
                    json!({"type": kind, "key": "Tab", "code": "Tab", "windowsVirtualKeyCode": 9}),
                )
                .await;
            }
        }
        self.eval("document.activeElement && (document.activeElement.id || document.activeElement.textContent)")
            .await
    }

    /// Saves a PNG of the page.
    /// Fails naming what `who`'s pages reported: console errors, exceptions, CSP violations.
    pub fn assert_no_problems(&self, who: &str) {
        let problems = self.problems.lock().unwrap();
        assert!(
            problems.is_empty(),
            "{who}'s pages reported problems: {problems:#?}"
        );
    }

    pub async fn screenshot(&self, path: &Path) {
        let r = self
            .send(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await;
        use base64::Engine;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

/// Notes a load, or a problem the page reported.
fn note_event(v: &Value, inbox: &Mutex<Inbox>, problems: &Problems) {
    let p = &v["params"];
    let problem = match v["method"].as_str().unwrap_or("") {
        "Page.loadEventFired" => {
            inbox.lock().unwrap().loads += 1;
            None
        }
        "Runtime.exceptionThrown" => Some(format!(
            "exception: {}",
            p["exceptionDetails"]["exception"]["description"]
        )),
        "Runtime.consoleAPICalled" if p["type"] == "error" => {
            Some(format!("console.error: {}", p["args"]))
        }
        // Failed loads, CSP violations (source "security") and the like.
        "Log.entryAdded" if p["entry"]["level"] == "error" => Some(format!(
            "{} {}: {} {}",
            p["entry"]["source"], p["entry"]["level"], p["entry"]["text"], p["entry"]["url"]
        )),
        _ => None,
    };
    if let Some(p) = problem {
        problems.lock().unwrap().push(p);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
