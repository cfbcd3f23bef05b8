//! The pages in a real headless Chromium (Debian's, over the DevTools protocol), with its
//! fake camera and microphone fed from files: the whole story of a candidate and a recruiter,
//! a connection dropped mid-recording, and every page in Japanese and English with no console
//! error and no CSP violation. Screenshots go to `target/screenshots/`.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::cdp::{Browser, fake_media};
use common::proxy::Hop;
use common::server::{self, As, Server};
use serde_json::{Value, json};

/// Where the pages' screenshots go, beside the test output.
fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
}

/// A served kiroku with the notice and recruiter `acme` (its API key returned), and a
/// candidate in Japan registered by the front-end.
async fn ready() -> (Server, String, String) {
    let s = server::start_ready(|_| {}).await;
    let key = kiroku::recruiter::rotate(
        &s.app,
        &kiroku::ids::RecruiterHandle::parse("acme").unwrap(),
    )
    .unwrap();
    let (st, v) = s
        .call(
            "POST",
            "/v1/candidates",
            As::Service,
            Some(json!({"external_ref": "applicant-3321", "home_country": "JP", "language": "ja"})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    (s, v["candidate_id"].as_str().unwrap().to_string(), key)
}

/// Opens a candidate link as the candidate does: its page, then its button; waits for the
/// interview page.
async fn open_link(b: &Browser, base: &str, link: &str) {
    b.go(&format!("{base}{link}")).await;
    b.click("#continue").await;
    b.wait_for(
        "the interview page",
        "location.pathname === '/pages/interview.html' && document.readyState === 'complete'",
        Duration::from_secs(20),
    )
    .await;
}

/// On the interview page: ticks the first `n` purposes and gives consent; waits for the
/// receipts.
async fn consent(b: &Browser, n: usize) {
    b.wait_for(
        "the purposes",
        "document.querySelectorAll('#choice-list input').length",
        Duration::from_secs(20),
    )
    .await;
    for i in 0..n {
        b.click(&format!("#purpose-{i}")).await;
    }
    b.click("#grant").await;
    b.wait_for(
        "the receipts",
        &format!("document.querySelectorAll('#receipts li').length === {n}"),
        Duration::from_secs(20),
    )
    .await;
}

/// Records for about `seconds` of acknowledged media, then stops; the page's recorder state.
async fn record(b: &Browser, seconds: u32, during: impl AsyncFnOnce()) -> Value {
    b.click("#start").await;
    b.wait_for(
        "the first acknowledgement",
        "window.kirokuRecorder && kirokuRecorder.savedMs > 0",
        Duration::from_secs(30),
    )
    .await;
    during().await;
    b.wait_for(
        "enough recorded",
        &format!("kirokuRecorder.savedMs >= {}", seconds * 1000),
        Duration::from_secs(60),
    )
    .await;
    // A click lands where the button was when it was measured: if the page moved in between
    // (a notice changing), it missed, and the recorder is still going. Clicked until the page
    // shows it took it (the button disables itself first thing).
    for attempt in 0.. {
        b.click("#stop").await;
        let taken = b
            .truthy_within(
                "document.getElementById('stop').disabled",
                Duration::from_secs(3),
            )
            .await;
        if taken.is_some() {
            break;
        }
        assert!(attempt < 5, "the stop button never took a click");
    }
    // Bounded generously (a first Chromium run on a loaded machine is slow), and when it does
    // not come, the recorder's own state says where it stopped.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while b
        .eval("!document.getElementById('done').classList.contains('hidden')")
        .await
        != true
    {
        if tokio::time::Instant::now() > deadline {
            let state = b
                .eval(
                    "JSON.stringify({ended: kirokuRecorder.ended, acked: kirokuRecorder.acked, \
                     total: kirokuRecorder.total, sentTo: kirokuRecorder.sentTo, \
                     ready: kirokuRecorder.ready, stopped: kirokuRecorder.stopped, \
                     socket: kirokuRecorder.socket && kirokuRecorder.socket.readyState, \
                     page: document.body.innerText.slice(0, 600)})",
                )
                .await;
            panic!("no final confirmation within 90 s; the recorder: {state}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    b.eval(
        "({total: kirokuRecorder.total, recordedMs: kirokuRecorder.recordedMs, \
          interview: kirokuRecorder.interviewId, ended: kirokuRecorder.ended, \
          saved: document.getElementById('saved').textContent})",
    )
    .await
}

/// The stored interview's status as the service reads it.
async fn status(s: &Server, id: &str) -> Value {
    s.status(id).await
}

/// Media time of an export, from its decoded video stream.
fn export_seconds(s: &Server, id: &str) -> f64 {
    let out = s.data().join(format!("{id}.webm"));
    kiroku::recording::export(&s.app, &kiroku::ids::InterviewId::parse(id).unwrap(), &out).unwrap();
    let streams = common::media::decode(&out);
    let video = streams
        .iter()
        .find(|x| x.codec.starts_with("video/"))
        .unwrap_or_else(|| panic!("no video in {streams:?}"));
    assert!(video.frames > 0);
    (video.end_ns - video.start_ns) as f64 / 1e9
}

/// Waits until the whole-interview analysis of `id` exists.
async fn analysed(s: &Server, id: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let v = status(s, id).await;
        let whole = v["analysis"].as_array().unwrap().iter().any(|o| {
            o["analyzer"] == "kiroku-builtin" && o["segment"].is_null() && o["status"] == "ok"
        });
        if whole {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "no analysis: {v}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn no_problems(who: &str, b: &Browser) {
    b.assert_no_problems(who);
}

/// The whole story: a candidate link opens; the candidate grants record, analyze and sharing
/// with acme, records about 8 s; kiroku holds it and its export lasts as long as the
/// recording; the recruiter signs in, plays it, seeks to the middle, sees the analysis chart;
/// the candidate withdraws sharing; the recruiter's page then says why it is withheld, and
/// since when.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_records_shares_and_withdraws_and_the_recruiter_sees_each_step() {
    let (s, c, key) = ready().await;
    let media_dir = tempfile::tempdir().unwrap();
    let media = fake_media(media_dir.path());
    let candidate = Browser::start(&media).await;
    open_link(
        &candidate,
        &s.base,
        &s.candidate_link(&c, Some("acme")).await,
    )
    .await;
    assert!(
        candidate
            .eval("location.pathname")
            .await
            .as_str()
            .unwrap()
            .ends_with("/pages/interview.html")
    );
    // record, analyze, share the recording, share the analysis.
    consent(&candidate, 4).await;
    candidate
        .screenshot(&screenshots().join("story-1-interview-consented.png"))
        .await;
    let rec = record(&candidate, 8, async || {}).await;
    let id = rec["interview"].as_str().unwrap().to_string();
    assert_eq!(rec["ended"]["state"], "finished", "{rec}");
    let st = status(&s, &id).await;
    assert_eq!(st["state"], "finished");
    assert_eq!(
        st["bytes_in"], rec["total"],
        "kiroku holds every byte the recorder made"
    );
    let recorded = rec["recordedMs"].as_f64().unwrap() / 1000.0;
    let exported = export_seconds(&s, &id);
    assert!(
        (exported - recorded).abs() <= 0.5,
        "export {exported:.2} s against {recorded:.2} s recorded"
    );
    assert!(recorded >= 8.0, "{recorded}");
    analysed(&s, &id).await;

    let recruiter = Browser::start(&media).await;
    recruiter
        .go(&format!("{}/pages/recruiter.html", s.base))
        .await;
    recruiter.type_into("#api-key", &key).await;
    recruiter.click("#signin-form button[type=submit]").await;
    let open = format!("[data-open=\"{id}\"]");
    recruiter.click(&open).await;
    recruiter
        .wait_for(
            "the analysis chart",
            "document.querySelectorAll('#timeline rect.speech').length",
            Duration::from_secs(20),
        )
        .await;
    assert!(
        recruiter
            .eval("document.querySelectorAll('#loudness path.line').length")
            .await
            == 1
    );
    let summary = recruiter
        .eval("document.getElementById('summary').textContent")
        .await;
    assert!(
        summary.as_str().unwrap().contains(" s") && summary.as_str().unwrap().contains("Hz"),
        "units on the figures: {summary}"
    );
    recruiter
        .eval("document.getElementById('player').play()")
        .await;
    recruiter
        .wait_for(
            "the recording to play",
            "document.getElementById('player').currentTime > 1",
            Duration::from_secs(20),
        )
        .await;
    let middle = recorded / 2.0;
    recruiter
        .eval(&format!(
            "document.getElementById('player').currentTime = {middle}"
        ))
        .await;
    recruiter
        .wait_for(
            "playing on from the middle",
            &format!(
                "(() => {{ const p = document.getElementById('player'); \
                 return !p.seeking && !p.paused && p.currentTime > {} }})()",
                middle + 0.5
            ),
            Duration::from_secs(20),
        )
        .await;
    recruiter
        .screenshot(&screenshots().join("story-2-recruiter-playing.png"))
        .await;

    // The candidate withdraws sharing the recording in the privacy center.
    candidate
        .go(&format!("{}/pages/privacy.html", s.base))
        .await;
    let withdraw = "[aria-label$=\"share.recording:acme\"]";
    candidate.click(withdraw).await;
    candidate
        .wait_for(
            "the withdrawal",
            "!document.querySelector('[aria-label$=\"share.recording:acme\"]')",
            Duration::from_secs(20),
        )
        .await;
    candidate
        .screenshot(&screenshots().join("story-3-privacy-withdrawn.png"))
        .await;
    let (_, consents) = s
        .call(
            "GET",
            &format!("/v1/candidates/{c}/consents"),
            As::Service,
            None,
        )
        .await;
    let withdrawn_at = consents["history"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["action"] == "withdraw")
        .unwrap()["at"]
        .as_str()
        .unwrap()
        .to_string();

    recruiter.click(&open).await;
    let shown = recruiter
        .wait_for(
            "the refusal in words",
            "(() => { const w = document.getElementById('withheld'); \
             return !w.classList.contains('hidden') && w.textContent })()",
            Duration::from_secs(20),
        )
        .await;
    let shown = shown.as_str().unwrap();
    assert!(
        shown.contains("withdrew consent") && shown.contains(&withdrawn_at),
        "{shown}"
    );
    recruiter
        .screenshot(&screenshots().join("story-4-recruiter-withheld.png"))
        .await;
    no_problems("the candidate", &candidate);
    no_problems("the recruiter", &recruiter);
}

/// The connection drops for three seconds mid-recording (the hop between browser and kiroku
/// is cut): the page warns, MediaRecorder keeps going, the recorder resumes, and the stored
/// interview holds every byte once, with no gap between its segments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_mid_recording_loses_nothing_and_leaves_no_gap() {
    let (s, c, _) = ready().await;
    let hop = Hop::start(s.base.trim_start_matches("http://").to_string()).await;
    let media_dir = tempfile::tempdir().unwrap();
    let media = fake_media(media_dir.path());
    let b = Browser::start(&media).await;
    open_link(&b, &hop.base, &s.candidate_link(&c, Some("acme")).await).await;
    consent(&b, 1).await;
    let rec = record(&b, 10, async || {
        tokio::time::sleep(Duration::from_secs(2)).await;
        hop.cut();
        b.wait_for(
            "the warning",
            "!document.getElementById('connection').classList.contains('quiet')",
            Duration::from_secs(10),
        )
        .await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        hop.restore();
    })
    .await;
    let id = rec["interview"].as_str().unwrap();
    let st = status(&s, id).await;
    assert_eq!(st["state"], "finished", "{st}");
    assert_eq!(st["bytes_in"], rec["total"], "every byte, once");
    let segments = st["segments"].as_array().unwrap();
    let media: Vec<_> = segments
        .iter()
        .filter(|x| x["media_kind"] != "header")
        .collect();
    assert!(media.len() >= 2, "{st}");
    for pair in media.windows(2) {
        let gap = pair[1]["start_ms"].as_i64().unwrap() - pair[0]["end_ms"].as_i64().unwrap();
        assert!(
            gap.abs() <= 100,
            "a gap of {gap} ms between segments: {pair:?}"
        );
    }
    let recorded = rec["recordedMs"].as_f64().unwrap() / 1000.0;
    let exported = export_seconds(&s, id);
    assert!(
        (exported - recorded).abs() <= 0.5,
        "export {exported:.2} s against {recorded:.2} s recorded"
    );
    let audit = common::audit::log(s.data());
    assert!(audit.contains("\"capture.started\""));
}

/// Every page, in Japanese and in English: it loads with no console error and no CSP
/// violation, its text is in that language, its controls are reachable with Tab, and a
/// screenshot of it is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_loads_in_japanese_and_english_without_an_error_or_a_csp_violation() {
    let (s, c, key) = ready().await;
    let media_dir = tempfile::tempdir().unwrap();
    let media = fake_media(media_dir.path());
    let b = Browser::start(&media).await;
    open_link(&b, &s.base, &s.candidate_link(&c, Some("acme")).await).await;
    let console = Browser::start(&media).await;
    console.go(&format!("{}/pages/console.html", s.base)).await;
    console.type_into("#token", server::OPERATOR).await;
    console.click("#signin-form button[type=submit]").await;
    console
        .wait_for(
            "the console",
            "!document.getElementById('panels').classList.contains('hidden')",
            Duration::from_secs(20),
        )
        .await;
    let recruiter = Browser::start(&media).await;
    recruiter
        .go(&format!("{}/pages/recruiter.html", s.base))
        .await;
    recruiter.type_into("#api-key", &key).await;
    recruiter.click("#signin-form button[type=submit]").await;
    recruiter
        .wait_for(
            "the list",
            "!document.getElementById('list-section').classList.contains('hidden')",
            Duration::from_secs(20),
        )
        .await;
    for lang in ["ja", "en"] {
        for (browser, page, title) in [
            (
                &b,
                "interview",
                if lang == "ja" {
                    "あなたの面接"
                } else {
                    "Your interview"
                },
            ),
            (
                &b,
                "privacy",
                if lang == "ja" {
                    "プライバシーセンター"
                } else {
                    "Your privacy center"
                },
            ),
            (
                &recruiter,
                "recruiter",
                if lang == "ja" {
                    "閲覧できる面接"
                } else {
                    "Interviews you may see"
                },
            ),
            (
                &console,
                "console",
                if lang == "ja" {
                    "運営コンソール"
                } else {
                    "Operator console"
                },
            ),
        ] {
            browser
                .go(&format!("{}/pages/{page}.html?lang={lang}", s.base))
                .await;
            browser
                .wait_for(
                    &format!("{page} in {lang}"),
                    &format!(
                        "document.documentElement.lang === '{lang}' && \
                         document.querySelector('h1').textContent === '{title}'"
                    ),
                    Duration::from_secs(20),
                )
                .await;
            // Loaded data, not only the frame: wait for the page's own requests to settle.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let focused = browser.tab(2).await;
            assert!(!focused.is_null(), "{page}: Tab reaches a control");
            let unlabelled = browser
                .eval(
                    "[...document.querySelectorAll('input, button')].filter(e => \
                     !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && \
                     !e.textContent.trim()).length",
                )
                .await;
            assert_eq!(unlabelled, 0, "{page} in {lang}: every control is labelled");
            browser
                .screenshot(&screenshots().join(format!("{page}-{lang}.png")))
                .await;
        }
    }
    // A phone-sized screen: nothing wider than the viewport.
    b.send(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true}),
    )
    .await;
    b.go(&format!("{}/pages/interview.html?lang=ja", s.base))
        .await;
    b.wait_for(
        "the purposes",
        "document.querySelectorAll('#choice-list input').length",
        Duration::from_secs(20),
    )
    .await;
    let overflow = b
        .eval("document.documentElement.scrollWidth > window.innerWidth")
        .await;
    assert_eq!(overflow, false, "the interview page fits a phone's width");
    b.screenshot(&screenshots().join("interview-phone-ja.png"))
        .await;
    no_problems("the candidate", &b);
    no_problems("the recruiter", &recruiter);
    no_problems("the operator", &console);
}
