//! The `kiroku` command line: parses, sets up tracing, loads the config, hands over. Each
//! command prints plain text (or JSON with `--json`); a command that creates something prints
//! its id alone on the last line of stdout. Errors go to stderr with a non-zero exit.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::app::Kiroku;
use crate::capture::{self, Capture};
use crate::config::{Backend, Config};
use crate::ids::{CandidateId, CountryCode, InterviewId, RecruiterHandle};

mod privacy;

use privacy::{AuditCmd, ConsentCmd, NoticeCmd, ReceiptCmd, RecruiterCmd, ReleaseArgs, SubjectCmd};

#[derive(Parser)]
#[command(
    name = "kiroku",
    version,
    about = "Records AI job interviews as sealed, consent-tagged segments."
)]
struct Cli {
    /// Operator config (TOML). Without it: the embedded default.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Data directory (overrides the config's `data_dir`).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Print JSON instead of plain text.
    #[arg(long, global = true)]
    json: bool,
    /// How log lines on stderr are written: `text` (colour only on a terminal) or `json`
    /// (one object per line, for a log collector).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API for interview front-ends.
    Serve {
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Check the config.
    Config {
        #[command(subcommand)]
        what: ConfigCmd,
    },
    /// Manage candidates.
    Candidate {
        #[command(subcommand)]
        what: CandidateCmd,
    },
    /// Grant, withdraw or show a candidate's consents.
    Consent {
        #[command(subcommand)]
        what: ConsentCmd,
    },
    /// Privacy-notice versions that consents are given under.
    Notice {
        #[command(subcommand)]
        what: NoticeCmd,
    },
    /// Recruiting companies and their API keys.
    Recruiter {
        #[command(subcommand)]
        what: RecruiterCmd,
    },
    /// Signed consent receipts.
    Receipt {
        #[command(subcommand)]
        what: ReceiptCmd,
    },
    /// The tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        what: AuditCmd,
    },
    /// The keyring: key epochs per region, and their rotation.
    Keys {
        #[command(subcommand)]
        what: KeysCmd,
    },
    /// Delete what is past its retention (`[retention]`): recordings, analysis reports,
    /// WAV renditions. `kiroku serve` sweeps every hour by itself.
    Retention {
        #[command(subcommand)]
        what: RetentionCmd,
    },
    /// A candidate's rights over their data, carried out for them: export, erasure,
    /// suspension, correction.
    Subject {
        #[command(subcommand)]
        what: SubjectCmd,
    },
    /// An operator's legal-exception release of a recording (APPI Art. 27(1)); prints the
    /// provision record's id.
    Release(ReleaseArgs),
    /// Run a media file through the capture pipeline as one interview; prints the interview id.
    Ingest {
        #[arg(long)]
        candidate: String,
        #[arg(long)]
        recruiter: String,
        /// Content type; by default taken from the file's first bytes.
        #[arg(long)]
        content_type: Option<String>,
        file: PathBuf,
    },
    /// Storage regions.
    Regions {
        #[command(subcommand)]
        what: RegionsCmd,
    },
    /// Recordings.
    Recording {
        #[command(subcommand)]
        what: RecordingCmd,
    },
    /// Measure seal throughput and ingest CPU against their baselines, in one run.
    Bench {
        /// `streams`: the load benchmark instead of the ratios.
        #[command(subcommand)]
        load: Option<BenchLoad>,
        /// Media files for the ingest measurement, one ratio each (repeat the flag).
        #[arg(
            long,
            default_values = ["fixtures/interview-vp8-opus.webm", "fixtures/safari-like-fmp4-h264-aac.mp4"]
        )]
        media: Vec<PathBuf>,
        /// Rounds of each measurement.
        #[arg(long, default_value_t = 5)]
        rounds: u32,
        /// Rounds of the WHIP measurement, which replays the first media file in real time
        /// (0 skips it).
        #[arg(long, default_value_t = 3)]
        whip_rounds: u32,
        /// Also measure durable latency and upload throughput against this S3 region.
        #[arg(long)]
        s3_region: Option<String>,
    },
}

