//! Two `kiroku serve` nodes on one catalog (here the embedded SQLite of one data dir): an
//! interview created on one node streams to the other; a live capture's lease keeps every
//! other node's hands off it; a node killed mid-stream leaves its capture to be stopped by the
//! survivor once the lease has lapsed, every acknowledged segment kept.

mod common;

use std::path::Path;
use std::time::Duration;

use common::cli;
use common::serve::{Served, free_port};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

const SERVICE: &str = "service-token-for-the-nodes-test-01234";
/// Seconds a capture lease lasts in this test (30 by default).
const LEASE: u64 = 3;

/// A node: `kiroku serve` on `data` and `port` with a short capture lease.
fn node(data: &Path, port: u16) -> Served {
    let mut cmd = cli::kiroku_cmd(data);
    cmd.env("KIROKU_SERVICE_TOKEN", SERVICE)
        .env("KIROKU_SERVER__CAPTURE_LEASE_SECONDS", LEASE.to_string());
    Served::start(cmd, port)
}

async fn get(node: &Served, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}{path}", node.base()))
        .bearer_auth(SERVICE)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// An interview for `candidate` created on node `created_on` and streamed to the node on
/// port `streamed_to`: its id and the open socket.
async fn stream_between(
    candidate: &str,
    created_on: &Served,
    streamed_to: u16,
) -> (String, Socket) {
    let created: Value = reqwest::Client::new()
        .post(format!("{}/v1/interviews", created_on.base()))
        .bearer_auth(SERVICE)
        .json(&serde_json::json!({"candidate": candidate, "recruiter": "acme"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["interview_id"].as_str().unwrap().to_string();
    let url = format!(
        "ws://127.0.0.1:{streamed_to}/v1/interviews/{id}/stream?token={}",
        created["ingest_token"].as_str().unwrap()
    );
    let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    (id, ws)
}

/// Sends `chunks` on the socket, collecting the indexes of the segments acknowledged.
async fn send<S>(
    ws: &mut S,
    chunks: &mut std::slice::Chunks<'_, u8>,
    until_acks: usize,
    acked: &mut Vec<u64>,
) where
    S: SinkExt<Message>
        + StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + Unpin,
    <S as futures_util::Sink<Message>>::Error: std::fmt::Debug,
{
    while acked.len() < until_acks {
        let chunk = chunks
            .next()
            .expect("acknowledged before the media ran out");
        ws.send(Message::binary(chunk.to_vec())).await.unwrap();
        while let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout(Duration::from_millis(30), ws.next()).await
        {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            acked.push(v["segment"]["index"].as_u64().unwrap());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_stream_leaves_its_capture_to_the_other_node_after_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let candidate = cli::recorded_candidate(data, "applicant-n");
    let a = node(data, free_port());
    let b_port = free_port();
    let mut b = node(data, b_port);

    // Created on node A, streamed to node B.
    let (id, mut ws) = stream_between(&candidate, &a, b_port).await;
    let media = common::fixtures::read("interview-vp8-opus.webm");
    let mut chunks = media.chunks(4_096);
    let mut acked = Vec::new();
    send(&mut ws, &mut chunks, 2, &mut acked).await;

    // Longer than a lease passes: node B renews its claim, so node A leaves the capture be.
    tokio::time::sleep(Duration::from_secs(LEASE * 2)).await;
    let shown = get(&a, &format!("/v1/interviews/{id}")).await;
    assert_eq!(shown["state"], "capturing", "{shown}");
    send(&mut ws, &mut chunks, 3, &mut acked).await;
    assert_eq!(acked, [0, 1, 2]);

    // Node B dies; after the lease, node A stops the capture, keeping what was acknowledged.
    b.kill();
    let path = format!("/v1/interviews/{id}");
    let shown =
        common::interviews::once_not_capturing(Duration::from_secs(LEASE * 5), async || {
            get(&a, &path).await
        })
        .await;
    assert_eq!(shown["state"], "stopped", "{shown}");
    assert_eq!(shown["end_reason"], "node_lost");
    common::interviews::assert_keeps_acknowledged(&shown, &acked);
    drop(a);
    let out = data.join("after-node-lost.webm");
    cli::run(
        data,
        &["recording", "export", &id, "--out", out.to_str().unwrap()],
    );
    assert!(std::fs::metadata(&out).unwrap().len() > 50_000);
}

/// `finish` arrives at the node that does not hold the stream: it answers 202 `finishing`,
/// and the node that holds the stream ends it within a couple of seconds, as `finished`, with
/// the capture's last message on the socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finish_sent_to_one_node_ends_the_stream_the_other_node_holds() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let candidate = cli::recorded_candidate(data, "applicant-f");
    let a = node(data, free_port());
    let b_port = free_port();
    let b = node(data, b_port);
    let http = reqwest::Client::new();
    let (id, mut ws) = stream_between(&candidate, &b, b_port).await;
    let media = common::fixtures::read("interview-vp8-opus.webm");
    let mut chunks = media.chunks(4_096);
    let mut acked = Vec::new();
    send(&mut ws, &mut chunks, 2, &mut acked).await;

    let r = http
        .post(format!("{}/v1/interviews/{id}/finish", a.base()))
        .bearer_auth(SERVICE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["state"], "finishing");
    // Node B ends the stream: its last message says so, then it closes.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Text(t) = m {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["type"] == "capture.ended" {
                    return v;
                }
            }
        }
        panic!("the socket closed without capture.ended");
    })
    .await
    .expect("node B ended the stream");
    assert_eq!(ended["state"], "finished", "{ended}");
    let shown = get(&a, &format!("/v1/interviews/{id}")).await;
    assert_eq!(shown["state"], "finished");
    assert!(shown["segments"].as_array().unwrap().len() >= acked.len());
    drop(b);
}

