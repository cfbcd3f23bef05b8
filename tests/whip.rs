//! WHIP ingest (RFC 9725) over real WebRTC on loopback: a GStreamer WHIP client (clean, and
//! losing 5 % of its packets), a real headless Chromium publishing its fake camera and
//! microphone, and the endpoint's refusals, CORS and session control.

mod common;

use std::time::{Duration, Instant};

use common::browser::{Browser, PageServer, wait_for_report};
use common::candidates;
use common::server::{self, Server};
use common::whip::{self, WhipClient};
use kiroku::config::Config;
use kiroku::consent::Scope;
use kiroku::ids::{CandidateId, InterviewId};
use kiroku::segment::WhipSource;
use serde_json::{Value, json};

/// A page origin allowed to publish in the CORS test.
const PAGE_ORIGIN: &str = "http://127.0.0.1:1";

async fn server(tweak: impl FnOnce(&mut Config)) -> Server {
    server::start_ready(tweak).await
}

/// A created interview: (candidate, id, ingest token).
async fn interview(s: &Server) -> (CandidateId, String, String) {
    let i = s.create_interview().await;
    (i.candidate, i.id, i.ingest_token)
}

fn whip_url(s: &Server, id: &str) -> String {
    format!("{}/v1/interviews/{id}/whip", s.base)
}

async fn show(s: &Server, id: &str) -> Value {
    s.status(id).await
}

async fn ended(s: &Server, id: &str, within: Duration) -> Value {
    s.wait_until_ended(id, within).await
}

/// Waits until the interview has a stored media segment.
async fn first_media_segment(s: &Server, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while show(s, id).await["segments"].as_array().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "no media segment came");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn publish(url: String, token: String, loss: f64) -> Result<WhipClient, whip::Refused> {
    tokio::task::spawn_blocking(move || whip::publish(&url, &token, loss))
        .await
        .unwrap()
}

/// Publishes kiroku's live test pattern (H.264 or VP8, the video's packets lost at
/// `video_loss`) to the interview at `url`.
async fn publish_pattern(url: String, token: String, h264: bool, video_loss: f64) -> WhipClient {
    tokio::task::spawn_blocking(move || {
        whip::publish_from(
            &url,
            &token,
            WhipSource::TestPattern {
                h264,
                video_loss,
                audio_loss: 0.0,
            },
        )
    })
    .await
    .unwrap()
    .unwrap()
}

/// Ends a session with `DELETE`: its status.
async fn finish(client: WhipClient) -> u16 {
    tokio::task::spawn_blocking(move || client.finish())
        .await
        .unwrap()
}

/// Exports the interview (VP8 in WebM) and decodes it: (video stream, audio stream).
fn exported(s: &Server, id: &str) -> (common::media::DecodedStream, common::media::DecodedStream) {
    exported_as(s, id, "video/webm", "video/x-vp8")
}

/// Exports the interview, checks its container, and decodes it: (video, audio).
fn exported_as(
    s: &Server,
    id: &str,
    content_type: &str,
    video_codec: &str,
) -> (common::media::DecodedStream, common::media::DecodedStream) {
    let out = s.dir.path().join(format!("{id}.export"));
    let rec = kiroku::recording::export(&s.app, &InterviewId::parse(id).unwrap(), &out).unwrap();
    assert_eq!(rec.content_type, content_type);
    let streams = common::media::decode(&out);
    let find = |codec: &str| {
        streams
            .iter()
            .find(|st| st.codec == codec)
            .cloned()
            .unwrap_or_else(|| panic!("no {codec} in {streams:?}"))
    };
    (find(video_codec), find("audio/x-opus"))
}

/// Every candidate line of an SDP is on 127.0.0.1.
fn candidates_are_loopback(sdp: &str) -> bool {
    let cands: Vec<&str> = sdp
        .lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .collect();
    !cands.is_empty() && cands.iter().all(|l| l.contains(" 127.0.0.1 "))
}

