//! kiroku killed (SIGKILL) in the middle of a streamed interview: every segment it had
//! acknowledged is still there after a restart, and the recording rebuilds from them.

mod common;

use std::path::Path;
use std::time::Duration;

use common::cli;
use common::serve::{Served, free_port};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

const SERVICE: &str = "service-token-for-the-crash-test-012345";

/// `kiroku serve` on `data` and `port`, with the service token.
fn serve(data: &Path, port: u16) -> Served {
    let mut cmd = cli::kiroku_cmd(data);
    cmd.env("KIROKU_SERVICE_TOKEN", SERVICE);
    Served::start(cmd, port)
}

/// The JSON body of a service call.
async fn json(request: reqwest::RequestBuilder) -> Value {
    request
        .bearer_auth(SERVICE)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_segments_survive_a_sigkill_and_rebuild_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let candidate = cli::recorded_candidate(data, "r");
    let port = free_port();
    let mut server = serve(data, port);
    let http = reqwest::Client::new();
    let created = json(
        http.post(format!("{}/v1/interviews", server.base()))
            .json(&serde_json::json!({"candidate": candidate, "recruiter": "acme"})),
    )
    .await;
    let id = created["interview_id"].as_str().unwrap().to_string();
    let url = format!(
        "ws://127.0.0.1:{port}/v1/interviews/{id}/stream?token={}",
        created["ingest_token"].as_str().unwrap()
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let media = common::fixtures::read("interview-vp8-opus.webm");
    let mut acked = Vec::new();
    for chunk in media.chunks(8_192) {
        ws.send(Message::binary(chunk.to_vec())).await.unwrap();
        while let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout(Duration::from_millis(30), ws.next()).await
        {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            acked.push(v["segment"]["index"].as_u64().unwrap());
        }
        if acked.len() >= 3 {
            break;
        }
    }
    assert_eq!(
        acked,
        vec![0, 1, 2],
        "header and two media segments acknowledged before the kill"
    );
    server.kill(); // SIGKILL

    let mut server = serve(data, port);
    let shown = json(http.get(format!("{}/v1/interviews/{id}", server.base()))).await;
    assert_eq!(shown["state"], "stopped");
    assert_eq!(shown["end_reason"], "kiroku_restarted");
    common::interviews::assert_keeps_acknowledged(&shown, &acked);
    server.kill();

    let out = data.join("after-crash.webm");
    cli::run(
        data,
        &["recording", "export", &id, "--out", out.to_str().unwrap()],
    );
    assert!(std::fs::metadata(&out).unwrap().len() > 100_000);
    // Recovery finished the recording: players know how long what was kept lasts.
    let kept = shown["media_ms"].as_u64().unwrap() as f64 / 1000.0;
    assert!(kept >= 4.0, "{shown}");
    common::probe::assert_duration(&out, kept);
    let decoded = common::media::decode(&out);
    assert!(decoded.iter().all(|s| s.frames > 0), "{decoded:?}");
}
