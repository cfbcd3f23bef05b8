//! A recruiter's browser (Debian's Chromium, headless, over the DevTools protocol) plays a
//! released recording as a finished file. In a binary of its own: the byte counts it asserts
//! are Chromium's reading decisions, which the other browser tests' load would disturb.

mod common;

use std::time::Duration;

use common::cdp::{Browser, fake_media};
use common::proxy::Hop;
use common::server::{self, Server};
use kiroku::consent::Scope;

/// A served kiroku with the notice and recruiter `acme` (its API key returned), and a
/// candidate in Japan.
async fn ready() -> (Server, String, String) {
    let s = server::start_ready(|_| {}).await;
    let key = kiroku::recruiter::rotate(
        &s.app,
        &kiroku::ids::RecruiterHandle::parse("acme").unwrap(),
    )
    .unwrap();
    let c = common::candidates::add(&s.app, "JP", &[]).to_string();
    (s, c, key)
}

/// A recruiter's browser plays a released recording as a finished file: the player reads its
/// duration from the header, the whole of it is seekable, and a seek to 75 % plays from there
/// after asking for the bytes at the cue's cluster, not for the file up to it. The bytes are
/// counted on a hop between the browser and kiroku, as the recruiter's network would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_recording_plays_with_its_duration_and_a_seek_reads_far_less_than_the_file() {
    let (s, c, key) = ready().await;
    let candidate = kiroku::ids::CandidateId::parse(&c).unwrap();
    let acme = kiroku::ids::RecruiterHandle::parse("acme").unwrap();
    common::candidates::grant(&s.app, &candidate, Scope::Record);
    common::candidates::grant(&s.app, &candidate, Scope::ShareRecording(acme));
    // 60 s of VP8 at about 4 Mbit/s: 30 MB. Far more than a player reads ahead at once, and
    // 75 % of it lies well beyond the 5 MB within which Chromium waits for the read under way
    // rather than asking for the bytes where it seeks (which made a 10 MB file flaky).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-minute.webm");
    let made = file.clone();
    let media_seconds = tokio::task::spawn_blocking(move || {
        common::media::make_webm(&made, 60, 4_000);
        let end = common::media::decode(&made)
            .iter()
            .map(|s| s.end_ns)
            .max()
            .unwrap();
        end as f64 / 1e9
    })
    .await
    .unwrap();
    let id = s
        .interview_of(&c, "acme", std::fs::read(&file).unwrap(), "video/webm")
        .await;
    let app = s.app.clone();
    let interview = kiroku::ids::InterviewId::parse(&id).unwrap();
    let total = tokio::task::spawn_blocking(move || {
        kiroku::recording::rebuild(&app, &interview)
            .unwrap()
            .bytes
            .len() as f64
    })
    .await
    .unwrap();

    let hop = Hop::start(s.base.trim_start_matches("http://").to_string()).await;
    let media = fake_media(dir.path());
    let b = Browser::start(&media).await;
    b.go(&format!("{}/pages/recruiter.html", hop.base)).await;
    b.type_into("#api-key", &key).await;
    b.click("#signin-form button[type=submit]").await;
    b.click(&format!("[data-open=\"{id}\"]")).await;
    b.wait_for(
        "the player's metadata",
        "document.getElementById('player').readyState >= 1",
        Duration::from_secs(20),
    )
    .await;
    let duration = b
        .eval("document.getElementById('player').duration")
        .await
        .as_f64()
        .unwrap_or(f64::INFINITY);
    assert!(
        (duration - media_seconds).abs() <= 0.5,
        "the player says {duration} s, the media lasts {media_seconds} s"
    );
    let seekable = b
        .eval(
            "(() => { const s = document.getElementById('player').seekable; \
             return s.length ? s.end(s.length - 1) : 0 })()",
        )
        .await
        .as_f64()
        .unwrap();
    assert!(seekable >= duration - 0.5, "seekable to {seekable} s");

    // The load settles first (metadata read, the Cues fetched, the rest deferred), so that
    // what is sent from here on is what the seek costs.
    let mut settled = hop.bytes_sent();
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = hop.bytes_sent();
        if now == settled {
            break;
        }
        settled = now;
    }
    let (sent_before, asked_before) = (hop.bytes_sent(), hop.range_starts().len());
    let target = duration * 0.75;
    b.eval(&format!(
        "(() => {{ const p = document.getElementById('player'); p.currentTime = {target}; \
         p.play(); return true }})()"
    ))
    .await;
    b.wait_for(
        "playing on from 75 %",
        &format!(
            "(() => {{ const p = document.getElementById('player'); \
             return !p.seeking && !p.paused && p.currentTime > {} }})()",
            target + 1.0
        ),
        Duration::from_secs(30),
    )
    .await;
    let sent = (hop.bytes_sent() - sent_before) as f64;
    let asked: Vec<u64> = hop.range_starts()[asked_before..].to_vec();
    b.eval("document.getElementById('player').pause()").await;
    assert!(
        asked
            .iter()
            .any(|&a| (0.6 * total..=0.8 * total).contains(&(a as f64))),
        "the player asked for the cluster at 75 % of {total} bytes: {asked:?} (all: {:?})",
        hop.range_starts()
    );
    assert!(
        sent < 0.5 * total,
        "{sent} bytes sent for the seek, of {total} in the recording (ranges {asked:?}, all: {:?})",
        hop.range_starts()
    );
    eprintln!(
        "seek to 75 %: {sent} bytes of {total} ({:.1} %), ranges asked {asked:?} (all: {:?})",
        100.0 * sent / total,
        hop.range_starts()
    );
    b.assert_no_problems("the recruiter");
}
