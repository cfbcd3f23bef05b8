//! The ingest API over real HTTP and WebSocket on loopback, as a front-end uses it.

mod common;

use std::time::Duration;

use common::fixtures::{self, browser_chunks};
use common::server::{self, As, SERVICE, Server};
use common::ws::{finish, read_to_close, send_until_acked};
use common::{app, candidates};
use futures_util::{SinkExt, StreamExt};
use kiroku::config::Config;
use kiroku::consent::Scope;
use kiroku::ids::{CandidateId, InterviewId};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// A served kiroku ready to capture (a notice and the recruiter `acme`), `tweak` applied.
async fn server(tweak: impl FnOnce(&mut Config)) -> Server {
    let s = server::start(tweak).await;
    app::privacy_basics(&s.app);
    s
}

impl Server {
    /// A candidate in Japan, with `record` consent if `record`.
    fn candidate(&self, record: bool) -> CandidateId {
        let scopes: &[Scope] = if record { &[Scope::Record] } else { &[] };
        candidates::add(&self.app, "JP", scopes)
    }

    async fn create(&self, body: Value) -> (u16, Value) {
        let (status, _, bytes) = self
            .raw("POST", "/v1/interviews", As::Service, Some(body), &[])
            .await;
        (status, serde_json::from_slice(&bytes).unwrap())
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

    async fn show(&self, id: &str) -> Value {
        let (status, _, bytes) = self
            .raw(
                "GET",
                &format!("/v1/interviews/{id}"),
                As::Service,
                None,
                &[],
            )
            .await;
        assert_eq!(status, 200);
        serde_json::from_slice(&bytes).unwrap()
    }
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
    let mut ws = s.connect(&id, &token).await;
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
                            .join(row.object_key.as_str())
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

    s.assert_exports_as(&id, "chromium-mediarecorder.webm");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_without_record_consent_is_refused_with_403_before_the_upgrade() {
    let s = server(|_| {}).await;
    let c = s.candidate(false);
    let (id, token) = s.interview(&c).await;
    assert_eq!(refused_upgrade(&s.ws_url(&id, &token)).await, 403);
    let r = s.put_media(&id, &token, None, vec![1u8; 10]).await;
    // Refused before the token is spent: the same token meets the same refusal, by PUT too.
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "no_record_consent"
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
        .put_media(
            &id,
            &token,
            Some("audio/wav"),
            fixtures::read("audio-pcm.wav"),
        )
        .await;
    assert_eq!(r.status(), 200);
    let again = s.put_media(&id, &token, None, vec![0u8; 4]).await;
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
    let r = short.put_media(&id, &token, None, vec![0u8; 4]).await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "ingest_token_expired"
    );
}

/// One bad request: (what is wrong, method, path, body, status, error code).
type BadRequest<'a> = (&'a str, &'a str, &'a str, Vec<u8>, u16, &'a str);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_a_precise_status_and_a_json_body() {
    let s = server(|_| {}).await;
    let c = s.candidate(true);
    let body = |v: Value| v.to_string().into_bytes();
    let other = CandidateId::new_random().to_string();
    let c = c.to_string();
    #[rustfmt::skip]
    let rows: [BadRequest; 8] = [
        ("cut-off JSON", "POST", "/v1/interviews", b"{\"candidate\": ".to_vec(), 400, "malformed_json"),
        ("an unknown field", "POST", "/v1/interviews", body(json!({"candidate": c, "recruiter": "acme", "extra": 1})), 400, "malformed_json"),
        ("a candidate id that is a path", "POST", "/v1/interviews", body(json!({"candidate": "../../etc", "recruiter": "acme"})), 400, "invalid_id"),
        ("a recruiter handle that is a path", "POST", "/v1/interviews", body(json!({"candidate": c, "recruiter": "Acme/.."})), 400, "invalid_id"),
        ("a candidate nobody added", "POST", "/v1/interviews", body(json!({"candidate": other, "recruiter": "acme"})), 404, "unknown_candidate"),
        ("a content type that is not media", "POST", "/v1/interviews", body(json!({"candidate": c, "recruiter": "acme", "content_type": "application/pdf"})), 415, "unsupported_content_type"),
        ("a body past the JSON limit", "POST", "/v1/interviews", vec![b' '; 70_000], 413, "body_rejected"),
        ("an interview id that is a path", "GET", "/v1/interviews/..%2F..%2Fsecrets", Vec::new(), 400, "invalid_id"),
    ];
    for (what, method, path, body, status, code) in rows {
        let r = match method {
            "POST" => s.post_bytes(path, body).await,
            _ => s
                .http
                .get(format!("{}{path}", s.base))
                .bearer_auth(SERVICE)
                .send()
                .await
                .unwrap(),
        };
        assert_eq!(r.status().as_u16(), status, "{what}: {code}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], code, "{what}");
        assert!(v["message"].is_string(), "{what}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_media_over_put_gets_a_precise_error_and_other_interviews_go_on() {
    let s = server(|_| {}).await;
    let c = s.candidate(true);
    let server = &s;
    let put = move |id: String, token: String, ct: &'static str, name: &'static str| async move {
        server
            .put_media(&id, &token, Some(ct), fixtures::read(name))
            .await
    };
    let (good, good_token) = s.interview(&c).await;
    let mut ws = s.connect(&good, &good_token).await;
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
        let r = put(id, token, ct, name).await;
        assert_eq!(r.status().as_u16(), status, "{name}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], code, "{name}");
    }
    let (id, token) = s.interview(&c).await;
    let r = put(id, token, "application/pdf", "audio-pcm.wav").await;
    assert_eq!(r.status(), 415);
    for chunk in &chunks[5..] {
        ws.send(Message::binary(chunk.clone())).await.unwrap();
    }
    let (texts, code) = finish(&mut ws).await;
    assert_eq!(code, 1000, "{texts:?}");
    assert_eq!(texts.last().unwrap()["state"], "finished");
}

/// A client that disconnects and does not resume within the grace period (1 s here) ends the
/// interview as `client_gone`, every acknowledged segment kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_and_does_not_resume_keeps_its_acknowledged_segments() {
    let s = server(|c| c.resume_grace_seconds = 1).await;
    let c = s.candidate(true);
    let (id, token) = s.interview(&c).await;
    let mut ws = s.connect(&id, &token).await;
    let acked = send_until_acked(&mut ws, &mut browser_chunks().into_iter(), 2).await;
    assert!(acked >= 2, "the first media segment was acknowledged");
    drop(ws);
    let mut shown = s.show(&id).await;
    assert_eq!(shown["state"], "capturing", "kept for a resume at first");
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
    let mut ws = s.connect(&id, &token).await;
    for chunk in browser_chunks().into_iter().take(8) {
        ws.send(Message::binary(chunk)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _, _) = s
        .raw(
            "POST",
            &format!("/v1/interviews/{id}/finish"),
            As::Service,
            None,
            &[],
        )
        .await;
    assert_eq!(status, 202);
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
    let mut ws = s.connect(&a, &a_token).await;
    assert_eq!(refused_upgrade(&s.ws_url(&b, &b_token)).await, 429);
    let (_, code) = finish(&mut ws).await;
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
            // A body but no content type: the credential is all that is wrong.
            let mut req = s
                .http
                .request(method.parse().unwrap(), format!("{}{path}", s.base))
                .body("{}");
            if let Some(t) = credential {
                req = req.bearer_auth(t);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 401, "{method} {path} with {credential:?}");
            let v: Value = r.json().await.unwrap();
            assert!(
                v["error"].is_string(),
                "{method} {path} with {credential:?}: {v}"
            );
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
    let (status, _, _) = s.raw("GET", "/healthz", As::Nobody, None, &[]).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_during_the_stream_is_told_to_the_client_at_the_next_segment_boundary() {
    let s = server(|_| {}).await;
    let c = s.candidate(true);
    let (id, token) = s.interview(&c).await;
    let mut ws = s.connect(&id, &token).await;
    let mut chunks = browser_chunks().into_iter();
    let acked = send_until_acked(&mut ws, &mut chunks, 2).await;
    assert!(acked >= 2, "a media segment is acknowledged first");
    candidates::withdraw(&s.app, &c, Scope::Record);
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

/// Chrome's H.264-in-Matroska and AV1-in-WebM recordings (real headless Chromium,
/// `MediaRecorder` with those MIME types) streamed live over the WebSocket in the very chunks
/// the browser produced, one every timeslice as the browser sends them: every segment is
/// acknowledged in order, the recording keeps its container, and the export decodes to the
/// same streams, every frame and the same duration as the browser's own recording.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chrome_h264_in_matroska_and_av1_in_webm_stream_live_and_export_the_same_frames() {
    let s = server(|_| {}).await;
    let c = s.candidate(true);
    let record = |name: &'static str, mime: &'static str| {
        let (s, c) = (&s, &c);
        async move {
            let (status, body) = s
                .create(
                    json!({"candidate": c.to_string(), "recruiter": "acme", "content_type": mime}),
                )
                .await;
            assert_eq!(status, 201, "{body}");
            let id = body["interview_id"].as_str().unwrap().to_string();
            let mut ws = s.connect(&id, body["ingest_token"].as_str().unwrap()).await;
            let chunks = fixtures::recorded_chunks(name);
            assert!(chunks.len() >= 10, "{name}");
            for chunk in chunks {
                if ws.send(Message::binary(chunk)).await.is_err() {
                    panic!(
                        "{name}: the stream was closed early: {:?}",
                        read_to_close(&mut ws).await
                    );
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let (texts, code) = finish(&mut ws).await;
            assert_eq!(code, 1000, "{name}: {texts:?}");
            let acked: Vec<u64> = texts
                .iter()
                .filter(|t| t["type"] == "segment.stored")
                .map(|t| t["segment"]["index"].as_u64().unwrap())
                .collect();
            assert!(acked.len() >= 3, "{name}: {texts:?}");
            assert_eq!(acked, (0..acked.len() as u64).collect::<Vec<_>>(), "{name}");
            let ended = texts.last().unwrap();
            assert_eq!(ended["type"], "capture.ended", "{name}");
            assert_eq!(ended["state"], "finished", "{name}");
            id
        }
    };
    // Both browsers' streams at once, as two candidates' front-ends would send them.
    let (h264, av1) = futures_util::future::join(
        record(
            "chromium-mediarecorder-h264-opus.mkv",
            "video/x-matroska;codecs=avc1,opus",
        ),
        record(
            "chromium-mediarecorder-av1-opus.webm",
            "video/webm;codecs=av01,opus",
        ),
    )
    .await;
    for (id, name, profile, container, doctype) in [
        (
            h264,
            "chromium-mediarecorder-h264-opus.mkv",
            "matroska",
            "video/x-matroska",
            &b"matroska"[..],
        ),
        (
            av1,
            "chromium-mediarecorder-av1-opus.webm",
            "webm",
            "video/webm",
            &b"webm"[..],
        ),
    ] {
        let shown = s.show(&id).await;
        assert_eq!(shown["state"], "finished", "{name}");
        assert_eq!(shown["profile"], profile, "{name}");
        // Kept as recorded; the status names the browsers that may not play it.
        let may_not: Vec<&str> = shown["playback"]["may_not_play_in"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["browser"].as_str().unwrap())
            .collect();
        let (codecs, browsers) = if profile == "matroska" {
            (json!(["h264", "opus"]), vec!["firefox", "safari"])
        } else {
            (json!(["av1", "opus"]), vec!["safari"])
        };
        assert_eq!(shown["playback"]["codecs"], codecs, "{name}");
        assert_eq!(may_not, browsers, "{name}: {}", shown["playback"]);
        let export = s.dir.path().join(format!("{name}.export"));
        let rec =
            kiroku::recording::export(&s.app, &InterviewId::parse(&id).unwrap(), &export).unwrap();
        assert_eq!(rec.content_type, container, "{name}");
        // The EBML header's DocType, right after the magic: the container the remux wrote.
        let head = std::fs::read(&export).unwrap();
        assert!(
            head[..64].windows(doctype.len()).any(|w| w == doctype),
            "{name}: export is not {container}"
        );
        common::media::assert_same_media(&fixtures::path(name), &export);
    }
}

/// H.264 cannot go into WebM: Chrome's H.264 recording declared as WebM is refused over the
/// WebSocket with `codec_not_allowed` (4415), naming the codec.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_declared_as_webm_is_refused_as_a_codec_not_allowed() {
    let s = server(|_| {}).await;
    let c = s.candidate(true);
    let (status, body) = s
        .create(json!({"candidate": c.to_string(), "recruiter": "acme", "content_type": "video/webm;codecs=h264,opus"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["interview_id"].as_str().unwrap();
    let mut ws = s.connect(id, body["ingest_token"].as_str().unwrap()).await;
    // As the browser sends: one chunk per timeslice, until the server answers. (Bytes sent
    // after the server closed would make it reset the connection, losing its close frame.)
    let mut first = None;
    for chunk in fixtures::recorded_chunks("chromium-mediarecorder-h264-opus.mkv") {
        ws.send(Message::binary(chunk)).await.unwrap();
        if let Ok(msg) = tokio::time::timeout(Duration::from_millis(500), ws.next()).await {
            first = msg;
            break;
        }
    }
    let first = first
        .expect("the server answers before the recording ends")
        .unwrap();
    let Message::Text(t) = first else {
        panic!("expected capture.ended first, got {first:?}")
    };
    let (mut texts, code) = read_to_close(&mut ws).await;
    texts.insert(0, serde_json::from_str(t.as_str()).unwrap());
    assert_eq!(code, 4415, "{texts:?}");
    let ended = texts.last().unwrap();
    assert_eq!(ended["error"], "codec_not_allowed", "{texts:?}");
    assert!(
        ended["message"].as_str().unwrap().contains("video/x-h264"),
        "{ended}"
    );
}

/// Safari's MediaRecorder sends fragmented MP4 (H.264 + AAC), one timeslice of fragments at a
/// time behind one init segment. Streamed live over the WebSocket so, every segment is
/// acknowledged in order, the recording stays MP4 (`mp4` profile), its status says it plays in
/// every browser, and the export decodes to every frame of the input.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn safaris_fragmented_mp4_streams_live_and_exports_every_frame() {
    let s = server(|_| {}).await;
    let c = s.candidate(true);
    let name = "safari-like-fmp4-h264-aac.mp4";
    let (status, body) = s
        .create(json!({"candidate": c.to_string(), "recruiter": "acme",
                       "content_type": "video/mp4;codecs=\"avc1.42E01E,mp4a.40.2\""}))
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["interview_id"].as_str().unwrap().to_string();
    let mut ws = s.connect(&id, body["ingest_token"].as_str().unwrap()).await;
    for chunk in fixtures::mp4_timeslices(name) {
        ws.send(Message::binary(chunk)).await.unwrap();
    }
    let (texts, code) = finish(&mut ws).await;
    assert_eq!(code, 1000, "{texts:?}");
    let acked: Vec<u64> = texts
        .iter()
        .filter(|t| t["type"] == "segment.stored")
        .map(|t| t["segment"]["index"].as_u64().unwrap())
        .collect();
    assert!(acked.len() >= 3, "{texts:?}");
    assert_eq!(acked, (0..acked.len() as u64).collect::<Vec<_>>());
    let shown = s.show(&id).await;
    assert_eq!(shown["state"], "finished");
    assert_eq!(shown["profile"], "mp4");
    assert_eq!(shown["playback"]["content_type"], "video/mp4");
    assert_eq!(shown["playback"]["codecs"], json!(["h264", "aac"]));
    assert_eq!(shown["playback"]["may_not_play_in"], json!([]));
    let export = s.dir.path().join("safari.export.mp4");
    let rec =
        kiroku::recording::export(&s.app, &InterviewId::parse(&id).unwrap(), &export).unwrap();
    assert_eq!(rec.content_type, "video/mp4");
    assert_eq!(&std::fs::read(&export).unwrap()[4..8], b"ftyp");
    common::media::assert_same_media(&fixtures::path(name), &export);
}

/// A plain MP4 (its `moov` after its `mdat`) cannot be cut as it arrives: over the live
/// WebSocket it is refused at once with `mp4_not_fragmented` (4422) and a message that points
/// to the upload; the same file through the chunked PUT is recorded whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_mp4_is_refused_on_the_live_stream_and_recorded_as_an_upload() {
    let s = server(|_| {}).await;
    let c = s.candidate(true);
    let name = "non-fragmented-h264-aac.mp4";
    let media = fixtures::read(name);
    let create = || {
        s.create(
            json!({"candidate": c.to_string(), "recruiter": "acme", "content_type": "video/mp4"}),
        )
    };
    let (status, body) = create().await;
    assert_eq!(status, 201, "{body}");
    let id = body["interview_id"].as_str().unwrap().to_string();
    let mut ws = s.connect(&id, body["ingest_token"].as_str().unwrap()).await;
    let mut first = None;
    for chunk in media.chunks(16 * 1024) {
        ws.send(Message::binary(chunk.to_vec())).await.unwrap();
        if let Ok(msg) = tokio::time::timeout(Duration::from_millis(500), ws.next()).await {
            first = msg;
            break;
        }
    }
    let first = first
        .expect("the server answers before the file ends")
        .unwrap();
    let Message::Text(t) = first else {
        panic!("expected capture.ended first, got {first:?}")
    };
    let (mut texts, code) = read_to_close(&mut ws).await;
    texts.insert(0, serde_json::from_str(t.as_str()).unwrap());
    assert_eq!(code, 4422, "{texts:?}");
    let ended = texts.last().unwrap();
    assert_eq!(ended["error"], "mp4_not_fragmented", "{texts:?}");
    assert!(
        ended["message"].as_str().unwrap().contains("PUT"),
        "{ended}"
    );
    assert_eq!(s.show(&id).await["end_reason"], "mp4_not_fragmented");

    let (status, body) = create().await;
    assert_eq!(status, 201, "{body}");
    let id = body["interview_id"].as_str().unwrap().to_string();
    let r = s
        .put_media(
            &id,
            body["ingest_token"].as_str().unwrap(),
            Some("video/mp4"),
            media,
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(s.show(&id).await["state"], "finished");
    s.assert_exports_as(&id, name);
}

/// The client sets media timestamps; real seconds it cannot. At 150 kbit/s (18.75 KB per
/// second, 10 s of grace), a live stream that sends 225 KB at once (a file whose media time
/// never advances, so the media-time check cannot see it) ends with 4413
/// `bitrate_too_high`; a real 10 s recording of the same size uploaded at once, where faster
/// than real time is the point, is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_stream_faster_than_real_time_is_stopped_but_an_upload_is_not() {
    let s = server(|c| c.limits.max_stream_kbps = 150).await;
    let c = s.candidate(true);
    let media = fixtures::read("timestamps-never-advance.webm");
    let (id, token) = s.interview(&c).await;
    let mut ws = s.connect(&id, &token).await;
    // Sends until the server says the capture ended (acknowledgements may come first).
    let mut texts: Vec<Value> = Vec::new();
    'send: for chunk in media.chunks(16_384) {
        if ws.send(Message::binary(chunk.to_vec())).await.is_err() {
            break;
        }
        while let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout(Duration::from_millis(100), ws.next()).await
        {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            let ended = v["type"] == "capture.ended";
            texts.push(v);
            if ended {
                break 'send;
            }
        }
    }
    let (rest, code) = read_to_close(&mut ws).await;
    texts.extend(rest);
    assert_eq!(code, 4413, "{texts:?}");
    assert_eq!(
        texts.last().unwrap()["error"],
        "bitrate_too_high",
        "{texts:?}"
    );
    let (id, token) = s.interview(&c).await;
    let upload = fixtures::read("interview-vp8-opus.webm");
    assert!(
        upload.len() > 190_000,
        "more than the live allowance at the start"
    );
    let r = s.put_media(&id, &token, Some("video/webm"), upload).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}