#[derive(Subcommand)]
enum BenchLoad {
    /// N concurrent live WebSocket streams, each paced in real time, against a `kiroku serve`
    /// this starts (or `--url`): acknowledgement lag, server CPU and memory per stream.
    Streams {
        /// Concurrent streams.
        #[arg(long, default_value_t = 100)]
        streams: usize,
        /// The recording each stream sends (a browser's WebM or fragmented MP4).
        #[arg(long, default_value = "fixtures/chromium-mediarecorder.webm")]
        media: PathBuf,
        /// A server already running (its CPU and memory are then not measured), or several
        /// nodes on one catalog, comma-separated: streams go to each in turn.
        #[arg(long)]
        url: Option<String>,
        #[arg(long)]
        service_token: Option<String>,
        #[arg(long)]
        operator_token: Option<String>,
        /// MediaRecorder's timeslice, in milliseconds.
        #[arg(long, default_value_t = 500)]
        timeslice_ms: u64,
        /// Seconds over which the streams start, evenly spread.
        #[arg(long, default_value_t = 5.0)]
        ramp_seconds: f64,
    },
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Validate the config; every error names its field.
    Check,
}

#[derive(Subcommand)]
enum CandidateCmd {
    /// Register a candidate; prints the new candidate id.
    Add {
        /// The front-end's own reference for the candidate (kept in the catalog only).
        #[arg(long = "ref")]
        external_ref: String,
        #[arg(long)]
        home_country: String,
    },
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Each region's current epoch, its age, the candidate keys per epoch, destroyed epochs.
    Status,
    /// Start a new epoch for a region: every live candidate key rewrapped under a new epoch
    /// key, old epoch keys (past `[keys] keep_epochs`) destroyed. After it, no copy of the
    /// keyring taken before opens an erased candidate's keys.
    Rotate {
        #[arg(long)]
        region: String,
    },
    /// Give a candidate a new key version in every region where they have one: interviews
    /// created from now on are sealed under it; earlier ones keep theirs.
    RotateCandidate { candidate: String },
}

#[derive(Subcommand)]
enum RetentionCmd {
    /// Find what expired and delete it; with `--dry-run`, only list it.
    Sweep {
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum RegionsCmd {
    /// The configured regions: id, country, backend, bucket, placement.
    List,
    /// Reach every S3 region: bucket present, a probe object written, read and deleted,
    /// versioning and object lock reported. Exits non-zero naming each failing region.
    Check,
    /// Upload what the regions' local spools hold, once (the server does this by itself).
    /// With --from, upload instead what a lost machine's spool holds.
    Drain {
        /// The `spool` folder of a machine lost for good (its data dir's `spool/`, read back
        /// from its disk): each region's objects the bucket lacks are uploaded, with their
        /// tags, and removed from that folder; the bucket's own copies are kept.
        #[arg(long)]
        from: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum RecordingCmd {
    /// Open and verify every segment and write the recording.
    Export {
        interview: String,
        #[arg(long)]
        out: PathBuf,
    },
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    log_panics_without_their_messages();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kiroku: {e}");
            ExitCode::from(1)
        }
    }
}

/// Logs go to stderr. Colour codes only when stderr is a terminal, so a log file or journal
/// gets plain lines; `--log-format json` writes one JSON object per line. Traces carry
/// pseudonymous ids only (see `capture`, `consent`).
fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("KIROKU_LOG")
        .unwrap_or_else(|_| "kiroku=info,warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}

/// A panic is logged by where it happened and on which thread, not by its message: a
/// message may format values of the request or the stream it met (an id, a name, bytes), and
/// logs carry pseudonymous ids only. The location is enough to find the bug; the fuzz targets
/// (`kiroku::fuzzing`) and the suite reproduce it with the message.
fn log_panics_without_their_messages() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let at = info.location().map_or_else(
            || "unknown".to_string(),
            |l| format!("{}:{}", l.file(), l.line()),
        );
        tracing::error!(
            thread = thread.name().unwrap_or("unnamed"),
            at,
            "a panic (its message is not logged: it may carry personal data)"
        );
    }));
}

