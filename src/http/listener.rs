//! The accept loop of `kiroku serve`: a bound on open connections and deadlines on each, so
//! that no client holds the server's sockets, memory or tasks for as long as it likes.
//!
//! - At most `max_connections` are served at once; past it the loop stops accepting and
//!   further clients wait in the kernel's backlog until one closes.
//! - A client gets `header_read_timeout` to send a request's headers, and as long again to
//!   start its next request on a kept-alive connection (hyper starts the timer when the
//!   connection goes idle). A slowloris client is cut there, and so is one that connects and
//!   sends nothing at all.
//! - [`Deadlines`] closes a connection on which no byte moved either way for `idle_timeout`
//!   (streams send media every second or so, so only a dead one gets there), and one whose
//!   write waited `write_timeout` for the client to read (a stalled download).
//!
//! - `send_buffer_bytes`, when set, bounds the kernel memory each connection's unsent bytes
//!   may take (by default the kernel sizes it, up to several MB per slow reader).
//!
//! axum's own `serve` sets none of these (hyper turns its header timeout off when it is given
//! no timer), hence this loop, after axum's serve-with-hyper example.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};

use crate::config::ServerConfig;
use crate::metrics::{Held, METRICS};

/// Serves `router` on `listener` until `stop` resolves, then waits for the open connections
/// to finish (the caller bounds that wait).
pub async fn run(
    listener: TcpListener,
    router: Router,
    limits: ServerConfig,
    stop: impl Future<Output = ()>,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    // HTTP/1.1 only: WebSocket upgrades and the timeouts here are HTTP/1's, and without TLS
    // no browser speaks h2 to kiroku.
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_read_timeout_seconds));
    let first_byte = Duration::from_secs(limits.header_read_timeout_seconds);
    let idle = Duration::from_secs(limits.idle_timeout_seconds);
    let write = Duration::from_secs(limits.write_timeout_seconds);
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            _ = &mut stop => break,
            permit = permits.clone().acquire_owned() => permit.map_err(io::Error::other)?,
        };
        let tcp = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(error = %e, "a connection could not be accepted");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        if permits.available_permits() == 0 {
            tracing::warn!(
                max = limits.max_connections,
                "at the connection limit: new clients wait until one closes"
            );
        }
        let _ = tcp.set_nodelay(true);
        if let Some(bytes) = limits.send_buffer_bytes
            && let Err(e) = socket2::SockRef::from(&tcp).set_send_buffer_size(bytes)
        {
            tracing::warn!(error = %e, "the send buffer size could not be set");
        }
        let io = TokioIo::new(Deadlines::new(tcp, first_byte, idle, write));
        let service = TowerToHyperService::new(router.clone());
        let connection = builder
            .serve_connection_with_upgrades(io, service)
            .into_owned();
        let connection = graceful.watch(connection);
        let open = Held::new(&METRICS.connections_open);
        tokio::spawn(async move {
            let _open = open;
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "a connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// A TCP connection that fails a read or write once the client has stalled past a deadline:
/// no first byte within `first_byte` (hyper's header timer starts only once the connection's
/// first bytes have told HTTP/1 from HTTP/2), no byte moved either way for `idle`, or one
/// write waited `write` for the client to read. Only what the server waits for is timed: a
/// handler working away leaves the timers unpolled.
pub struct Deadlines {
    tcp: TcpStream,
    /// Until the client's first byte, the idle deadline is this much after the connection.
    first_byte: Option<Duration>,
    idle: Duration,
    write: Duration,
    /// When a byte last moved either way.
    last_moved: Instant,
    /// Armed while a read waits; fires at `last_moved + idle` (re-armed if bytes moved since).
    idle_timer: Pin<Box<Sleep>>,
    /// Armed while a write waits.
    write_timer: Option<Pin<Box<Sleep>>>,
}

impl Deadlines {
    pub fn new(tcp: TcpStream, first_byte: Duration, idle: Duration, write: Duration) -> Deadlines {
        let now = Instant::now();
        Deadlines {
            tcp,
            first_byte: Some(first_byte),
            idle,
            write,
            last_moved: now,
            idle_timer: Box::pin(tokio::time::sleep_until(now + idle)),
            write_timer: None,
        }
    }

    fn moved(&mut self) {
        self.last_moved = Instant::now();
        self.write_timer = None;
    }

    /// Ready with an error once the connection has been idle past its deadline.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            let deadline = self.last_moved + self.first_byte.unwrap_or(self.idle);
            if self.idle_timer.deadline() != deadline {
                self.idle_timer.as_mut().reset(deadline);
            }
            ready!(self.idle_timer.as_mut().poll(cx));
            if deadline <= Instant::now() {
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no byte moved on the connection within the idle timeout",
                ));
            }
        }
    }

    /// What a write to the socket came to: progress resets the deadlines; a write still
    /// waiting fails once it has waited past its deadline.
    fn written(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match polled {
            Poll::Ready(done) => {
                self.moved();
                Poll::Ready(done)
            }
            Poll::Pending => self.poll_write_deadline(cx).map(Err),
        }
    }

    /// Ready with an error once the write in progress has waited past its deadline.
    fn poll_write_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let write = self.write;
        let timer = self
            .write_timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(write)));
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client did not read within the write timeout",
        ))
    }
}

impl AsyncRead for Deadlines {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.tcp).poll_read(cx, buf) {
            Poll::Ready(done) => {
                if buf.filled().len() > before {
                    this.last_moved = Instant::now();
                    this.first_byte = None;
                }
                Poll::Ready(done)
            }
            Poll::Pending => match this.poll_idle(cx) {
                Poll::Ready(e) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for Deadlines {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.tcp).poll_write(cx, bytes);
        this.written(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs);
        this.written(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}
