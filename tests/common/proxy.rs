//! A TCP hop between a browser and kiroku that the test can cut and read: while it is down,
//! every connection through it is dropped and new ones are closed at once, as when a
//! candidate's Wi-Fi goes away for a few seconds; and it counts the bytes kiroku sent and the
//! byte ranges the browser asked for, as a recruiter's network would see them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct Hop {
    /// `http://127.0.0.1:<port>`: the origin the browser uses.
    pub base: String,
    down: Arc<AtomicBool>,
    /// Bumped by each cut: connections from before it end.
    generation: Arc<AtomicU64>,
    seen: Arc<Seen>,
}

/// What passed through the hop.
#[derive(Default)]
struct Seen {
    /// Bytes from kiroku to the browser.
    sent: AtomicU64,
    /// The first byte of each `Range: bytes=N-` the browser asked for, in order.
    range_starts: Mutex<Vec<u64>>,
}

impl Hop {
    /// Forwards a free loopback port to `upstream` (`127.0.0.1:<port>`).
    pub async fn start(upstream: String) -> Hop {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let down = Arc::new(AtomicBool::new(false));
        let generation = Arc::new(AtomicU64::new(0));
        let seen = Arc::new(Seen::default());
        let (d, g, s) = (down.clone(), generation.clone(), seen.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if d.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let born = g.load(Ordering::SeqCst);
                let (up, g, s) = (upstream.clone(), g.clone(), s.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&up).await else {
                        return;
                    };
                    let cut = async {
                        while g.load(Ordering::SeqCst) == born {
                            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        }
                    };
                    let (mut from_client, mut to_client) = client.into_split();
                    let (mut from_server, mut to_server) = server.into_split();
                    let requests = async {
                        let mut buf = vec![0u8; 16 * 1024];
                        while let Ok(n) = from_client.read(&mut buf).await {
                            if n == 0 || to_server.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                            s.note_request(&buf[..n]);
                        }
                        let _ = to_server.shutdown().await;
                    };
                    let responses = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n) = from_server.read(&mut buf).await {
                            if n == 0 || to_client.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                            s.sent.fetch_add(n as u64, Ordering::SeqCst);
                        }
                        let _ = to_client.shutdown().await;
                    };
                    tokio::select! {
                        _ = async { tokio::join!(requests, responses) } => {}
                        _ = cut => {}
                    }
                });
            }
        });
        Hop {
            base,
            down,
            generation,
            seen,
        }
    }

    /// Cuts every connection and refuses new ones until [`Hop::restore`].
    pub fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    pub fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }

    /// Bytes kiroku has sent through the hop so far (headers and bodies).
    pub fn bytes_sent(&self) -> u64 {
        self.seen.sent.load(Ordering::SeqCst)
    }

    /// The first byte of every range the browser has asked for so far, in order.
    pub fn range_starts(&self) -> Vec<u64> {
        self.seen.range_starts.lock().unwrap().clone()
    }
}

impl Seen {
    /// Notes the `Range: bytes=N-…` headers of the request bytes that just passed.
    fn note_request(&self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes).to_ascii_lowercase();
        for line in text.lines() {
            if let Some(spec) = line.strip_prefix("range: bytes=")
                && let Some(Ok(start)) = spec.split('-').next().map(str::parse::<u64>)
            {
                self.range_starts.lock().unwrap().push(start);
            }
        }
    }
}
