//! Two `kiroku serve` nodes as an operator runs them for more than one machine: each with a
//! data dir of its own (its spool, its audit markers), one PostgreSQL catalog (which holds
//! the wrapped keys and the audit chain too), one Garage bucket as the region, one keys
//! folder. An interview created on one node streams to the other; a node killed mid-stream
//! leaves its capture to the survivor and its spool to `regions drain --from`; both nodes
//! appending at once leave one audit chain that `kiroku audit verify` passes.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::garage::Garage;
use common::serve::{Served, free_port};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const SERVICE: &str = "service-token-for-the-postgres-nodes-test";
const LEASE: u64 = 3;

/// What the nodes share: the catalog's URL, the bucket, the keys folder.
struct Shared {
    root: tempfile::TempDir,
    catalog: String,
    keyring: String,
    garage: Garage,
}

impl Shared {
    fn new(bucket: &str) -> Shared {
        let root = tempfile::tempdir().unwrap();
        let catalog = common::postgres::catalog_url_for(&root.path().join("cluster"));
        let keyring = common::postgres::keyring_url_for(&root.path().join("cluster"));
        let garage = Garage::start(bucket);
        let shared = Shared {
            root,
            catalog,
            keyring,
            garage,
        };
        let s3 = shared.garage.s3_config();
        std::fs::write(
            shared.config(),
            format!(
                "default_region = \"jp\"\n[regions.jp]\ncountry = \"JP\"\nbackend = \"s3\"\nmaster_key_file = \"keys/jp.key\"\n\
                 [regions.jp.s3]\nbucket = \"{}\"\nregion = \"garage\"\nendpoint = \"{}\"\n\
                 path_style = true\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\n\
                 upload_timeout_seconds = 2\n",
                s3.bucket,
                s3.endpoint.unwrap(),
                s3.access_key_id.unwrap(),
                s3.secret_access_key.unwrap()
            ),
        )
        .unwrap();
        shared
    }

    fn config(&self) -> PathBuf {
        self.root.path().join("kiroku.toml")
    }

    /// Node `name`'s data dir. A node after the first gets the first one's secrets (the
    /// operator's signing key signs every node's receipts and checkpoints).
    fn data(&self, name: &str) -> PathBuf {
        let data = self.root.path().join(name);
        let first = self.root.path().join("a");
        if name != "a" && !data.exists() && first.join("secrets").exists() {
            std::fs::create_dir_all(data.join("secrets")).unwrap();
            for f in std::fs::read_dir(first.join("secrets")).unwrap() {
                let f = f.unwrap();
                std::fs::copy(f.path(), data.join("secrets").join(f.file_name())).unwrap();
            }
        }
        data
    }

    /// `kiroku` on node `name`'s data dir, configured as a node of this deployment.
    fn cmd(&self, name: &str) -> Command {
        let mut cmd = common::cli::kiroku_cmd(&self.data(name));
        cmd.arg("--config")
            .arg(self.config())
            .env("KIROKU_CATALOG", &self.catalog)
            .env("KIROKU_KEYS__DATABASE", &self.keyring)
            .env("KIROKU_KEYS__DIR", self.root.path().join("keys"))
            .env("KIROKU_SERVICE_TOKEN", SERVICE)
            .env("KIROKU_SERVER__CAPTURE_LEASE_SECONDS", LEASE.to_string());
        cmd
    }

    /// A command's last line of output, which must succeed.
    fn run(&self, name: &str, args: &[&str]) -> String {
        common::cli::last_line(&self.cmd(name).args(args).output().unwrap())
    }

    /// The notice and the recruiter `acme` every capture needs, through node A.
    fn privacy_basics(&self) {
        common::cli::privacy_basics_by(|args| self.run("a", args));
    }

    fn serve(&self, name: &str) -> Served {
        Served::start(self.cmd(name), free_port())
    }
}