/// Two nodes both run their delivery loops over one outbox: each `recording.ready` reaches
/// the recruiter's webhook exactly once, whichever node sends it (a node claims a recipient
/// in the catalog before it sends that recipient's deliveries).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_delivery_is_sent_once_while_two_nodes_run_their_delivery_loops() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let candidate = cli::recorded_candidate(data, "applicant-d");
    cli::grant(
        data,
        &candidate,
        "share.recording",
        &["--recipient", "acme", "--reference", "form-2026-0031"],
    );
    let key = cli::run(data, &["recruiter", "rotate", "acme"]);
    // The recruiter's endpoint: every body it receives.
    let got: std::sync::Arc<std::sync::Mutex<Vec<Value>>> = Default::default();
    let seen = got.clone();
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                seen.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
                // Slow enough that both nodes see the delivery due meanwhile.
                tokio::time::sleep(Duration::from_millis(300)).await;
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hook).await.unwrap() });
    let start = |port| {
        let mut cmd = cli::kiroku_cmd(data);
        cmd.env("KIROKU_SERVICE_TOKEN", SERVICE)
            .env("KIROKU_WEBHOOKS__ALLOW_PRIVATE_ADDRESSES", "true");
        Served::start(cmd, port)
    };
    let (a, b) = (start(free_port()), start(free_port()));
    let r = reqwest::Client::new()
        .put(format!("{}/v1/recruiter/webhook", a.base()))
        .bearer_auth(&key)
        .json(&serde_json::json!({"url": hook_url}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Five interviews finish; each queues one recording.ready in the shared outbox.
    let mut interviews = Vec::new();
    for _ in 0..5 {
        interviews.push(cli::run(
            data,
            &[
                "ingest",
                "--candidate",
                &candidate,
                "--recruiter",
                "acme",
                "fixtures/audio-opus.ogg",
            ],
        ));
    }
    let ready = |got: &[Value]| -> Vec<String> {
        got.iter()
            .filter(|v| v["type"] == "recording.ready")
            .map(|v| v["interview_id"].as_str().unwrap().to_string())
            .collect()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while ready(&got.lock().unwrap()).len() < interviews.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not all delivered: {:?}",
            got.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Both loops keep running a while longer: nothing is sent twice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut delivered = ready(&got.lock().unwrap());
    delivered.sort();
    interviews.sort();
    assert_eq!(delivered, interviews, "each recording.ready exactly once");
    // The recruiter pulls from either node: the same bytes.
    let mut pulled = Vec::new();
    for node in [&a, &b] {
        let r = reqwest::Client::new()
            .get(format!(
                "{}/v1/recruiter/interviews/{}/recording",
                node.base(),
                interviews[0]
            ))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        pulled.push(r.bytes().await.unwrap());
    }
    assert!(!pulled[0].is_empty());
    assert_eq!(pulled[0], pulled[1]);
    drop((a, b));
}

/// A withdrawal of `record` sent to node A stops the stream node B holds at its next segment
/// boundary, as a withdrawal on B itself would: close 4403, `consent_withdrawn`, the
/// segments acknowledged before kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_sent_to_one_node_stops_the_stream_the_other_node_holds() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let candidate = cli::recorded_candidate(data, "applicant-w");
    let a = node(data, free_port());
    let b_port = free_port();
    let b = node(data, b_port);
    let http = reqwest::Client::new();
    let (id, mut ws) = stream_between(&candidate, &a, b_port).await;
    let media = common::fixtures::read("interview-vp8-opus.webm");
    let mut chunks = media.chunks(4_096);
    let mut acked = Vec::new();
    send(&mut ws, &mut chunks, 2, &mut acked).await;

    let consents = get(&a, &format!("/v1/candidates/{candidate}/consents")).await;
    let record = consents["current"][0]["consent_id"].as_str().unwrap();
    let r = http
        .post(format!(
            "{}/v1/candidates/{candidate}/consents/{record}/withdraw",
            a.base()
        ))
        .bearer_auth(SERVICE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Node B meets the withdrawal at its next boundary.
    let mut ended = None;
    'feed: for chunk in chunks {
        if ws.send(Message::binary(chunk.to_vec())).await.is_err() {
            break;
        }
        while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(20), ws.next()).await {
            match m {
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap();
                    if v["type"] == "capture.ended" {
                        ended = Some(v);
                        break 'feed;
                    }
                }
                Ok(Message::Close(_)) | Err(_) => break 'feed,
                _ => {}
            }
        }
    }
    let ended = ended.expect("node B ended the stream with capture.ended");
    assert_eq!(ended["error"], "consent_withdrawn", "{ended}");
    let shown = get(&a, &format!("/v1/interviews/{id}")).await;
    assert_eq!(shown["state"], "stopped", "{shown}");
    let kept = shown["segments"].as_array().unwrap().len();
    assert!(kept >= acked.len(), "{shown}");
    drop(b);
}
