//! The ingest API over real HTTP and WebSocket on loopback, as a front-end uses it.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kiroku::app::Kiroku;
use kiroku::config::Config;
use kiroku::consent::Scope;
use kiroku::ids::{CandidateId, CountryCode, InterviewId};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const SERVICE: &str = "service-token-for-the-tests-0123456789";

struct Server {
    dir: tempfile::TempDir,
    app: Arc<Kiroku>,
    base: String,
    http: reqwest::Client,
}

async fn server(tweak: impl FnOnce(&mut Config)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config {
        data_dir: dir.path().to_path_buf(),
        pipelines_dir: Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pipelines")),
        service_token: Some(SERVICE.into()),
        ..Config::default()
    };
    tweak(&mut cfg);
    let app = kiroku::node::open(cfg).unwrap();
    common::privacy_basics(&app);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = kiroku::http::router(app.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Server {
        dir,
        app,
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
    }
}

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// The Chromium recording cut into the very chunks MediaRecorder produced.
fn browser_chunks() -> Vec<Vec<u8>> {
    let bytes = std::fs::read(fixture_path("chromium-mediarecorder.webm")).unwrap();
    let meta: Value = serde_json::from_slice(
        &std::fs::read(fixture_path("chromium-mediarecorder.chunks.json")).unwrap(),
    )
    .unwrap();
    let mut at = 0;
    let chunks: Vec<Vec<u8>> = meta["chunk_lengths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let n = n.as_u64().unwrap() as usize;
            at += n;
            bytes[at - n..at].to_vec()
        })
        .collect();
    assert_eq!(at, bytes.len());
    chunks
}

impl Server {
    fn candidate(&self, record: bool) -> CandidateId {
        let c = self
            .app
            .catalog
            .add_candidate("ext", &CountryCode::parse("JP").unwrap())
            .unwrap();
        if record {
            common::grant(&self.app, &c, Scope::Record);
        }
        c
    }