pub(crate) type Res = Result<(), Box<dyn std::error::Error>>;

fn load_config(cli: &Cli) -> Result<Config, Box<dyn std::error::Error>> {
    let mut cfg = Config::load(cli.config.as_deref())?;
    if let Some(d) = &cli.data_dir {
        cfg.data_dir = d.clone();
    }
    Ok(cfg)
}

fn open(cli: &Cli) -> Result<Arc<Kiroku>, Box<dyn std::error::Error>> {
    Ok(crate::node::open(load_config(cli)?)?)
}

/// Prints a result: plain lines, or one JSON object; the id (if any) alone on the last line.
pub(crate) fn emit(json: bool, value: serde_json::Value, lines: &[String], id: Option<&str>) {
    if json {
        println!("{value}");
    } else {
        for l in lines {
            println!("{l}");
        }
    }
    if let Some(id) = id {
        println!("{id}");
    }
}

fn run(cli: Cli) -> Res {
    match &cli.command {
        Command::Serve { listen } => {
            let mut cfg = load_config(&cli)?;
            if let Some(l) = listen {
                cfg.listen = *l;
            }
            let app = crate::node::open(cfg)?;
            crate::http::serve_blocking(app)?;
        }
        Command::Config {
            what: ConfigCmd::Check,
        } => {
            let cfg = load_config(&cli)?;
            let regions: Vec<String> = cfg
                .region_plan()?
                .regions
                .iter()
                .map(|r| match r.backend() {
                    Backend::Local => format!("{} ({}, local)", r.id, r.country),
                    Backend::S3(s3) => {
                        format!("{} ({}, s3 bucket {})", r.id, r.country, s3.bucket)
                    }
                })
                .collect();
            emit(
                cli.json,
                serde_json::json!({"valid": true, "regions": regions}),
                &[format!("config is valid; regions: {}", regions.join(", "))],
                None,
            );
        }
        Command::Candidate {
            what:
                CandidateCmd::Add {
                    external_ref,
                    home_country,
                },
        } => {
            let app = open(&cli)?;
            let id = app.clerk().register_candidate(
                external_ref,
                &CountryCode::parse(home_country)?,
                &crate::audit::Actor::Operator,
            )?;
            emit(
                cli.json,
                serde_json::json!({"candidate_id": id}),
                &[],
                Some(&id.to_string()),
            );
        }
        Command::Consent { what } => privacy::consent(&open(&cli)?, cli.json, what)?,
        Command::Notice { what } => privacy::notice(&open(&cli)?, cli.json, what)?,
        Command::Recruiter { what } => privacy::recruiter(&open(&cli)?, cli.json, what)?,
        Command::Receipt { what } => privacy::receipt(|| open(&cli), cli.json, what)?,
        Command::Audit { what } => privacy::audit(&open(&cli)?, cli.json, what)?,
        Command::Release(args) => privacy::release(&open(&cli)?, cli.json, args)?,
        Command::Subject { what } => privacy::subject(&open(&cli)?, cli.json, what)?,
        Command::Keys { what } => {
            let app = open(&cli)?;
            match what {
                KeysCmd::Status => {
                    let status = crate::subject::keys::status(&app)?;
                    let lines: Vec<String> = status
                        .iter()
                        .map(|s| {
                            format!(
                                "{}: epoch {} ({} days old, in {}); keys per epoch {:?}; \
                                 destroyed {:?}",
                                s.region,
                                s.current_epoch,
                                s.current_age_seconds / 86_400,
                                s.current_key,
                                s.keys_per_epoch,
                                s.destroyed_epochs
                            )
                        })
                        .collect();
                    emit(cli.json, serde_json::to_value(&status)?, &lines, None);
                }
                KeysCmd::RotateCandidate { candidate } => {
                    let done = crate::subject::keys::rotate_candidate(
                        &app,
                        &crate::ids::CandidateId::parse(candidate)?,
                        &crate::audit::Actor::Operator,
                    )?;
                    let lines: Vec<String> = done
                        .iter()
                        .map(|(r, v)| format!("{r}: version {v}"))
                        .collect();
                    emit(cli.json, serde_json::json!(done), &lines, None);
                }
                KeysCmd::Rotate { region } => {
                    let r = crate::subject::keys::rotate(
                        &app,
                        &crate::ids::RegionId::parse(region)?,
                        &crate::audit::Actor::Operator,
                    )?;
                    emit(
                        cli.json,
                        serde_json::to_value(&r)?,
                        &[format!(
                            "{}: epoch {} -> {}, {} key(s) rewrapped, destroyed epochs {:?}",
                            r.region, r.from_epoch, r.to_epoch, r.rewrapped, r.destroyed_epochs
                        )],
                        None,
                    );
                }
            }
        }
        Command::Retention {
            what: RetentionCmd::Sweep { dry_run },
        } => {
            let app = open(&cli)?;
            let r = crate::subject::sweep(&app, crate::util::now_unix(), *dry_run)?;
            let mut lines: Vec<String> = r
                .expired
                .iter()
                .map(|e| serde_json::to_string(e).unwrap_or_default())
                .collect();
            lines.push(if *dry_run {
                format!(
                    "{} item(s) past their retention; nothing deleted (dry run)",
                    r.expired.len()
                )
            } else {
                format!(
                    "{} item(s) past their retention deleted ({} object(s))",
                    r.expired.len(),
                    r.objects_deleted
                )
            });
            emit(cli.json, serde_json::to_value(&r)?, &lines, None);
        }
        Command::Ingest {
            candidate,
            recruiter,
            content_type,
            file,
        } => {
            let app = open(&cli)?;
            ingest_file(
                &app,
                cli.json,
                candidate,
                recruiter,
                content_type.as_deref(),
                file,
            )?;
        }
        Command::Recording {
            what: RecordingCmd::Export { interview, out },
        } => {
            let app = open(&cli)?;
            let id = InterviewId::parse(interview)?;
            let rec = crate::recording::export(&app, &id, out)?;
            emit(
                cli.json,
                serde_json::json!({"interview_id": id, "segments": rec.segments, "bytes": rec.bytes.len(), "content_type": rec.content_type, "out": out}),
                &[format!(
                    "wrote {} bytes ({}) from {} verified segments to {}",
                    rec.bytes.len(),
                    rec.content_type,
                    rec.segments,
                    out.display()
                )],
                None,
            );
        }
        Command::Regions { what } => regions(&open(&cli)?, cli.json, what)?,
        Command::Bench {
            load:
                Some(BenchLoad::Streams {
                    streams,
                    media,
                    url,
                    service_token,
                    operator_token,
                    timeslice_ms,
                    ramp_seconds,
                }),
            ..
        } => crate::bench::streams::run(crate::bench::streams::Load {
            streams: *streams,
            media: media.clone(),
            url: url.clone(),
            service_token: service_token.clone(),
            operator_token: operator_token.clone(),
            timeslice: std::time::Duration::from_millis((*timeslice_ms).max(1)),
            ramp: std::time::Duration::from_secs_f64(ramp_seconds.max(0.0)),
        })
        .map_err(|e| e.to_string())?,
        Command::Bench {
            load: None,
            media,
            rounds,
            whip_rounds,
            s3_region,
        } => {
            let app = open(&cli)?;
            match s3_region {
                Some(r) => crate::bench::s3(
                    &app,
                    r,
                    media.first().ok_or("bench: no media given")?,
                    *rounds,
                )?,
                None => crate::bench::run(&app, media, *rounds, *whip_rounds)?,
            }
        }
    }
    Ok(())
}