/// A service call to the node at `base`, which must succeed; its JSON answer.
async fn call(base: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut r = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .bearer_auth(SERVICE);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_stream_on_postgres_leaves_every_acknowledged_segment_to_export() {
    let mut shared = Shared::new("kiroku-nodes-pg");
    let candidate =
        common::cli::recorded_candidate_by(|args| shared.run("a", args), "applicant-pg");
    let a = shared.serve("a");
    let mut b = shared.serve("b");

    // Created on node A, streamed to node B.
    let created = call(
        &a.base(),
        reqwest::Method::POST,
        "/v1/interviews",
        Some(json!({"candidate": candidate, "recruiter": "acme"})),
    )
    .await;
    let id = created["interview_id"].as_str().unwrap().to_string();
    let url = format!(
        "ws://{}/v1/interviews/{id}/stream?token={}",
        b.base().trim_start_matches("http://"),
        created["ingest_token"].as_str().unwrap()
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let media = common::fixtures::read("interview-vp8-opus.webm");
    let mut acked = Vec::new();
    'feed: for chunk in media.chunks(4_096) {
        ws.send(Message::binary(chunk.to_vec())).await.unwrap();
        while let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout(Duration::from_millis(30), ws.next()).await
        {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            acked.push(v["segment"]["index"].as_u64().unwrap());
            if acked.len() == 1 {
                // The bucket goes away: node B acknowledges what it keeps in its spool.
                shared.garage.stop();
            }
            if acked.len() == 3 {
                break 'feed;
            }
        }
    }
    // With the bucket away each segment waits out its upload before it is spooled.
    while acked.len() < 3 {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                acked.push(v["segment"]["index"].as_u64().unwrap());
            }
            other => panic!("no acknowledgement: {other:?}"),
        }
    }
    assert_eq!(acked, [0, 1, 2]);

    // Node B dies with SIGKILL, two acknowledged segments in its spool; after the lease node
    // A stops the capture as `node_lost`.
    b.kill();
    let path = format!("/v1/interviews/{id}");
    let shown =
        common::interviews::once_not_capturing(Duration::from_secs(LEASE * 6), async || {
            call(&a.base(), reqwest::Method::GET, &path, None).await
        })
        .await;
    assert_eq!(shown["state"], "stopped", "{shown}");
    assert_eq!(shown["end_reason"], "node_lost");
    common::interviews::assert_keeps_acknowledged(&shown, &acked);
    drop(a);

    // Node B is lost for good with segments in its spool: once the bucket is back they are
    // drained from node A's side, then the recording exports from node A, each segment
    // opened and proven.
    shared.garage.resume();
    let b_spool = shared.data("b").join("spool");
    let drained = shared.run(
        "a",
        &["regions", "drain", "--from", b_spool.to_str().unwrap()],
    );
    assert!(drained.starts_with("jp: uploaded "), "{drained}");
    assert!(
        !drained.starts_with("jp: uploaded 0,"),
        "B's spool held segments: {drained}"
    );
    assert!(drained.contains(", 0 left in"), "{drained}");
    let out = shared.root.path().join("exported.webm");
    shared.run(
        "a",
        &["recording", "export", &id, "--out", out.to_str().unwrap()],
    );
    assert!(std::fs::metadata(&out).unwrap().len() > 50_000);
    let streams = common::media::decode(&out);
    assert!(streams.iter().all(|s| s.frames > 0), "{streams:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_appending_at_once_leave_one_audit_chain_that_verifies() {
    let shared = Shared::new("kiroku-audit-pg");
    shared.privacy_basics();
    let a = shared.serve("a");
    let b = shared.serve("b");
    // Forty candidates, each granted `analyze`, half through each node, all at once.
    let mut work = Vec::new();
    for i in 0..40 {
        let node = if i % 2 == 0 { a.base() } else { b.base() };
        work.push(tokio::spawn(async move {
            let post = reqwest::Method::POST;
            let candidate = json!({"external_ref": format!("applicant-{i}"), "home_country": "JP"});
            let c = call(&node, post.clone(), "/v1/candidates", Some(candidate)).await;
            let id = c["candidate_id"].as_str().expect("a candidate id");
            let grant = json!({"scope": "analyze", "notice": "notice-2026-04"});
            call(
                &node,
                post,
                &format!("/v1/candidates/{id}/consents"),
                Some(grant),
            )
            .await;
        }));
    }
    for w in work {
        w.await.unwrap();
    }
    drop((a, b));
    // One chain: every entry follows the one before, whichever node wrote it.
    let entries =
        common::postgres::audit_lines(&shared.root.path().join("cluster"), "audit_entries");
    let granted = entries
        .iter()
        .filter(|l| l.contains("\"consent.granted\""))
        .count();
    assert_eq!(granted, 40, "{entries:?}");
    for name in ["a", "b"] {
        let report = shared.run(name, &["audit", "verify"]);
        assert!(report.contains("audit log is intact"), "{report}");
        assert!(
            report.contains(&format!("{} entries", entries.len())),
            "{report}"
        );
    }
}
