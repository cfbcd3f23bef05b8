//! The HTTP edge's own promises: WebSocket text messages are JSON and only
//! `{"type":"finish"}` ends a stream; a server that is stopping refuses new streams; and
//! `kiroku serve` stopped by SIGTERM ends an open stream cleanly, seals its manifest and
//! exits 0.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::serve::{Served, free_port};
use common::server::{SERVICE, Server};
use common::ws::{self, Ws, next_answer, read_to_close, send_media};
use futures_util::{SinkExt, StreamExt};
use kiroku::consent::Scope;
use kiroku::ids::InterviewId;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// The router in-process on loopback, ready to capture for `acme`.
async fn server() -> Server {
    let s = common::server::start(|_| {}).await;
    common::app::privacy_basics(&s.app);
    s
}

impl Server {
    /// A candidate with `record` consent and an interview for them: (id, ingest token).
    async fn interview(&self) -> (String, String) {
        let c = common::candidates::add(&self.app, "JP", &[Scope::Record]);
        let r = self
            .http
            .post(format!("{}/v1/interviews", self.base))
            .bearer_auth(SERVICE)
            .json(&json!({"candidate": c.to_string(), "recruiter": "acme"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let body: Value = r.json().await.unwrap();
        (
            body["interview_id"].as_str().unwrap().into(),
            body["ingest_token"].as_str().unwrap().into(),
        )
    }

    fn state(&self, id: &str) -> String {
        let row = self
            .app
            .catalog
            .interview(&InterviewId::parse(id).unwrap())
            .unwrap()
            .unwrap();
        row.state.as_str().to_string()
    }
}

fn fixture(name: &str) -> Vec<u8> {
    common::fixtures::read(name)
}

/// Streams the media, then `{"type":"finish"}`; the stream must end as `finished` with 1000.
async fn send_all_and_finish(ws: &mut Ws, media: &[u8]) -> Vec<Value> {
    send_media(ws, media).await;
    let (texts, code) = ws::finish(ws).await;
    assert_eq!(code, 1000, "{texts:?}");
    let ended = texts.last().unwrap();
    assert_eq!(ended["type"], "capture.ended");
    assert_eq!(ended["state"], "finished", "{ended}");
    texts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_message_that_merely_mentions_finish_does_not_end_the_stream() {
    let s = server().await;
    let (id, token) = s.interview().await;
    let mut ws = s.connect(&id, &token).await;
    let media = fixture("interview-vp8-opus.webm");
    let (head, rest) = media.split_at(media.len() / 3);
    send_media(&mut ws, head).await;
    for mention in [
        r#"{"type":"note","text":"finish"}"#,
        r#"{"type":"finish","when":"later"}"#,
        r#""finish""#,
    ] {
        ws.send(Message::text(mention)).await.unwrap();
        let answer = next_answer(&mut ws).await;
        assert_eq!(answer["type"], "error", "{mention}: {answer}");
        assert_eq!(answer["error"], "unknown_message", "{mention}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains(r#"{"type":"finish"}"#),
            "the answer names the message that does end a stream: {answer}"
        );
    }
    assert_eq!(s.state(&id), "capturing");
    let texts = send_all_and_finish(&mut ws, rest).await;
    let ended = texts.last().unwrap();
    let all_bytes = ended["bytes_in"].as_u64().unwrap();
    assert_eq!(
        all_bytes,
        media.len() as u64,
        "every byte after the mention was taken"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_text_is_answered_with_an_error_and_the_stream_goes_on() {
    let s = server().await;
    let (id, token) = s.interview().await;
    let mut ws = s.connect(&id, &token).await;
    let media = fixture("interview-vp8-opus.webm");
    let (head, rest) = media.split_at(media.len() / 2);
    send_media(&mut ws, head).await;
    for garbage in [r#"please "finish" now"#, r#"{"type":"finish""#, ""] {
        ws.send(Message::text(garbage)).await.unwrap();
        let answer = next_answer(&mut ws).await;
        assert_eq!(answer["type"], "error", "{garbage:?}: {answer}");
        assert_eq!(
            answer["error"], "malformed_message",
            "{garbage:?}: {answer}"
        );
        assert!(answer["message"].is_string());
    }
    assert_eq!(s.state(&id), "capturing");
    send_all_and_finish(&mut ws, rest).await;
    assert_eq!(s.state(&id), "finished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_stopping_refuses_new_streams_without_spending_their_token() {
    let s = server().await;
    let (id, token) = s.interview().await;
    s.app.shutdown();
    match tokio_tungstenite::connect_async(s.ws_url(&id, &token)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 503);
            let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["error"], "shutting_down");
        }
        other => panic!("expected a 503, got {:?}", other.map(|_| "an upgrade")),
    }
    assert_eq!(s.state(&id), "created", "the interview was not touched");
    let row = s
        .app
        .catalog
        .interview(&InterviewId::parse(&id).unwrap())
        .unwrap()
        .unwrap();
    assert!(
        kiroku::capture::spend_ingest_token(&s.app, &row.id, &token).is_ok(),
        "the token is still unspent, for a retry once the server is back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_declaring_an_unsupported_type_is_refused_without_spending_its_token() {
    let s = server().await;
    let (id, token) = s.interview().await;
    let url = format!("{}&content_type=application/pdf", s.ws_url(&id, &token));
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 415);
            let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["error"], "unsupported_content_type");
        }
        other => panic!("expected a 415, got {:?}", other.map(|_| "an upgrade")),
    }
    assert_eq!(s.state(&id), "created", "the interview was not touched");
    let row = s
        .app
        .catalog
        .interview(&InterviewId::parse(&id).unwrap())
        .unwrap()
        .unwrap();
    assert!(
        kiroku::capture::spend_ingest_token(&s.app, &row.id, &token).is_ok(),
        "the token is still unspent, for a retry with a supported type"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_stream_left_open_ends_cleanly_when_the_server_stops() {
    let s = server().await;
    let (id, token) = s.interview().await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }));
    let put = tokio::spawn(
        s.http
            .put(format!("{}/v1/interviews/{id}/media", s.base))
            .bearer_auth(&token)
            .header("content-type", "video/webm")
            .body(body)
            .send(),
    );
    let media = fixture("interview-vp8-opus.webm");
    for chunk in media[..media.len() / 2].chunks(16_384) {
        tx.send(Ok(chunk.to_vec())).await.unwrap();
    }
    let interview = InterviewId::parse(&id).unwrap();
    let start = Instant::now();
    while s.app.catalog.segments(&interview).unwrap().len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "segments are stored"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.app.shutdown();
    let answer = tokio::time::timeout(Duration::from_secs(10), put)
        .await
        .expect("the PUT is answered although its body never ended")
        .unwrap()
        .unwrap();
    assert_eq!(answer.status(), 200);
    let v: Value = answer.json().await.unwrap();
    assert_eq!(v["state"], "finished", "{v}");
    assert!(v["acknowledged"].as_array().unwrap().len() >= 2, "{v}");
    assert_eq!(s.state(&id), "finished");
    drop(tx);
}