/// `kiroku ingest`: the file goes through exactly the path a streamed interview takes.
fn ingest_file(
    app: &Arc<Kiroku>,
    json: bool,
    candidate: &str,
    recruiter: &str,
    content_type: Option<&str>,
    file: &PathBuf,
) -> Res {
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let ct = match content_type {
        Some(c) => c.to_string(),
        None => crate::segment::sniff_content_type(&bytes)
            .ok_or("cannot tell the file's content type from its bytes; pass --content-type")?
            .to_string(),
    };
    let c = CandidateId::parse(candidate)?;
    let created =
        capture::create_interview(app, &c, &RecruiterHandle::parse(recruiter)?, None, &ct)?;
    capture::spend_ingest_token(app, &created.interview_id, &created.ingest_token)?;
    let mut cap = Capture::start(app, &created.interview_id, capture::Transport::Upload)?;
    let mut events = cap.take_events();
    let feeder = cap.feeder();
    for chunk in bytes.chunks(64 * 1024) {
        if feeder.push(chunk.to_vec()) == capture::Pushed::CaptureOver {
            break;
        }
    }
    let outcome = cap.finish();
    // The analysis (when `analyze` stands) runs beside capture; this process is its only
    // home, so it finishes before the command does.
    app.background.wait();
    let mut lines = Vec::new();
    while let Ok(capture::CaptureEvent::Stored(a)) = events.try_recv() {
        lines.push(format!(
            "segment {:>3} {:<11} {:>7.2}s-{:>7.2}s keyframe={} sealed={}B",
            a.index,
            a.media_kind,
            a.start_ms as f64 / 1000.0,
            a.end_ms as f64 / 1000.0,
            a.starts_on_keyframe,
            a.sealed_bytes
        ));
    }
    if let Some(reason) = &outcome.reason {
        for l in &lines {
            eprintln!("{l}");
        }
        return Err(format!(
            "interview {} stopped after {} segments: {reason}",
            outcome.interview, outcome.segments
        )
        .into());
    }
    lines.push(format!(
        "interview {} finished: {} segments, {:.2}s of media",
        outcome.interview,
        outcome.segments,
        outcome.media_ms as f64 / 1000.0
    ));
    emit(
        json,
        serde_json::json!({"interview_id": outcome.interview, "segments": outcome.segments, "media_ms": outcome.media_ms, "state": outcome.state}),
        &lines,
        Some(&outcome.interview.to_string()),
    );
    Ok(())
}

