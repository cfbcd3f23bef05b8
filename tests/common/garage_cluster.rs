//! A Garage cluster on loopback for the tests: three `garage server` processes, one per zone,
//! replication factor 3, joined into one layout, with one bucket and key. Any node can be
//! stopped and started again to play losing a machine.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::garage::{KEY_ID, SECRET, binary, spawn_server, stable_port};

/// One node of the cluster.
pub struct Node {
    dir: tempfile::TempDir,
    pub s3: u16,
    rpc: u16,
    child: Option<Child>,
}

/// Three Garage nodes holding every object three times.
pub struct Cluster {
    pub nodes: Vec<Node>,
    pub bucket: String,
}

impl Node {
    fn config(&self) -> PathBuf {
        self.dir.path().join("garage.toml")
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(binary())
            .arg("-c")
            .arg(self.config())
            .args(args)
            .output()
            .unwrap()
    }

    /// `garage <args>` on this node until it succeeds (a cluster takes a moment to agree).
    fn retry(&self, args: &[&str]) -> String {
        let start = Instant::now();
        loop {
            let out = self.cli(args);
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).to_string();
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "garage {args:?} kept failing: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Starts the node's server on its data.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        self.child = Some(spawn_server(&self.config(), self.dir.path()));
        self.retry(&["status"]);
    }

    /// Kills the node (SIGKILL), as a machine lost at once.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `http://127.0.0.1:<s3 port>`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Cluster {
    /// Starts three nodes in zones dc1..dc3, joins them and applies a layout with replication
    /// factor 3, then makes `bucket`, readable and writable with [`KEY_ID`]/[`SECRET`].
    pub fn start(bucket: &str) -> Cluster {
        let secret: String = (0..32)
            .map(|i| format!("{:02x}", (i * 53 + 7) % 256))
            .collect();
        let mut nodes = Vec::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let (s3, rpc, admin) = (stable_port(), stable_port(), stable_port());
            std::fs::write(
                dir.path().join("garage.toml"),
                format!(
                    "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\ndb_engine = \"sqlite\"\n\
                     replication_factor = 3\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
                     rpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret}\"\n\
                     [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3}\"\n\
                     root_domain = \".s3.garage.localhost\"\n\
                     [admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\nadmin_token = \"kiroku-test-admin\"\n",
                    d = dir.path().display()
                ),
            )
            .unwrap();
            let mut node = Node {
                dir,
                s3,
                rpc,
                child: None,
            };
            node.start();
            nodes.push(node);
        }
        let ids: Vec<String> = nodes
            .iter()
            .map(|n| n.retry(&["node", "id", "-q"]).trim().to_string())
            .collect();
        for (i, id) in ids.iter().enumerate().skip(1) {
            let short = id.split('@').next().unwrap();
            nodes[0].retry(&[
                "node",
                "connect",
                &format!("{short}@127.0.0.1:{}", nodes[i].rpc),
            ]);
        }
        for (i, id) in ids.iter().enumerate() {
            let short = id.split('@').next().unwrap();
            let zone = format!("dc{}", i + 1);
            nodes[0].retry(&["layout", "assign", "-z", &zone, "-c", "1G", short]);
        }
        nodes[0].retry(&["layout", "apply", "--version", "1"]);
        nodes[0].retry(&["bucket", "create", bucket]);
        nodes[0].retry(&["key", "import", "--yes", KEY_ID, SECRET]);
        nodes[0].retry(&[
            "bucket", "allow", "--read", "--write", "--owner", bucket, "--key", KEY_ID,
        ]);
        for n in &nodes {
            let start = Instant::now();
            while std::net::TcpStream::connect(("127.0.0.1", n.s3)).is_err() {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "S3 port never opened"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Cluster {
            nodes,
            bucket: bucket.into(),
        }
    }

    /// The region's `[regions.<id>.s3]` settings, talking to node `via`.
    pub fn s3_config(&self, via: usize) -> kiroku::config::S3Config {
        kiroku::config::S3Config {
            bucket: self.bucket.clone(),
            region: "garage".into(),
            endpoint: Some(self.nodes[via].endpoint()),
            path_style: true,
            profile: None,
            access_key_id: Some(KEY_ID.into()),
            secret_access_key: Some(SECRET.into()),
            upload_timeout_seconds: 10,
            spool_limit_bytes: 512 * 1024 * 1024,
        }
    }
}