    async fn create(&self, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/v1/interviews", self.base))
            .bearer_auth(SERVICE)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// A created interview: (id, ingest token).
    async fn interview(&self, c: &CandidateId) -> (String, String) {
        let (status, body) = self
            .create(json!({"candidate": c.to_string(), "recruiter": "acme"}))
            .await;
        assert_eq!(status, 201, "{body}");
        (
            body["interview_id"].as_str().unwrap().into(),
            body["ingest_token"].as_str().unwrap().into(),
        )
    }

    fn ws_url(&self, id: &str, token: &str) -> String {
        format!(
            "{}/v1/interviews/{id}/stream?token={token}",
            self.base.replace("http", "ws")
        )
    }

    async fn show(&self, id: &str) -> Value {
        let r = self
            .http
            .get(format!("{}/v1/interviews/{id}", self.base))
            .bearer_auth(SERVICE)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Reads server messages until the socket closes: (text messages, close code).
async fn read_to_close(ws: &mut Ws) -> (Vec<Value>, u16) {
    let mut texts = Vec::new();
    while let Some(msg) = tokio::time::timeout(Duration::from_secs(30), ws.next())
        .await
        .expect("server answers")
    {
        match msg.unwrap() {
            Message::Text(t) => texts.push(serde_json::from_str(t.as_str()).unwrap()),
            Message::Close(Some(f)) => return (texts, u16::from(f.code)),
            Message::Close(None) => return (texts, 1005),
            _ => {}
        }
    }
    (texts, 1006)
}

async fn refused_upgrade(url: &str) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        other => panic!(
            "expected an HTTP refusal, got {:?}",
            other.map(|_| "an upgrade")
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_recording_streamed_over_websocket_is_acknowledged_only_when_durable_and_rebuilds()
 {
    let s = server(|_| {}).await;
    let c = s.candidate(true);
    let (id, token) = s.interview(&c).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(s.ws_url(&id, &token))
        .await
        .unwrap();
    for chunk in browser_chunks() {
        ws.send(Message::binary(chunk)).await.unwrap();
    }
    ws.send(Message::text(r#"{"type":"finish"}"#))
        .await
        .unwrap();
    let mut acked = Vec::new();
    let mut ended = None;
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["type"] == "segment.stored" {
                    // Durable means: in the catalog and on disk at the moment the ack arrives.
                    let index = v["segment"]["index"].as_u64().unwrap() as usize;
                    let rows = s
                        .app
                        .catalog
                        .segments(&InterviewId::parse(&id).unwrap())
                        .unwrap();
                    let row = rows
                        .iter()
                        .find(|r| r.index as usize == index)
                        .expect("acked segment is in the catalog");
                    assert!(
                        s.dir
                            .path()
                            .join("regions/jp/objects")
                            .join(&row.object_key)
                            .is_file()
                    );
                    acked.push(index);
                } else {
                    ended = Some(v);
                }
            }
            Message::Close(f) => break f.map(|f| u16::from(f.code)),
            _ => {}
        }
    };
    assert_eq!(code, Some(1000));
    assert_eq!(acked, (0..acked.len()).collect::<Vec<_>>());
    assert!(acked.len() >= 3);
    let ended = ended.expect("capture.ended message");
    assert_eq!(ended["state"], "finished");
    assert_eq!(ended["segments"], acked.len() as u64);

    let shown = s.show(&id).await;
    assert_eq!(shown["state"], "finished");
    assert_eq!(shown["segments"].as_array().unwrap().len(), acked.len());
    assert_eq!(
        shown["segments"][1]["tags"]["consent_scopes"],
        json!(["record"])
    );
    assert!(
        (shown["media_ms"].as_u64().unwrap() as i64 - 7950).abs() < 500,
        "{}",
        shown["media_ms"]
    );

    let export = s.dir.path().join("export.webm");
    kiroku::recording::export(&s.app, &InterviewId::parse(&id).unwrap(), &export).unwrap();
    common::assert_same_media(&fixture_path("chromium-mediarecorder.webm"), &export);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_without_record_consent_is_refused_with_403_before_the_upgrade() {
    let s = server(|_| {}).await;
    let c = s.candidate(false);
    let (id, token) = s.interview(&c).await;
    assert_eq!(refused_upgrade(&s.ws_url(&id, &token)).await, 403);
    let r = s
        .http
        .put(format!("{}/v1/interviews/{id}/media", s.base))
        .bearer_auth(&token)
        .body(vec![1u8; 10])
        .send()
        .await
        .unwrap();
    // The refused attempt spent the single-use token: a retry needs a new interview.
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "ingest_token_used"
    );
    assert!(
        !s.dir.path().join("regions/jp/objects/candidates").exists(),
        "not one byte kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_tokens_are_single_use_bound_to_their_interview_and_short_lived() {
    let s = server(|_| {}).await;
    let c = s.candidate(true);
    let (id, token) = s.interview(&c).await;
    let (other, other_token) = s.interview(&c).await;
    assert_eq!(refused_upgrade(&s.ws_url(&id, "not-a-token")).await, 401);
    assert_eq!(refused_upgrade(&s.ws_url(&id, &other_token)).await, 401);
    let r = s
        .http
        .put(format!("{}/v1/interviews/{id}/media", s.base))
        .bearer_auth(&token)
        .header("content-type", "audio/wav")
        .body(std::fs::read(fixture_path("audio-pcm.wav")).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let again = s
        .http
        .put(format!("{}/v1/interviews/{id}/media", s.base))
        .bearer_auth(&token)
        .body(vec![0u8; 4])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    assert_eq!(
        again.json::<Value>().await.unwrap()["error"],
        "already_streamed"
    );
    drop(other);

    let short = server(|c| c.ingest_token_ttl_seconds = 1).await;
    let c = short.candidate(true);
    let (id, token) = short.interview(&c).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = short
        .http
        .put(format!("{}/v1/interviews/{id}/media", short.base))
        .bearer_auth(&token)
        .body(vec![0u8; 4])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "ingest_token_expired"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_a_precise_status_and_a_json_body() {
    let s = server(|_| {}).await;
    let c = s.candidate(true);
    let post = |body: Vec<u8>| {
        s.http
            .post(format!("{}/v1/interviews", s.base))
            .bearer_auth(SERVICE)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"{\"candidate\": ".to_vec(), 400, "malformed_json"),
        (json!({"candidate": c.to_string(), "recruiter": "acme", "extra": 1}).to_string().into_bytes(), 400, "malformed_json"),
        (json!({"candidate": "../../etc", "recruiter": "acme"}).to_string().into_bytes(), 400, "invalid_id"),
        (json!({"candidate": c.to_string(), "recruiter": "Acme/.."}).to_string().into_bytes(), 400, "invalid_id"),
        (json!({"candidate": CandidateId::new_random().to_string(), "recruiter": "acme"}).to_string().into_bytes(), 404, "unknown_candidate"),
        (json!({"candidate": c.to_string(), "recruiter": "acme", "content_type": "application/pdf"}).to_string().into_bytes(), 415, "unsupported_content_type"),
        (vec![b' '; 70_000], 413, "body_rejected"),
    ];
    for (body, status, code) in cases {
        let r = post(body).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{code}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], code);
        assert!(v["message"].is_string());
    }
    let r = s
        .http
        .get(format!("{}/v1/interviews/..%2F..%2Fsecrets", s.base))
        .bearer_auth(SERVICE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_media_over_put_gets_a_precise_error_and_other_interviews_go_on() {
    let s = server(|_| {}).await;
    let c = s.candidate(true);
    let put = |id: String, token: String, ct: &'static str, name: &'static str| {
        let body = std::fs::read(fixture_path(name)).unwrap();
        s.http
            .put(format!("{}/v1/interviews/{id}/media", s.base))
            .bearer_auth(token)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let (good, good_token) = s.interview(&c).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(s.ws_url(&good, &good_token))
        .await
        .unwrap();
    let chunks = browser_chunks();
    for chunk in &chunks[..5] {
        ws.send(Message::binary(chunk.clone())).await.unwrap();
    }
    for (name, ct, status, code) in [
        ("not-media.bin", "video/webm", 422, "media_unreadable"),
        (
            "codec-vorbis-not-allowed.webm",
            "video/webm",
            415,
            "codec_not_allowed",
        ),
        (
            "truncated-mid-cluster.webm",
            "video/webm",
            422,
            "media_truncated",
        ),
    ] {
        let (id, token) = s.interview(&c).await;
        let r = put(id, token, ct, name).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{name}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], code, "{name}");
    }
    let (id, token) = s.interview(&c).await;
    let r = put(id, token, "application/pdf", "audio-pcm.wav")
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    for chunk in &chunks[5..] {
        ws.send(Message::binary(chunk.clone())).await.unwrap();
    }
    ws.send(Message::text(r#"{"type":"finish"}"#))
        .await
        .unwrap();
    let (texts, code) = read_to_close(&mut ws).await;
    assert_eq!(code, 1000, "{texts:?}");
    assert_eq!(texts.last().unwrap()["state"], "finished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_mid_segment_keeps_its_acknowledged_segments() {
    let s = server(|_| {}).await;
    let c = s.candidate(true);
    let (id, token) = s.interview(&c).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(s.ws_url(&id, &token))
        .await
        .unwrap();
    let mut acked = 0;
    for chunk in browser_chunks() {
        ws.send(Message::binary(chunk)).await.unwrap();
        while let Ok(Some(Ok(Message::Text(_)))) =
            tokio::time::timeout(Duration::from_millis(50), ws.next()).await
        {
            acked += 1;
        }
        if acked >= 2 {
            break;
        }
    }
    assert!(acked >= 2, "the first media segment was acknowledged");
    drop(ws);
    let mut shown = s.show(&id).await;
    for _ in 0..100 {
        if shown["state"] == "stopped" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        shown = s.show(&id).await;
    }
    assert_eq!(shown["state"], "stopped");
    assert_eq!(shown["end_reason"], "client_gone");
    assert!(shown["segments"].as_array().unwrap().len() >= acked);
    let rec = kiroku::recording::rebuild(&s.app, &InterviewId::parse(&id).unwrap()).unwrap();
    assert!(rec.segments as usize >= acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finish_ends_a_stream_in_flight_cleanly() {
    let s = server(|_| {}).await;
    let c = s.candidate(true);
    let (id, token) = s.interview(&c).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(s.ws_url(&id, &token))
        .await
        .unwrap();
    for chunk in browser_chunks().into_iter().take(8) {
        ws.send(Message::binary(chunk)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = s
        .http
        .post(format!("{}/v1/interviews/{id}/finish", s.base))
        .bearer_auth(SERVICE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let (texts, code) = read_to_close(&mut ws).await;
    assert_eq!(code, 1000);
    assert_eq!(texts.last().unwrap()["state"], "finished");
    assert!(
        texts
            .iter()
            .filter(|t| t["type"] == "segment.stored")
            .count()
            >= 2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_beyond_the_concurrent_capture_limit_is_refused_with_429() {
    let s = server(|c| c.limits.max_concurrent_interviews = 1).await;
    let c = s.candidate(true);
    let (a, a_token) = s.interview(&c).await;
    let (b, b_token) = s.interview(&c).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(s.ws_url(&a, &a_token))
        .await
        .unwrap();
    assert_eq!(refused_upgrade(&s.ws_url(&b, &b_token)).await, 429);
    ws.send(Message::text(r#"{"type":"finish"}"#))
        .await
        .unwrap();
    let (_, code) = read_to_close(&mut ws).await;
    assert_eq!(code, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_refuses_a_missing_or_wrong_credential() {
    let s = server(|_| {}).await;
    let c = s.candidate(true);
    let (id, _token) = s.interview(&c).await;
    let endpoints = [
        ("POST", "/v1/interviews".to_string()),
        ("GET", format!("/v1/interviews/{id}")),
        ("POST", format!("/v1/interviews/{id}/finish")),
        ("PUT", format!("/v1/interviews/{id}/media")),
    ];
    for (method, path) in &endpoints {
        for credential in [None, Some("wrong-token-wrong-token-wrong-token")] {
            let mut req = s
                .http
                .request(method.parse().unwrap(), format!("{}{path}", s.base))
                .body("{}");
            if let Some(t) = credential {
                req = req.bearer_auth(t);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 401, "{method} {path} with {credential:?}");
            assert!(r.json::<Value>().await.unwrap()["error"].is_string());
        }
    }
    // The service token is not an ingest token, and an ingest token is not a service token.
    assert_eq!(
        refused_upgrade(&format!(
            "{}?token={SERVICE}",
            s.ws_url(&id, "x").split('?').next().unwrap()
        ))
        .await,
        401
    );
    let r = s
        .http
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_during_the_stream_is_told_to_the_client_at_the_next_segment_boundary() {
    let s = server(|_| {}).await;
    let c = s.candidate(true);
    let (id, token) = s.interview(&c).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(s.ws_url(&id, &token))
        .await
        .unwrap();
    let mut chunks = browser_chunks().into_iter();
    let mut acked = 0;
    while acked < 2 {
        ws.send(Message::binary(
            chunks
                .next()
                .expect("a media segment is acknowledged first"),
        ))
        .await
        .unwrap();
        while let Ok(Some(Ok(Message::Text(_)))) =
            tokio::time::timeout(Duration::from_millis(50), ws.next()).await
        {
            acked += 1;
        }
    }
    common::withdraw(&s.app, &c, Scope::Record);
    for chunk in chunks {
        if ws.send(Message::binary(chunk)).await.is_err() {
            break;
        }
    }
    // The front-end ends the stream; its last segment's boundary is the next decision.
    let _ = ws.send(Message::text(r#"{"type":"finish"}"#)).await;
    let (texts, code) = read_to_close(&mut ws).await;
    assert_eq!(code, 4403, "{texts:?}");
    let ended = texts.last().unwrap();
    assert_eq!(ended["type"], "capture.ended");
    assert_eq!(ended["error"], "consent_withdrawn");
    assert_eq!(ended["segments"], 2);
    assert_eq!(s.show(&id).await["end_reason"], "consent_withdrawn");
}