fn kiroku(data: &Path) -> Command {
    let mut c = common::cli::kiroku_cmd(data);
    c.env("KIROKU_SERVICE_TOKEN", SERVICE);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_an_open_stream_cleanly_seals_its_manifest_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let candidate = common::cli::recorded_candidate(data, "r");
    let mut server = Served::start(kiroku(data), free_port());
    let created: Value = reqwest::Client::new()
        .post(format!("{}/v1/interviews", server.base()))
        .bearer_auth(SERVICE)
        .json(&json!({"candidate": candidate, "recruiter": "acme"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["interview_id"].as_str().unwrap().to_string();
    let token = created["ingest_token"].as_str().unwrap();
    let mut ws = ws::connect(&ws::stream_url(&server.base(), &id, token)).await;
    let media = fixture("interview-vp8-opus.webm");
    let mut chunks = media.chunks(8_192).map(<[u8]>::to_vec);
    let acked = ws::send_until_acked(&mut ws, &mut chunks, 3).await;
    assert!(acked >= 3, "header and two media segments acknowledged");

    // SIGTERM while the stream is open; the client reads on meanwhile, as a browser would.
    let signalled = Instant::now();
    let stopping = tokio::task::spawn_blocking(move || server.terminate(Duration::from_secs(10)));
    let (texts, code) = read_to_close(&mut ws).await;
    assert_eq!(code, 1001, "going away: {texts:?}");
    let ended = texts.last().unwrap();
    assert_eq!(ended["type"], "capture.ended");
    assert_eq!(ended["state"], "finished", "{ended}");
    assert!(ended["error"].is_null(), "{ended}");
    let stored = texts
        .iter()
        .filter(|t| t["type"] == "segment.stored")
        .count();
    let status = stopping
        .await
        .expect("kiroku serve exits within 10 s of SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    assert!(signalled.elapsed() < Duration::from_secs(10));

    // Everything the client was told is on disk, the manifest is sealed as complete.
    let app = common::app::open(common::app::config(data));
    let row = app
        .catalog
        .interview(&InterviewId::parse(&id).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(row.state.as_str(), "finished");
    assert_eq!(row.end_reason.as_deref(), Some("finished"));
    let segments = app.catalog.segments(&row.id).unwrap();
    assert_eq!(
        segments.len(),
        acked + stored,
        "every acknowledged segment, no more"
    );
    assert!(
        segments.last().unwrap().is_final,
        "the last segment is marked final"
    );
    let (region, key) = app.interview_key(&row).unwrap().unwrap();
    let sealed = region
        .store
        .get(&kiroku::store::ObjectKey::manifest(&row.candidate, &row.id))
        .unwrap();
    let manifest = kiroku::recording::Manifest::open(&key, &row, &sealed).unwrap();
    assert!(manifest.complete, "the manifest is sealed as complete");
    assert_eq!(manifest.end.as_deref(), Some("finished"));
    assert_eq!(manifest.segments.len(), segments.len());
    drop(app);

    let out = data.join("after-sigterm.webm");
    let o = kiroku(data)
        .args(["recording", "export", &id, "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::metadata(&out).unwrap().len() > 10_000);
}

#[test]
fn a_stopped_spool_uploader_exits_promptly_and_leaves_what_is_spooled_in_the_spool() {
    use kiroku::config::{RegionConfig, S3Config};
    use kiroku::seal::{CandidateKey, ObjectIdentity, ObjectKind};
    use kiroku::store::{ObjectKey, Store};

    let dir = tempfile::tempdir().unwrap();
    let unreachable = free_port(); // nothing listens there: every upload fails
    let s3 = S3Config {
        bucket: "kiroku".into(),
        region: "nowhere".into(),
        endpoint: Some(format!("http://127.0.0.1:{unreachable}")),
        path_style: true,
        profile: None,
        access_key_id: Some("id".into()),
        secret_access_key: Some("secret".into()),
        upload_timeout_seconds: 1,
        spool_limit_bytes: 1 << 20,
    };
    let mut cfg = common::app::config(dir.path());
    cfg.default_region = "jp".into();
    cfg.regions.clear();
    cfg.regions.insert(
        "jp".into(),
        RegionConfig {
            country: "JP".into(),
            backend: "s3".into(),
            master_key_file: "keys/jp.master.key".into(),
            s3: Some(s3),
        },
    );
    let app = common::app::open(cfg);
    let Store::S3(store) = &app.default_region().store else {
        panic!("the region is on S3");
    };
    let (candidate, interview) = (
        kiroku::ids::CandidateId::new_random(),
        InterviewId::new_random(),
    );
    let identity = ObjectIdentity {
        kind: ObjectKind::Segment,
        region: app.default_region().region.id.clone(),
        candidate,
        interview,
        index: 0,
        key_version: 1,
    };
    let sealed = kiroku::seal::seal(
        &CandidateKey::from_bytes([7; 32], 1),
        &identity,
        false,
        vec![1; 1000],
    )
    .unwrap();
    let key = ObjectKey::segment(&candidate, &interview, 0);
    store.spool().put(&key, &sealed, &json!({})).unwrap();

    app.start_uploaders();
    // Long enough for a few failed attempts: the backoff pause under way is seconds long.
    std::thread::sleep(Duration::from_secs(4));
    let asked = Instant::now();
    assert!(
        app.stop_uploaders(Duration::from_secs(10)),
        "the uploader thread ended"
    );
    assert!(
        asked.elapsed() < Duration::from_millis(1500),
        "it does not sit out its backoff: {:?}",
        asked.elapsed()
    );
    assert!(store.spool().contains(&key), "the object stays spooled");
    assert!(store.spool().get(&key).is_ok());
}

/// A raw TCP connection to the served API.
async fn tcp(s: &Server) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// How long until the server closes `tcp`, reading (and dropping) whatever it sends; fails
/// the test past `within`.
async fn closed_within(tcp: &mut tokio::net::TcpStream, within: Duration) -> Duration {
    use tokio::io::AsyncReadExt;
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(within, tcp.read(&mut buf))
            .await
            .expect("the server closes the connection")
        {
            Ok(0) | Err(_) => return started.elapsed(),
            Ok(_) => {}
        }
    }
}

/// A client that starts a request and never ends its headers (slowloris), and one that
/// connects and says nothing, are both cut at the header-read timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_finish_their_headers_are_cut_at_the_header_timeout() {
    use tokio::io::AsyncWriteExt;
    let s = common::server::start(|c| c.server.header_read_timeout_seconds = 1).await;
    let mut slow = tcp(&s).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: kiroku\r\n")
        .await
        .unwrap();
    let mut silent = tcp(&s).await;
    for conn in [&mut slow, &mut silent] {
        let after = closed_within(conn, Duration::from_secs(5)).await;
        assert!(after < Duration::from_secs(4), "{after:?}");
    }
    let ok = s
        .http
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200, "others are served as before");
}

/// Past the connection limit a new client is not served until a connection closes; then it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_limit_a_client_waits_until_a_connection_closes() {
    let s = common::server::start(|c| c.server.max_connections = 2).await;
    let held = [tcp(&s).await, tcp(&s).await];
    let url = format!("{}/healthz", s.base);
    let waiting = tokio::time::timeout(Duration::from_secs(1), s.http.get(&url).send()).await;
    assert!(
        waiting.is_err(),
        "a third connection is not served while two are open"
    );
    drop(held);
    let served = tokio::time::timeout(Duration::from_secs(5), s.http.get(&url).send())
        .await
        .expect("served once the held connections closed")
        .unwrap();
    assert_eq!(served.status(), 200);
}

/// A stream whose connection goes silent (no byte either way) is closed at the idle timeout,
/// and its interview waits for a resume instead of ending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_gone_silent_is_closed_at_the_idle_timeout_and_waits_for_its_resume() {
    let s = common::server::start(|c| c.server.idle_timeout_seconds = 2).await;
    common::app::privacy_basics(&s.app);
    let live = s.create_interview().await;
    let mut ws = s.connect(&live.id, &live.ingest_token).await;
    for chunk in common::fixtures::browser_chunks().into_iter().take(3) {
        ws.send(Message::binary(chunk)).await.unwrap();
    }
    let started = Instant::now();
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("the server drops the connection")
        {
            None | Some(Err(_)) => break None,
            Some(Ok(Message::Close(frame))) => break Some(frame),
            Some(Ok(_)) => {}
        }
    };
    let after = started.elapsed();
    assert_eq!(
        ended, None,
        "the connection is dropped, not closed with a reason"
    );
    assert!(
        after >= Duration::from_millis(1500) && after < Duration::from_secs(6),
        "{after:?}"
    );
    assert_eq!(s.state(&live.id), "capturing", "parked for its resume");
}

/// The value of the series `name` (with its labels, as exposed) in a Prometheus text page;
/// `None` when it is not there (a labelled series before its first count).
fn series(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

/// `/metrics` is for operators only, in Prometheus text format, and counts what a live stream
/// did: segments stored, their acknowledgement lag, bytes in, the capture's end. (Other tests
/// in this binary may count too, hence "at least".)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_for_operators_and_count_a_live_streams_segments_and_lag() {
    use common::server::As;
    let s = server().await;
    for who in [As::Nobody, As::Service] {
        let (st, v) = s.call("GET", "/metrics", who, None).await;
        assert_eq!(st, 401, "{who:?}: {v}");
    }
    let scrape = || async {
        let (st, h, body) = s.raw("GET", "/metrics", As::Operator, None, &[]).await;
        assert_eq!(st, 200);
        assert!(
            h["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        String::from_utf8(body).unwrap()
    };
    let before = scrape().await;
    let live = s.create_interview().await;
    let mut ws = s.connect(&live.id, &live.ingest_token).await;
    let chunks = common::fixtures::browser_chunks();
    let sent: usize = chunks.iter().map(Vec::len).sum();
    let lags = ws::stream_in_real_time(&mut ws, chunks, Duration::from_millis(50)).await;
    let after = scrape().await;
    let grew = |name: &str| series(&after, name).unwrap() - series(&before, name).unwrap();
    assert!(
        grew("kiroku_segments_stored_total") >= lags.len() as f64 + 1.0,
        "header and media"
    );
    assert!(grew("kiroku_ack_lag_seconds_count") >= lags.len() as f64);
    assert!(grew("kiroku_bytes_in_total") >= sent as f64);
    let finished = "kiroku_captures_ended_total{outcome=\"finished\"}";
    let was = series(&before, finished).unwrap_or(0.0);
    assert!(series(&after, finished).unwrap() >= was + 1.0);
    assert!(after.contains("# TYPE kiroku_live_captures gauge"));
    assert!(after.contains("kiroku_process_resident_memory_bytes"));
}

/// A WebSocket message over the size limit (five seconds at the highest bitrate allowed:
/// 5 MB by default) ends the stream with 413 `message_too_large` and close code 4413, rather
/// than being buffered whole or taken for a dropped connection to wait on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_message_over_the_size_limit_ends_the_stream_as_message_too_large() {
    let s = server().await;
    let live = s.create_interview().await;
    let mut ws = s.connect(&live.id, &live.ingest_token).await;
    let first = common::fixtures::browser_chunks().remove(0);
    ws.send(Message::binary(first)).await.unwrap();
    let _ = ws.send(Message::binary(vec![0x1f; 6_000_000])).await;
    let (texts, code) = ws::read_to_close(&mut ws).await;
    assert_eq!(code, 4413, "{texts:?}");
    let ended = texts.last().unwrap();
    assert_eq!(ended["error"], "message_too_large", "{ended}");
    let status = s.wait_until_ended(&live.id, Duration::from_secs(10)).await;
    assert_eq!(status["state"], "stopped", "{status}");
}

/// A client that sends the upgrade request and goes away before the answer has not opened a
/// stream: its token stays unspent and the interview untouched, so the real connection works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_whose_client_leaves_before_the_answer_spends_no_token() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = server().await;
    let (id, token) = s.interview().await;
    let host = s.base.trim_start_matches("http://").to_string();
    let mut tcp = tokio::net::TcpStream::connect(&host).await.unwrap();
    let request = format!(
        "GET /v1/interviews/{id}/stream?token={token} HTTP/1.1\r\nHost: {host}\r\n\
         Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    // Gone at once: the request is in, nothing more will come, nothing will be read.
    tcp.shutdown().await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    drop(tcp);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Whether the server saw the client go before it answered or only after its 101 (which
    // load decides), nothing was started and the token is unspent.
    assert_eq!(s.state(&id), "created", "no capture was started");
    let mut ws = s.connect(&id, &token).await;
    send_all_and_finish(&mut ws, &fixture("interview-vp8-opus.webm")).await;
    assert_eq!(s.state(&id), "finished");
}
