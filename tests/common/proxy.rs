//! A TCP hop between a browser and kiroku that the test can cut: while it is down, every
//! connection through it is dropped and new ones are closed at once, as when a candidate's
//! Wi-Fi goes away for a few seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::net::{TcpListener, TcpStream};

pub struct Hop {
    /// `http://127.0.0.1:<port>`: the origin the browser uses.
    pub base: String,
    down: Arc<AtomicBool>,
    /// Bumped by each cut: connections from before it end.
    generation: Arc<AtomicU64>,
}

impl Hop {
    /// Forwards a free loopback port to `upstream` (`127.0.0.1:<port>`).
    pub async fn start(upstream: String) -> Hop {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let down = Arc::new(AtomicBool::new(false));
        let generation = Arc::new(AtomicU64::new(0));
        let (d, g) = (down.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if d.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let born = g.load(Ordering::SeqCst);
                let (up, g) = (upstream.clone(), g.clone());
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&up).await else {
                        return;
                    };
                    let cut = async {
                        while g.load(Ordering::SeqCst) == born {
                            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut => {}
                    }
                });
            }
        });
        Hop {
            base,
            down,
            generation,
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
}
