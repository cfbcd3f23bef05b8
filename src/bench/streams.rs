//! `kiroku bench streams`: how many live interviews one node holds. Drives N concurrent
//! WebSocket streams, each paced in real time as a browser's MediaRecorder sends them,
//! against a `kiroku serve` it starts as a child process (or one already running, `--url`),
//! and prints in one run: the acknowledgement lag (p50, p99, max), the server's CPU seconds
//! per media minute and peak resident memory per stream, the errors, and its own CPU (the
//! load must cost less than the server it loads, or its figures would be its own).
//!
//! A segment's acknowledgement lag is when its `segment.stored` arrives, less the moment its
//! last media was recorded: a stream that started recording at `t0` sends the bytes of media
//! time `t` at `t0 + t` (in timeslices, each sent when the recorder would hand it over).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// What one run is asked to do.
pub struct Load {
    pub streams: usize,
    pub media: PathBuf,
    /// A server already running (`http://host:port`), or several nodes on one catalog
    /// (comma-separated: the streams go to each in turn), with its tokens; none: start one.
    pub url: Option<String>,
    pub service_token: Option<String>,
    pub operator_token: Option<String>,
    /// MediaRecorder's timeslice: how often a stream sends.
    pub timeslice: Duration,
    /// Streams start spread evenly over this long, as interviews do.
    pub ramp: Duration,
}

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Runs the load and prints its figures.
pub fn run(load: Load) -> BenchResult<()> {
    raise_open_files_limit();
    let media = Media::read(&load.media, load.timeslice)?;
    let (server, base, service, operator) = match &load.url {
        Some(url) => (
            None,
            url.split(',')
                .map(|u| u.trim().trim_end_matches('/'))
                .collect::<Vec<_>>()
                .join(","),
            load.service_token
                .clone()
                .ok_or("--url needs --service-token")?,
            load.operator_token
                .clone()
                .ok_or("--url needs --operator-token")?,
        ),
        None => {
            let s = Server::start(load.streams)?;
            let base = s.base.clone();
            (Some(s), base, s_token("service"), s_token("operator"))
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(drive(
        &load,
        &media,
        &base,
        &service,
        &operator,
        server.as_ref(),
    ));
    if let Some(s) = server {
        s.stop();
    }
    outcome
}

/// The tokens of a server this bench starts: fixed, it lives only as long as the run.
fn s_token(role: &str) -> String {
    format!("kiroku-bench-{role}-token-0123456789abcdef")
}

/// The media file and how its bytes map onto media time.
struct Media {
    bytes: Arc<Vec<u8>>,
    content_type: String,
    /// (byte offset, media time in ns) at each cluster or fragment the cutter found.
    anchors: Vec<(usize, u64)>,
    duration: Duration,
    timeslice: Duration,
}

impl Media {
    fn read(path: &Path, timeslice: Duration) -> BenchResult<Media> {
        let (bytes, content_type) = super::read_media(path)?;
        let content_type = content_type.to_string();
        let container = crate::segment::Container::of(&content_type)
            .ok_or("bench streams: unknown container")?;
        let mut cutter = crate::segment::Cutter::new(container, 1);
        let mut pieces = cutter.push(&bytes)?;
        pieces.extend(cutter.finish()?);
        let mut anchors = Vec::new();
        let mut offset = 0;
        let mut origin = None;
        for p in &pieces {
            if p.kind == crate::segment::PieceKind::Media {
                let origin = *origin.get_or_insert(p.start_ns);
                anchors.push((offset, p.start_ns - origin));
            }
            offset += p.bytes.len();
        }
        let end = pieces.last().map(|p| p.end_ns).unwrap_or(0);
        let duration = Duration::from_nanos(end.saturating_sub(origin.unwrap_or(0)));
        if anchors.is_empty() || duration.is_zero() {
            return Err("bench streams: the media has no timed clusters".into());
        }
        anchors.push((bytes.len(), duration.as_nanos() as u64));
        Ok(Media {
            bytes: Arc::new(bytes),
            content_type,
            anchors,
            duration,
            timeslice,
        })
    }

    /// The byte offset up to which media time `t` has been recorded: the header, then the
    /// clusters' bytes spread evenly over their time, as a recorder emits them.
    fn offset_at(&self, t: Duration) -> usize {
        let t = t.as_nanos() as u64;
        let mut prev = (0usize, 0u64);
        for &(offset, at) in &self.anchors {
            if at >= t {
                let span = at.saturating_sub(prev.1).max(1);
                let part = (offset - prev.0) as u128 * (t - prev.1) as u128 / span as u128;
                return prev.0 + part as usize;
            }
            prev = (offset, at);
        }
        self.bytes.len()
    }

    /// The timeslices: chunk `k` holds media up to `(k + 1) × timeslice` (the header with
    /// the first), sent at that moment.
    fn chunks(&self) -> Vec<(Duration, std::ops::Range<usize>)> {
        let mut out = Vec::new();
        let mut from = 0;
        let mut k = 1;
        loop {
            let at = self.timeslice * k;
            let to = if at >= self.duration {
                self.bytes.len()
            } else {
                self.offset_at(at)
            };
            out.push((at.min(self.duration), from..to));
            if to == self.bytes.len() {
                return out;
            }
            from = to;
            k += 1;
        }
    }
}

/// What one stream saw.
#[derive(Default)]
struct StreamReport {
    lags: Vec<Duration>,
    error: Option<String>,
}

async fn drive(
    load: &Load,
    media: &Media,
    base: &str,
    service: &str,
    operator: &str,
    server: Option<&Server>,
) -> BenchResult<()> {
    let http = reqwest::Client::new();
    let first = base.split(',').next().unwrap_or(base);
    let interviews = prepare(&http, first, service, operator, load.streams).await?;
    let chunks = Arc::new(media.chunks());
    let cpu_before = server.map(Server::cpu_seconds).transpose()?;
    let rss_before = server.map(Server::rss_bytes).transpose()?;
    let client_cpu = super::cpu_seconds();
    let started = Instant::now();
    let mut tasks = Vec::new();
    // Several nodes (`--url a,b`, one catalog): stream n goes to node n mod count.
    let nodes: Vec<&str> = base.split(',').collect();
    for (n, (id, token)) in interviews.into_iter().enumerate() {
        let delay = load.ramp.mul_f64(n as f64 / load.streams.max(1) as f64);
        let url = format!(
            "{}/v1/interviews/{id}/stream?token={token}&content_type={}",
            nodes[n % nodes.len()].replacen("http", "ws", 1),
            media.content_type.replace('/', "%2F")
        );
        let (bytes, chunks) = (media.bytes.clone(), chunks.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            one_stream(&url, &bytes, &chunks).await
        }));
    }
    let mut reports = Vec::new();
    for t in tasks {
        reports.push(t.await.unwrap_or_else(|e| StreamReport {
            error: Some(e.to_string()),
            ..StreamReport::default()
        }));
    }
    let wall = started.elapsed();
    let client_cpu = super::cpu_seconds() - client_cpu;
    let mut lags: Vec<Duration> = reports.iter().flat_map(|r| r.lags.clone()).collect();
    lags.sort();
    let errors: Vec<&String> = reports.iter().filter_map(|r| r.error.as_ref()).collect();
    let media_minutes = load.streams as f64 * media.duration.as_secs_f64() / 60.0;
    let at = |q: f64| {
        lags.get(((lags.len().max(1) - 1) as f64 * q).round() as usize)
            .map(|d| format!("{:.3} s", d.as_secs_f64()))
            .unwrap_or_else(|| "-".into())
    };
    println!(
        "streams: {} concurrent of {} ({:.1} s each, {} kbit/s, timeslice {} ms), ramp {:.1} s, wall {:.1} s",
        load.streams,
        media.content_type,
        media.duration.as_secs_f64(),
        media.bytes.len() as u64 * 8 / 1000 / media.duration.as_secs().max(1),
        load.timeslice.as_millis(),
        load.ramp.as_secs_f64(),
        wall.as_secs_f64()
    );
    println!(
        "acknowledgement lag over {} segments: p50 {}, p99 {}, max {} (target p99 <= 1 s)",
        lags.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
    if let (Some(s), Some(cpu0), Some(rss0)) = (server, cpu_before, rss_before) {
        let cpu = s.cpu_seconds()? - cpu0;
        let peak = s.peak_rss_bytes()?;
        println!(
            "server: {:.3} CPU s per media minute; peak RSS {:.1} MiB, {:.2} MiB per stream above idle (target <= 1 MiB)",
            cpu / media_minutes,
            peak as f64 / 1048576.0,
            peak.saturating_sub(rss0) as f64 / 1048576.0 / load.streams.max(1) as f64
        );
    }
    println!(
        "load generator: {:.3} CPU s per media minute (its own)",
        client_cpu / media_minutes
    );
    println!("errors: {} of {} streams", errors.len(), load.streams);
    for e in errors.iter().take(5) {
        println!("  {e}");
    }
    Ok(())
}

/// Creates a recruiter, a privacy notice, and one candidate with `record` consent and one
/// interview per stream: the (interview id, ingest token) of each.
async fn prepare(
    http: &reqwest::Client,
    base: &str,
    service: &str,
    operator: &str,
    n: usize,
) -> BenchResult<Vec<(String, String)>> {
    let call = |path: &str, token: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    call(
        "/v1/admin/notices",
        operator,
        json!({"id": "bench-notice", "language": "ja", "url": "https://example.invalid/bench", "text_sha256": "ab".repeat(32)}),
    )
    .await?;
    call("/v1/admin/recruiters", operator, json!({"handle": "bench"})).await?;
    let mut out = Vec::with_capacity(n);
    let made = futures_util::stream::iter(0..n)
        .map(|i| async move {
            let c: Value = call(
                "/v1/candidates",
                service,
                json!({"external_ref": format!("bench-{i}"), "home_country": "JP"}),
            )
            .await?
            .error_for_status()?
            .json()
            .await?;
            let c = c["candidate_id"]
                .as_str()
                .ok_or("no candidate id")?
                .to_string();
            call(
                &format!("/v1/candidates/{c}/consents"),
                service,
                json!({"scope": "record", "language": "ja"}),
            )
            .await?
            .error_for_status()?;
            let v: Value = call(
                "/v1/interviews",
                service,
                json!({"candidate": c, "recruiter": "bench"}),
            )
            .await?
            .error_for_status()?
            .json()
            .await?;
            let field = |k: &str| v[k].as_str().map(str::to_string).ok_or("no interview");
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((
                field("interview_id")?,
                field("ingest_token")?,
            ))
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    for m in made {
        out.push(m?);
    }
    Ok(out)
}

/// One interview's stream: connect, send each timeslice when it is due while reading the
/// acknowledgements, finish, read to the close.
async fn one_stream(
    url: &str,
    bytes: &[u8],
    chunks: &[(Duration, std::ops::Range<usize>)],
) -> StreamReport {
    let mut report = StreamReport::default();
    let (ws, _) = match tokio_tungstenite::connect_async(url).await {
        Ok(c) => c,
        Err(e) => {
            report.error = Some(format!("connect: {e}"));
            return report;
        }
    };
    let (mut tx, mut rx) = ws.split();
    let t0 = tokio::time::Instant::now();
    let reader = tokio::spawn(async move {
        let mut lags = Vec::new();
        let mut close = None;
        let mut origin = None;
        while let Some(msg) = rx.next().await {
            match msg {
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                    let seg = &v["segment"];
                    if v["type"] == "segment.stored" && seg["media_kind"] != "header" {
                        let start = seg["start_ms"].as_u64().unwrap_or(0);
                        let origin = *origin.get_or_insert(start);
                        let end = seg["end_ms"].as_u64().unwrap_or(0).saturating_sub(origin);
                        let recorded = t0 + Duration::from_millis(end);
                        lags.push(tokio::time::Instant::now().saturating_duration_since(recorded));
                    }
                }
                Ok(Message::Close(f)) => {
                    close = Some(f.map(|f| u16::from(f.code)).unwrap_or(1005));
                    break;
                }
                Ok(_) => {}
                Err(e) => return (lags, Err(e.to_string())),
            }
        }
        (lags, Ok(close))
    });
    for (due, range) in chunks {
        tokio::time::sleep_until(t0 + *due).await;
        if let Err(e) = tx
            .send(Message::binary(bytes[range.clone()].to_vec()))
            .await
        {
            report.error = Some(format!("send: {e}"));
            break;
        }
    }
    let _ = tx.send(Message::text(r#"{"type":"finish"}"#)).await;
    match tokio::time::timeout(Duration::from_secs(60), reader).await {
        Ok(Ok((lags, ended))) => {
            report.lags = lags;
            match ended {
                Ok(Some(1000)) => {}
                Ok(Some(code)) => report.error = Some(format!("closed with {code}")),
                Ok(None) => report.error = Some("closed without a close frame".into()),
                Err(e) => report.error = Some(e),
            }
        }
        Ok(Err(e)) => report.error = Some(e.to_string()),
        Err(_) => report.error = Some("no close within 60 s of finishing".into()),
    }
    report
}

/// A `kiroku serve` child on a free loopback port, in its own data dir.
struct Server {
    child: std::sync::Mutex<Child>,
    pid: u32,
    base: String,
    data: PathBuf,
}

impl Server {
    fn start(streams: usize) -> BenchResult<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let data =
            std::env::temp_dir().join(format!("kiroku-bench-streams-{}", std::process::id()));
        std::fs::create_dir_all(&data)?;
        let log = std::fs::File::create(data.join("serve.log"))?;
        let child = Command::new(std::env::current_exe()?)
            .args(["--data-dir"])
            .arg(&data)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("KIROKU_SERVICE_TOKEN", s_token("service"))
            .env("KIROKU_OPERATOR_TOKEN", s_token("operator"))
            .env(
                "KIROKU_LIMITS__MAX_CONCURRENT_INTERVIEWS",
                (streams + 16).to_string(),
            )
            .env("KIROKU_LOG", "kiroku=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        let server = Server {
            pid: child.id(),
            child: std::sync::Mutex::new(child),
            base: format!("http://127.0.0.1:{port}"),
            data,
        };
        for _ in 0..600 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        server.stop();
        Err("bench streams: kiroku serve did not come up".into())
    }

    /// The child's user + system CPU seconds so far.
    fn cpu_seconds(&self) -> BenchResult<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        // Fields after the command name (which may hold spaces) start at ")".
        let rest = stat.rsplit_once(')').ok_or("unreadable /proc stat")?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
        Ok(ticks / 100.0) // USER_HZ, 100 on Linux
    }

    fn rss_bytes(&self) -> BenchResult<u64> {
        self.status_kib("VmRSS:").map(|k| k * 1024)
    }

    fn peak_rss_bytes(&self) -> BenchResult<u64> {
        self.status_kib("VmHWM:").map(|k| k * 1024)
    }

    fn status_kib(&self, field: &str) -> BenchResult<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .ok_or("no such /proc status field")?;
        Ok(line.trim().trim_end_matches("kB").trim().parse()?)
    }

    /// Stops the child (SIGTERM via `kill`, then a hard kill) and removes its data dir.
    fn stop(&self) {
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        for _ in 0..100 {
            if matches!(child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// Many streams need many sockets (and GStreamer its pipes): the soft limit on open files is
/// raised to the hard one, for this process and the server it starts.
fn raise_open_files_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media(anchors: Vec<(usize, u64)>, len: usize, seconds: u64) -> Media {
        Media {
            bytes: Arc::new(vec![0; len]),
            content_type: "video/webm".into(),
            anchors,
            duration: Duration::from_secs(seconds),
            timeslice: Duration::from_millis(500),
        }
    }

    #[test]
    fn timeslices_spread_each_clusters_bytes_over_its_time_and_end_with_the_last_byte() {
        // A 100-byte header, then clusters at 0 s (offset 100) and 1 s (offset 600), ending at
        // 2 s with the file's 1100th byte.
        let m = media(
            vec![(100, 0), (600, 1_000_000_000), (1100, 2_000_000_000)],
            1100,
            2,
        );
        let chunks = m.chunks();
        let ranges: Vec<_> = chunks.iter().map(|(_, r)| r.clone()).collect();
        assert_eq!(ranges, vec![0..350, 350..600, 600..850, 850..1100]);
        assert_eq!(chunks.last().unwrap().0, Duration::from_secs(2));
    }

    #[test]
    fn media_shorter_than_a_timeslice_is_one_chunk() {
        let m = media(vec![(10, 0), (50, 200_000_000)], 50, 0);
        assert_eq!(m.chunks().len(), 1);
    }
}