/// A WHIP client that is not a browser publishes for about 6 s and ends with DELETE: the
/// answer holds only loopback candidates, every segment after the first starts on a keyframe
/// (kiroku asks for one about every segment), and the export decodes, both streams, to the
/// session's length.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whip_client_publishes_and_its_recording_is_segmented_on_keyframes_and_plays() {
    let s = server(|_| {}).await;
    let (_, id, token) = interview(&s).await;
    let client = publish(whip_url(&s, &id), token, 0.0).await.unwrap();
    assert!(candidates_are_loopback(&client.answer), "{}", client.answer);
    assert!(
        client
            .location
            .starts_with(&format!("{}/v1/interviews/{id}/whip/", s.base)),
        "{}",
        client.location
    );
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(9)).await;
    let session = started.elapsed();
    assert_eq!(finish(client).await, 200);
    let v = ended(&s, &id, Duration::from_secs(20)).await;
    assert_eq!(v["state"], "finished", "{v}");
    assert_eq!(v["profile"], "webm");
    assert_eq!(v["playback"]["codecs"], json!(["vp8", "opus"]));
    let segs = v["segments"].as_array().unwrap();
    assert!(segs.len() >= 3, "{v}");
    for seg in &segs[1..] {
        assert_eq!(seg["starts_on_keyframe"], true, "{seg}");
        assert!(seg["duration_ms"].as_u64().unwrap() <= 6_500, "{seg}");
    }
    let (video, audio) = exported(&s, &id);
    let media_s = audio.end_ns as f64 / 1e9;
    assert!(
        (media_s - session.as_secs_f64()).abs() <= 1.0,
        "{media_s} s of audio for a {session:?} session"
    );
    assert!(
        video.frames as f64 >= media_s * 30.0 * 0.8,
        "{video:?} over {media_s} s"
    );
}

/// A client whose offer prefers H.264 (as Safari's and OBS's do) is answered with H.264,
/// which WebM cannot carry: the recording is stored, segmented and exported as Matroska, and
/// its status says Firefox and Safari may not play it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_prefers_h264_is_recorded_as_matroska() {
    let s = server(|_| {}).await;
    let (_, id, token) = interview(&s).await;
    let client = publish_pattern(whip_url(&s, &id), token, true, 0.0).await;
    assert!(client.answer.contains("H264/90000"), "{}", client.answer);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(finish(client).await, 200);
    let v = ended(&s, &id, Duration::from_secs(20)).await;
    assert_eq!(v["state"], "finished", "{v}");
    assert_eq!(v["profile"], "matroska", "{v}");
    assert_eq!(v["playback"]["codecs"], json!(["h264", "opus"]));
    assert!(v["segments"].as_array().unwrap().len() >= 3, "{v}");
    let (video, audio) = exported_as(&s, &id, "video/x-matroska", "video/x-h264");
    // The client's software H.264 encoder drops frames on a loaded machine (a run with the
    // rest of the suite saw 12 fps): what is kiroku's to keep is the video over the whole
    // session, decoding from start to end.
    let span = (video.end_ns - video.start_ns) as f64 / 1e9;
    assert!(video.frames >= 25 && span >= 5.0, "{video:?}");
    assert!(audio.frames > 0);
}

/// 5 % of the client's RTP packets are dropped before they leave it: the jitter buffer and
/// the depayloaders' keyframe requests carry the recording through, and it decodes from start
/// to end with both streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_5_percent_of_packets_lost_the_recording_still_plays_through() {
    let s = server(|_| {}).await;
    let (_, id, token) = interview(&s).await;
    let client = publish(whip_url(&s, &id), token, 0.05).await.unwrap();
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let session = started.elapsed().as_secs_f64();
    finish(client).await;
    let v = ended(&s, &id, Duration::from_secs(20)).await;
    assert_eq!(v["state"], "finished", "{v}");
    let (video, audio) = exported(&s, &id);
    assert!(
        audio.end_ns as f64 / 1e9 >= session - 1.0,
        "{audio:?} for {session} s"
    );
    assert!(
        video.end_ns as f64 / 1e9 >= session - 1.5,
        "video plays to the end: {video:?} for {session} s"
    );
    // About 0.95^packets-per-frame of the frames arrive whole; a lost one costs the frames up
    // to the next keyframe, which the depayloader asks for at once.
    assert!(
        video.frames as f64 >= session * 30.0 * 0.3,
        "{video:?} for {session} s"
    );
    assert!(
        audio.frames as f64 >= session * 50.0 * 0.85,
        "{audio:?} for {session} s"
    );
}

/// A camera that is negotiated but never sends (blocked, or a track without frames) does not
/// hold the recording back: after a short grace the muxer records the audio that comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_negotiated_stream_that_never_carries_media_does_not_hold_the_recording_back() {
    let s = server(|_| {}).await;
    let (_, id, token) = interview(&s).await;
    let client = publish_pattern(whip_url(&s, &id), token, false, 1.0).await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    finish(client).await;
    let v = ended(&s, &id, Duration::from_secs(20)).await;
    assert_eq!(v["state"], "finished", "{v}");
    assert!(v["segments"].as_array().unwrap().len() >= 2, "{v}");
    let out = s.dir.path().join("audio-only.export");
    kiroku::recording::export(&s.app, &InterviewId::parse(&id).unwrap(), &out).unwrap();
    let audio = common::media::decode(&out)
        .into_iter()
        .find(|st| st.codec == "audio/x-opus")
        .expect("the audio is recorded");
    assert!(audio.frames as f64 >= 4.0 * 50.0, "{audio:?}");
}

