//! `kiroku serve` as a child process on a free loopback port, for tests that kill, stop and
//! restart it. The child is killed when the handle is dropped, so a failing test leaves none
//! behind.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A loopback port nothing listens on at the moment.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `kiroku serve`.
pub struct Served {
    child: Option<Child>,
    pub port: u16,
}

impl Served {
    /// Runs `cmd serve --listen 127.0.0.1:<port>` (`cmd` from [`super::cli::kiroku_cmd`], with
    /// whatever config and environment the test wants) and waits until `/healthz` answers.
    /// Blocking, and fine to call from an async test: nothing else runs while it waits.
    pub fn start(mut cmd: Command, port: u16) -> Served {
        let child = cmd
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut served = Served {
            child: Some(child),
            port,
        };
        for _ in 0..600 {
            if answers_healthz(port) {
                return served;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        served.kill();
        panic!("kiroku serve did not come up on port {port}");
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server with SIGKILL, as a crash would, and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Stops the server with SIGTERM, as an operator or a service manager does, and waits up to
    /// `bound` for it to exit: its exit status. Fails the test if it still runs then (the drop
    /// kills and reaps it). The signal is sent with the `kill` command: the tests use no `unsafe`.
    pub fn terminate(&mut self, bound: Duration) -> ExitStatus {
        // The child stays in `self` until it is reaped: a panic here leaves it to the drop.
        let child = self.child.as_mut().expect("kiroku serve is running");
        let sent = Command::new("sh")
            .args(["-c", "kill -TERM \"$0\"", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "SIGTERM sent to kiroku serve: {sent:?}");
        let signalled = Instant::now();
        while signalled.elapsed() < bound {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("kiroku serve still runs {bound:?} after SIGTERM");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Whether an HTTP server on `port` answers `GET /healthz` at all.
fn answers_healthz(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 9];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}
