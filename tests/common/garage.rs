//! A real S3-compatible store for the tests: a Garage node started on loopback with a generated
//! config, one bucket and one key. It can be stopped and started again on the same data, to
//! play an outage. A missing `garage` binary fails the test loudly (`scripts/setup.sh`
//! installs it with `cargo install garage --locked`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const KEY_ID: &str = "GK0123456789abcdef01234567";
pub const SECRET: &str = "5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7";

pub struct Garage {
    dir: tempfile::TempDir,
    pub endpoint: String,
    pub bucket: String,
    child: Option<Child>,
}

/// A port below the kernel's ephemeral range (32768 and up), handed out once per test
/// process. A stopped node must get its ports back when it resumes: a port from the ephemeral
/// range can meanwhile become the source port of some client's connection, and the node's
/// restart then fails with "address in use".
pub fn stable_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(
        0,
        20_000 + (std::process::id() % 600) as u16 * 20,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    loop {
        let port = NEXT.fetch_add(1, Ordering::SeqCst);
        assert!(port < 32_000, "the tests ran out of Garage ports");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The `garage` binary: on PATH or where `cargo install` puts it.
pub fn binary() -> PathBuf {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo/bin")));
    for dir in candidates {
        let p = dir.join("garage");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "the S3 tests need Garage and it is not installed: run `bash scripts/setup.sh` \
         (it runs `cargo install garage --locked`)"
    );
}

impl Garage {
    /// Starts a node with one bucket, readable and writable with [`KEY_ID`]/[`SECRET`].
    pub fn start(bucket: &str) -> Garage {
        let dir = tempfile::tempdir().unwrap();
        let (s3, rpc, admin) = (stable_port(), stable_port(), stable_port());
        let secret: String = (0..32)
            .map(|i| format!("{:02x}", (i * 37 + s3 as usize) % 256))
            .collect();
        let cfg = format!(
            "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\ndb_engine = \"sqlite\"\n\
             replication_factor = 1\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
             rpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret}\"\n\
             [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3}\"\n\
             root_domain = \".s3.garage.localhost\"\n\
             [admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\nadmin_token = \"kiroku-test-admin\"\n",
            d = dir.path().display()
        );
        std::fs::write(dir.path().join("garage.toml"), cfg).unwrap();
        let mut g = Garage {
            dir,
            endpoint: format!("http://127.0.0.1:{s3}"),
            bucket: bucket.into(),
            child: None,
        };
        g.resume();
        let node = g.cli(&["node", "id", "-q"]);
        let node = node.trim().split('@').next().unwrap().to_string();
        g.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]);
        g.cli(&["layout", "apply", "--version", "1"]);
        g.retry_cli(&["bucket", "create", bucket]);
        g.cli(&["key", "import", "--yes", KEY_ID, SECRET]);
        g.cli(&[
            "bucket", "allow", "--read", "--write", "--owner", bucket, "--key", KEY_ID,
        ]);
        g.wait_for_s3();
        g
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("garage.toml")
    }

    /// `garage -c <config> <args>`.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(binary());
        cmd.arg("-c").arg(self.config()).args(args);
        cmd
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = self.command(args).output().unwrap();
        assert!(
            out.status.success(),
            "garage {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// A layout takes a moment to apply; bucket creation waits for it.
    fn retry_cli(&self, args: &[&str]) -> String {
        let start = Instant::now();
        loop {
            let out = self.command(args).output().unwrap();
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).to_string();
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "garage {args:?} kept failing: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Stops the node (SIGKILL): the S3 endpoint is gone until [`Garage::resume`].
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the node on its data and waits until it answers.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        self.spawn();
        let start = Instant::now();
        loop {
            self.respawn_if_exited();
            let ok = self
                .command(&["status"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap()
                .success();
            if ok {
                break;
            }
            if start.elapsed() > Duration::from_secs(60) {
                let log =
                    std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
                let tail: String = log.lines().rev().take(30).collect::<Vec<_>>().join("\n");
                panic!(
                    "garage did not start within 60 s; the end of its log, newest first:\n{tail}"
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        if self.child.is_some() && Path::new(&self.dir.path().join("meta")).exists() {
            self.wait_for_s3();
        }
    }

    /// A node that exited at start (a port still held by a connection of the process
    /// before it) is started again while [`Garage::resume`] waits.
    fn respawn_if_exited(&mut self) {
        let exited = self
            .child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
        if exited {
            self.child = None;
            std::thread::sleep(Duration::from_millis(500));
            self.spawn();
        }
    }

    fn spawn(&mut self) {
        self.child = Some(spawn_server(&self.config(), self.dir.path()));
    }

    fn wait_for_s3(&self) {
        let addr = self.endpoint.trim_start_matches("http://").to_string();
        let start = Instant::now();
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "S3 port never opened"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The region's `[regions.<id>.s3]` settings for kiroku.
    pub fn s3_config(&self) -> kiroku::config::S3Config {
        kiroku::config::S3Config {
            bucket: self.bucket.clone(),
            region: "garage".into(),
            endpoint: Some(self.endpoint.clone()),
            path_style: true,
            profile: None,
            access_key_id: Some(KEY_ID.into()),
            secret_access_key: Some(SECRET.into()),
            upload_timeout_seconds: 10,
            spool_limit_bytes: 512 * 1024 * 1024,
        }
    }
}

/// `garage -c <config> server`, its output appended to `<dir>/server.log`.
pub fn spawn_server(config: &Path, dir: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .unwrap();
    Command::new(binary())
        .arg("-c")
        .arg(config)
        .arg("server")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("garage starts")
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop();
    }
}