/// A withdrawal of `record` during a session ends it at the next segment boundary: the
/// segments before stay, nothing after is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_mid_session_ends_it_at_the_next_segment_boundary() {
    let s = server(|_| {}).await;
    let (c, id, token) = interview(&s).await;
    let client = publish(whip_url(&s, &id), token, 0.0).await.unwrap();
    first_media_segment(&s, &id).await;
    candidates::withdraw(&s.app, &c, Scope::Record);
    let v = ended(&s, &id, Duration::from_secs(20)).await;
    assert_eq!(v["state"], "stopped", "{v}");
    assert_eq!(v["end_reason"], "consent_withdrawn", "{v}");
    assert_eq!(v["segments"].as_array().unwrap().len(), 2, "{v}");
    assert!(kiroku::recording::rebuild(&s.app, &InterviewId::parse(&id).unwrap()).is_ok());
    drop(client);
}

/// A shutdown ends a running WHIP session where it stands, as `finish` does: finished, the
/// recording whole up to there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_ends_a_whip_session_cleanly() {
    let s = server(|_| {}).await;
    let (_, id, token) = interview(&s).await;
    let client = publish(whip_url(&s, &id), token, 0.0).await.unwrap();
    first_media_segment(&s, &id).await;
    s.app.shutdown();
    let v = ended(&s, &id, Duration::from_secs(20)).await;
    assert_eq!(v["state"], "finished", "{v}");
    assert!(kiroku::recording::rebuild(&s.app, &InterviewId::parse(&id).unwrap()).is_ok());
    drop(client);
}

/// A client that stops sending without DELETE (a closed tab) ends the interview as
/// `client_gone` once ten seconds pass without media, keeping what was recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_that_vanishes_without_delete_ends_as_client_gone() {
    let s = server(|_| {}).await;
    let (_, id, token) = interview(&s).await;
    let client = publish(whip_url(&s, &id), token, 0.0).await.unwrap();
    first_media_segment(&s, &id).await;
    tokio::task::spawn_blocking(move || client.vanish())
        .await
        .unwrap();
    let v = ended(&s, &id, Duration::from_secs(30)).await;
    assert_eq!(v["state"], "stopped", "{v}");
    assert_eq!(v["end_reason"], "client_gone", "{v}");
    assert!(v["segments"].as_array().unwrap().len() >= 2, "{v}");
    assert!(kiroku::recording::rebuild(&s.app, &InterviewId::parse(&id).unwrap()).is_ok());
}

/// Refusals name their cause, and those about the offer come before the token is spent: the
/// same token then publishes. A second POST, a DELETE with another token or for an unknown
/// session, and trickle ICE are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_whip_requests_get_precise_errors_and_a_refused_offer_keeps_its_token() {
    let s = server(|_| {}).await;
    let (_, id, token) = interview(&s).await;
    let url = whip_url(&s, &id);
    let post = |token: Option<&str>, ct: &str, body: &str| {
        let mut r = s
            .http
            .post(&url)
            .header("content-type", ct)
            .body(body.to_string());
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let g722_only = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 9\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=rtpmap:9 G722/8000\r\n";
    for (row, token, ct, body, status, code) in [
        (
            "no token",
            None,
            "application/sdp",
            "v=0",
            401,
            "unauthorized",
        ),
        (
            "not SDP's type",
            Some(token.as_str()),
            "application/json",
            "{}",
            415,
            "unsupported_content_type",
        ),
        (
            "not SDP",
            Some(token.as_str()),
            "application/sdp",
            "hello",
            400,
            "whip_offer_refused",
        ),
        (
            "no codec kiroku takes",
            Some(token.as_str()),
            "application/sdp",
            g722_only,
            415,
            "codec_not_allowed",
        ),
    ] {
        let r = post(token, ct, body).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{row}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], code, "{row}: {v}");
    }
    assert_eq!(show(&s, &id).await["state"], "created", "nothing started");
    let client = publish(url.clone(), token.clone(), 0.0).await.unwrap();
    let opus = g722_only
        .replace("SAVPF 9\r\n", "SAVPF 111\r\n")
        .replace("9 G722/8000", "111 opus/48000/2");
    let again = post(Some(&token), "application/sdp", &opus).await.unwrap();
    assert_eq!(again.status().as_u16(), 409, "the stream is taken");
    let patch = s.http.patch(&client.location).send().await.unwrap();
    assert_eq!(patch.status().as_u16(), 405);
    let other = client.location.rsplit_once('/').unwrap().0.to_string() + "/0000";
    let unknown = s
        .http
        .delete(&other)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    let client = tokio::task::spawn_blocking(move || {
        assert_eq!(client.delete_with("not-the-token"), 401);
        client
    })
    .await
    .unwrap();
    assert_eq!(show(&s, &id).await["state"], "capturing");
    finish(client).await;
    assert_eq!(
        ended(&s, &id, Duration::from_secs(20)).await["state"],
        "finished"
    );
}

