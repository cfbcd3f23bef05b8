//! kiroku killed (SIGKILL) in the middle of a streamed interview: every segment it had
//! acknowledged is still there after a restart, and the recording rebuilds from them.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

const SERVICE: &str = "service-token-for-the-crash-test-012345";

fn kiroku(data: &Path) -> Command {
    let mut c = common::kiroku_cmd(data);
    c.env("KIROKU_SERVICE_TOKEN", SERVICE);
    c
}

fn last_line(out: std::process::Output) -> String {
    common::last_line(&out)
}

async fn serve(data: &Path, port: u16) -> Child {
    let mut child = kiroku(data)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
            .await
            .is_ok()
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("kiroku serve did not come up on port {port}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_segments_survive_a_sigkill_and_rebuild_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let candidate = last_line(
        kiroku(data)
            .args(["candidate", "add", "--ref", "r", "--home-country", "JP"])
            .output()
            .unwrap(),
    );
    common::cli_privacy_basics(data);
    last_line(
        kiroku(data)
            .args([
                "consent",
                "grant",
                "--candidate",
                &candidate,
                "--scope",
                "record",
            ])
            .output()
            .unwrap(),
    );
    let port = free_port();
    let mut server = serve(data, port).await;
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("http://127.0.0.1:{port}/v1/interviews"))
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
        "ws://127.0.0.1:{port}/v1/interviews/{id}/stream?token={}",
        created["ingest_token"].as_str().unwrap()
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let media = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/interview-vp8-opus.webm"),
    )
    .unwrap();
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
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();

    let mut server = serve(data, port).await;
    let shown: Value = http
        .get(format!("http://127.0.0.1:{port}/v1/interviews/{id}"))
        .bearer_auth(SERVICE)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["state"], "stopped");
    assert_eq!(shown["end_reason"], "kiroku_restarted");
    let indexes: Vec<u64> = shown["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["index"].as_u64().unwrap())
        .collect();
    assert!(indexes.starts_with(&acked), "{indexes:?}");
    server.kill().unwrap();
    server.wait().unwrap();

    let out = data.join("after-crash.webm");
    let o = kiroku(data)
        .args(["recording", "export", &id, "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::metadata(&out).unwrap().len() > 100_000);
}