/// `kiroku regions list|check|drain`.
fn regions(app: &Arc<Kiroku>, json: bool, what: &RegionsCmd) -> Res {
    use crate::store::Store;
    let placement_of = |id: &str| -> Vec<String> {
        let mut v: Vec<String> = app
            .config
            .placement
            .iter()
            .filter(|(_, r)| r.as_str() == id)
            .map(|(c, _)| c.to_ascii_uppercase())
            .collect();
        if app.config.default_region == id {
            v.push("default".into());
        }
        v
    };
    match what {
        RegionsCmd::List => {
            let mut lines = Vec::new();
            let mut out = Vec::new();
            for r in app.regions.values() {
                let bucket = match &r.store {
                    Store::S3(s) => Some(s.bucket().to_string()),
                    Store::Local(_) => None,
                };
                let placed = placement_of(r.region.id.as_str());
                lines.push(format!(
                    "{:<8} {} {:<5} {:<24} placement: {}",
                    r.region.id,
                    r.region.country,
                    r.store.backend(),
                    bucket.as_deref().unwrap_or("-"),
                    if placed.is_empty() {
                        "-".into()
                    } else {
                        placed.join(", ")
                    }
                ));
                out.push(serde_json::json!({"id": r.region.id, "country": r.region.country, "backend": r.store.backend(), "bucket": bucket, "placement": placed}));
            }
            emit(json, serde_json::json!(out), &lines, None);
        }
        RegionsCmd::Check => {
            let mut failed = Vec::new();
            let mut out = Vec::new();
            let mut lines = Vec::new();
            for r in app.regions.values() {
                let id = r.region.id.to_string();
                match &r.store {
                    Store::Local(l) => {
                        let ok = std::fs::create_dir_all(l.root()).is_ok();
                        lines.push(format!(
                            "{id}: local store at {} {}",
                            l.root().display(),
                            if ok { "ok" } else { "NOT WRITABLE" }
                        ));
                        out.push(serde_json::json!({"region": id, "backend": "local", "ok": ok}));
                        if !ok {
                            failed.push(format!(
                                "regions.{id}: the local store folder cannot be created"
                            ));
                        }
                    }
                    Store::S3(s) => match s.check() {
                        Ok(report) => {
                            lines.push(format!(
                                "{id}: bucket {} ok; versioning {}, object lock {}; tags: {}; spool {} bytes",
                                report["bucket"].as_str().unwrap_or("-"),
                                report["versioning"].as_str().unwrap_or("-"),
                                report["object_lock"].as_str().unwrap_or("-"),
                                report["tags"].as_str().unwrap_or("-"),
                                report["spool_bytes"]
                            ));
                            out.push(serde_json::json!({"region": id, "backend": "s3", "ok": true, "report": report}));
                        }
                        Err(why) => {
                            let (field, path) = (why.field(), why.field_path());
                            lines.push(format!("{id}: FAILED ({field}): {why}"));
                            out.push(serde_json::json!({"region": id, "backend": "s3", "ok": false, "field": path, "error": why.to_string()}));
                            failed.push(format!("{path}: {why}"));
                        }
                    },
                }
            }
            if let Some(check) = app.anchor.as_ref().and_then(|a| a.check_bucket()) {
                match check {
                    Ok((bucket, lock)) => {
                        lines.push(format!(
                            "audit checkpoints: bucket {bucket} ok; object lock {lock}"
                        ));
                        out.push(serde_json::json!({"audit_checkpoints": {"bucket": bucket, "ok": true,
                            "object_lock": lock.to_string(), "object_lock_enabled": lock == crate::anchor::ObjectLock::Enabled}}));
                    }
                    Err(why) => {
                        lines.push(format!("audit checkpoints: FAILED: {why}"));
                        out.push(serde_json::json!({"audit_checkpoints": {"ok": false, "error": why.to_string()}}));
                        failed.push(why.to_string());
                    }
                }
            }
            emit(json, serde_json::json!(out), &lines, None);
            if !failed.is_empty() {
                return Err(failed.join("; ").into());
            }
        }
        RegionsCmd::Drain { from: Some(dir) } => {
            let mut lines = Vec::new();
            let mut out = serde_json::Map::new();
            let mut left = 0;
            for r in app.regions.values() {
                let Store::S3(s) = &r.store else { continue };
                let folder = dir.join(r.region.id.as_str()).join("objects");
                if !folder.is_dir() {
                    continue;
                }
                let spool = crate::store::Spool::open(&folder)?;
                let done = s.drain_from(&spool);
                left += done.left;
                lines.push(format!(
                    "{}: uploaded {}, {} already in the bucket, {} left in {}",
                    r.region.id,
                    done.uploaded,
                    done.already_in_bucket,
                    done.left,
                    folder.display()
                ));
                out.insert(r.region.id.to_string(), serde_json::to_value(&done)?);
            }
            if lines.is_empty() {
                return Err(format!(
                    "{} holds no region's spool (<region>/objects) of this config",
                    dir.display()
                )
                .into());
            }
            emit(json, serde_json::Value::Object(out), &lines, None);
            if left > 0 {
                return Err(format!("{left} object(s) are still to upload; run it again").into());
            }
        }
        RegionsCmd::Drain { from: None } => {
            let mut lines = Vec::new();
            for r in app.regions.values() {
                if let Store::S3(s) = &r.store {
                    let Some(_claim) = s.spool().claim() else {
                        return Err(format!(
                            "region {}: another process (kiroku serve) is draining this spool",
                            r.region.id
                        )
                        .into());
                    };
                    let n = s.drain_once();
                    lines.push(format!(
                        "{}: uploaded {n}, {} left in the spool",
                        r.region.id,
                        s.spool().keys().len()
                    ));
                }
            }
            emit(json, serde_json::json!({"lines": lines}), &lines, None);
        }
    }
    Ok(())
}