/// Browsers publish from the front-end's origin: a preflight from an allowed origin gets the
/// methods and headers WHIP needs, and the answer exposes `Location`; another origin is
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_lets_only_the_allowed_origins_publish() {
    let s = server(|c| c.whip.allowed_origins = vec![PAGE_ORIGIN.into()]).await;
    let (_, id, _) = interview(&s).await;
    let preflight = |origin: &str| {
        s.http
            .request(reqwest::Method::OPTIONS, whip_url(&s, &id))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let ok = preflight(PAGE_ORIGIN).await.unwrap();
    assert_eq!(ok.status().as_u16(), 204);
    let h = ok.headers();
    assert_eq!(h["access-control-allow-origin"], PAGE_ORIGIN);
    assert!(
        h["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert!(
        h["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("DELETE")
    );
    let allowed = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(allowed.contains("authorization") && allowed.contains("content-type"));
    let refused = preflight("https://evil.example").await.unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    // A refusal to an allowed origin still carries CORS headers, so the page can read it.
    let r = s
        .http
        .post(whip_url(&s, &id))
        .header("origin", PAGE_ORIGIN)
        .header("content-type", "application/sdp")
        .body("v=0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.headers()["access-control-allow-origin"], PAGE_ORIGIN);
    assert_eq!(r.headers()["access-control-expose-headers"], "Location");
}

/// The page that publishes to interview `id` for `seconds`, on `page`'s origin.
fn page_url(page: &PageServer, s: &Server, id: &str, token: &str, seconds: u32) -> String {
    let whip: String = url::form_urlencoded::byte_serialize(whip_url(s, id).as_bytes()).collect();
    format!(
        "{}/?whip={whip}&token={token}&seconds={seconds}",
        page.origin
    )
}

/// A real headless Chromium publishes its fake camera and microphone over WHIP for about
/// 10 s, from its own origin (CORS), and ends with DELETE: every candidate it was answered
/// with and the address its media went to are loopback, and the export decodes with audio
/// and video, its duration within 0.5 s of the session's (connected to DELETE).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_chromium_publishes_over_whip_and_the_recording_lasts_the_session() {
    let page = PageServer::start().await;
    let origin = page.origin.clone();
    let s = server(move |c| c.whip.allowed_origins = vec![origin]).await;
    let (_, id, token) = interview(&s).await;
    let _browser = Browser::open(&page_url(&page, &s, &id, &token, 10));
    let report = wait_for_report(&page, Duration::from_secs(60)).await;
    assert!(report.get("error").is_none(), "{report}");
    assert_eq!(report["post_status"], 201, "{report}");
    assert_eq!(report["delete_status"], 200, "{report}");
    assert!(
        candidates_are_loopback(report["answer"].as_str().unwrap()),
        "{report}"
    );
    assert_eq!(report["remote_address"], "127.0.0.1", "{report}");
    let v = ended(&s, &id, Duration::from_secs(20)).await;
    assert_eq!(v["state"], "finished", "{v}");
    assert_eq!(v["playback"]["codecs"], json!(["vp8", "opus"]), "{v}");
    let session =
        (report["deleted_ms"].as_f64().unwrap() - report["connected_ms"].as_f64().unwrap()) / 1e3;
    let (video, audio) = exported(&s, &id);
    assert!(video.frames > 0 && audio.frames > 0);
    for st in [&audio, &video] {
        let lasted = (st.end_ns - st.start_ns) as f64 / 1e9;
        assert!(
            (lasted - session).abs() <= 0.5,
            "{}: {lasted} s recorded of a {session} s session",
            st.codec
        );
    }
}

/// A withdrawal of `record` while Chromium publishes ends the session at the next segment
/// boundary; what came before is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_ends_a_chromium_session_at_the_next_boundary() {
    let page = PageServer::start().await;
    let origin = page.origin.clone();
    let s = server(move |c| c.whip.allowed_origins = vec![origin]).await;
    let (c, id, token) = interview(&s).await;
    let browser = Browser::open(&page_url(&page, &s, &id, &token, 60));
    first_media_segment(&s, &id).await;
    candidates::withdraw(&s.app, &c, Scope::Record);
    let v = ended(&s, &id, Duration::from_secs(20)).await;
    assert_eq!(v["state"], "stopped", "{v}");
    assert_eq!(v["end_reason"], "consent_withdrawn", "{v}");
    assert_eq!(v["segments"].as_array().unwrap().len(), 2, "{v}");
    drop(browser);
    assert!(kiroku::recording::rebuild(&s.app, &InterviewId::parse(&id).unwrap()).is_ok());
}
