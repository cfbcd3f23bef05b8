//! `kiroku bench`: each figure is a ratio against a baseline measured in the same run, so the
//! machine's speed cancels out.
//!
//! 1. Seal throughput of the segment format against ring's raw AES-256-GCM over the same bytes
//!    in the same 64 KiB chunks (target ≥ 0.9).
//! 2. CPU seconds per media minute of the whole ingest path (pipeline, cutting, sealing,
//!    storing with fsync, catalog) against a GStreamer-only remux of the same file
//!    (target ≤ 1.25).
//! 3. The built-in analyzer's CPU seconds per media minute and real-time factor (wall time
//!    over media time), on the bench media's audio.
//! 4. Key epoch rotation: 10 000 candidate keys rewrapped under a new epoch key (one keyring
//!    transaction, the old epoch key destroyed), in keys per second (target >= 20 000 on one
//!    core), against the raw AES-256-GCM unwrap + wrap of the same keys in memory.
//! 5. With `--s3-region ID` (an S3 region of the config, e.g. Garage on loopback):
//!    segment-close-to-durable latency (seal + durable store, p50 and p99), and upload
//!    throughput of kiroku's store path against a bare `put_object` loop of the same bytes
//!    (target ≥ 0.9); and the erasure of a candidate with 10 interviews of 100 segments
//!    against a bare list-and-delete of as many objects.
//!
//! `kiroku bench streams` ([`streams`]) is the load benchmark: concurrent live streams
//! against a served kiroku.

pub mod streams;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::app::Kiroku;
use crate::audit::Actor;
use crate::capture::{self, Capture, Pushed};
use crate::consent::{Circumstances, GrantRequest, Method, Scope};
use crate::ids::{CandidateId, CountryCode, InterviewId, RecruiterHandle, RegionId};
use crate::seal::{self, CandidateKey, ObjectIdentity, ObjectKind};

/// Runs every measurement and prints them: the ingest ratio once per media file (WebM and
/// Safari's MP4 by default), WHIP ingest and the analyzer on the first.
pub fn run(
    app: &Arc<Kiroku>,
    media: &[PathBuf],
    rounds: u32,
    whip_rounds: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    let rounds = rounds.max(1);
    let (ours, raw) = seal_throughput(rounds);
    println!(
        "seal throughput: format {:.2} GB/s, raw AES-256-GCM {:.2} GB/s, ratio {:.3} (target >= 0.9)",
        ours,
        raw,
        ours / raw
    );
    let c = app
        .catalog
        .add_candidate("bench", &CountryCode::parse("JP")?)?;
    bench_setup(app, &c)?;
    for path in media {
        ingest_ratio(app, &c, path, rounds)?;
    }
    let first = media.first().ok_or("bench: no media given")?;
    if whip_rounds > 0 {
        whip_ratio(app, &c, first, whip_rounds)?;
    }
    let first = media.first().ok_or("bench: no media given")?;
    let (bytes, ct) = read_media(first)?;
    let container = crate::segment::Container::of(ct)
        .ok_or("bench media: the analyzer bench reads WebM, Matroska or MP4")?;
    analyzer(app, &bytes, container, rounds)?;
    key_rotation(app, 10_000)?;
    catalog_hot_path(app, &c, 2_000)?;
    Ok(())
}

/// The capture's hot path in the catalog: a segment's row and its audit entry, `n` times,
/// against the same row inserted into a bare table of the catalog's database (SQLite with the
/// catalog's settings, or PostgreSQL) and nothing else.
fn catalog_hot_path(
    app: &Arc<Kiroku>,
    c: &CandidateId,
    n: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    let bench = RecruiterHandle::parse("bench")?;
    let created = capture::create_interview(app, c, &bench, None, "video/webm")?;
    let interview = created.interview_id;
    let row = |index: u32| crate::catalog::SegmentRow {
        interview,
        index,
        object_key: crate::store::ObjectKey::segment(c, &interview, index),
        media_kind: crate::vocab::MediaKind::VideoAudio,
        plain_len: 65_536,
        sealed_len: 65_600,
        start_ns: u64::from(index) * 4_000_000_000,
        end_ns: u64::from(index + 1) * 4_000_000_000,
        starts_on_keyframe: true,
        is_final: false,
        commitment: [7; 32],
        tags: serde_json::json!({"consent_scopes": ["record"], "region": "jp"}),
        stored_at: crate::util::now_rfc3339(),
        // A 4 s segment of 1 s clusters, as the muxer cuts them.
        clusters: (0..4u64)
            .map(|k| crate::segment::ClusterMark {
                offset: k * 16_384,
                time_ns: u64::from(index) * 4_000_000_000 + k * 1_000_000_000,
                keyframe: k == 0,
            })
            .collect(),
    };
    let t = Instant::now();
    for index in 0..n {
        let r = row(index);
        app.catalog.insert_segment(&r)?;
        app.audit.record(
            crate::audit::Event::SegmentStored {
                interview,
                candidate: *c,
                segment: index,
                commitment: hex::encode(r.commitment),
                region: RegionId::parse("jp")?,
            },
            &Actor::System,
        )?;
    }
    let ours = f64::from(n) / t.elapsed().as_secs_f64();
    let (name, raw) = match &app.config.catalog {
        Some(url) => ("PostgreSQL", bare_postgres(url, &row, n)?),
        None => ("SQLite", bare_sqlite(app, &row, n)?),
    };
    println!(
        "catalog hot path ({name}): {n} segment rows with their audit entries at {ours:.0}/s; bare {name} insert {raw:.0}/s; ratio {:.3}",
        ours / raw
    );
    Ok(())
}

/// The bare table both baselines insert into: the segment row's columns and nothing else.
const BARE_TABLE: &str =
    "CREATE TABLE bench_segments (interview_id TEXT, idx INTEGER, object_key TEXT,
    media_kind TEXT, plain_len INTEGER, sealed_len INTEGER, start_ns INTEGER, end_ns INTEGER,
    keyframe INTEGER, is_final INTEGER, commitment BLOB, tags TEXT, stored_at TEXT,
    PRIMARY KEY (interview_id, idx))";

/// `n` segment rows into a bare SQLite table with the catalog's settings (WAL,
/// `synchronous=FULL`): rows per second.
fn bare_sqlite(
    app: &Kiroku,
    row: &dyn Fn(u32) -> crate::catalog::SegmentRow,
    n: u32,
) -> Result<f64, Box<dyn std::error::Error>> {
    let path = app.data_dir().join("bench-bare.db");
    let _ = std::fs::remove_file(&path);
    let bare = rusqlite::Connection::open(&path)?;
    bare.pragma_update(None, "journal_mode", "WAL")?;
    bare.pragma_update(None, "synchronous", "FULL")?;
    bare.execute_batch(BARE_TABLE)?;
    let t = Instant::now();
    for index in 0..n {
        let r = row(index);
        bare.execute(
            "INSERT INTO bench_segments VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            rusqlite::params![
                r.interview.to_string(),
                r.index,
                r.object_key.as_str(),
                r.media_kind.as_str(),
                r.plain_len as i64,
                r.sealed_len as i64,
                r.start_ns as i64,
                r.end_ns as i64,
                r.starts_on_keyframe,
                r.is_final,
                &r.commitment[..],
                r.tags.to_string(),
                r.stored_at
            ],
        )?;
    }
    let raw = f64::from(n) / t.elapsed().as_secs_f64();
    drop(bare);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    Ok(raw)
}

/// `n` segment rows into a bare PostgreSQL table (a prepared insert, each its own
/// transaction, committed with the server's default `synchronous_commit`): rows per second.
fn bare_postgres(
    url: &str,
    row: &dyn Fn(u32) -> crate::catalog::SegmentRow,
    n: u32,
) -> Result<f64, Box<dyn std::error::Error>> {
    let mut config: postgres::Config = url.parse()?;
    if let Ok(p) = std::env::var("PGPASSWORD") {
        config.password(p);
    }
    let mut client = config.connect(postgres::NoTls)?;
    client.batch_execute("DROP TABLE IF EXISTS bench_segments")?;
    client.batch_execute(
        &BARE_TABLE
            .replace("INTEGER", "BIGINT")
            .replace("BLOB", "BYTEA"),
    )?;
    let insert = client.prepare(
        "INSERT INTO bench_segments VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )?;
    let t = Instant::now();
    for index in 0..n {
        let r = row(index);
        client.execute(
            &insert,
            &[
                &r.interview.to_string(),
                &i64::from(r.index),
                &r.object_key.as_str(),
                &r.media_kind.as_str(),
                &(r.plain_len as i64),
                &(r.sealed_len as i64),
                &(r.start_ns as i64),
                &(r.end_ns as i64),
                &i64::from(r.starts_on_keyframe),
                &i64::from(r.is_final),
                &&r.commitment[..],
                &r.tags.to_string(),
                &r.stored_at,
            ],
        )?;
    }
    let raw = f64::from(n) / t.elapsed().as_secs_f64();
    client.batch_execute("DROP TABLE bench_segments")?;
    Ok(raw)
}

/// Rotates a scratch keyring of `n` candidate keys and compares its rate with raw AES-GCM
/// unwrap + wrap of the same keys (the two AEAD operations a rotation does per key).
fn key_rotation(app: &Kiroku, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let dir = app.data_dir().join("bench-keyring");
    let _ = std::fs::remove_dir_all(&dir);
    let region = RegionId::parse("bench")?;
    let ring = crate::keyring::Keyring::open(&dir, None, std::slice::from_ref(&region))?;
    let keys: Vec<(CandidateId, CandidateKey)> = (0..n)
        .map(|_| Ok((CandidateId::new_random(), CandidateKey::generate(1)?)))
        .collect::<Result<_, seal::KeyError>>()?;
    ring.insert_batch(&region, &keys)?;
    let t = Instant::now();
    let rotated = ring.rotate(&region, 0)?;
    let ours = t.elapsed().as_secs_f64();
    // The baseline: the same unwrap + wrap per key, in memory, nothing stored.
    let (old, new) = (
        seal::MasterKey::load_or_create(&dir.join("baseline-old.key"))?,
        seal::MasterKey::load_or_create(&dir.join("baseline-new.key"))?,
    );
    let wrapped: Vec<Vec<u8>> = keys
        .iter()
        .map(|(c, k)| old.wrap(k, c, &region))
        .collect::<Result<_, _>>()?;
    let t = Instant::now();
    for ((c, _), w) in keys.iter().zip(&wrapped) {
        let k = old.unwrap(w, c, 1, &region)?;
        std::hint::black_box(new.wrap(&k, c, &region)?);
    }
    let raw = t.elapsed().as_secs_f64();
    drop(ring);
    let _ = std::fs::remove_dir_all(&dir);
    let (ours_rate, raw_rate) = (rotated.rewrapped as f64 / ours, n as f64 / raw);
    println!(
        "key rotation: {} keys rewrapped in {:.3} s = {:.0} keys/s (target >= 20000); raw AES-256-GCM unwrap+wrap {:.0} keys/s; ratio {:.3}",
        rotated.rewrapped,
        ours,
        ours_rate,
        raw_rate,
        ours_rate / raw_rate
    );
    Ok(())
}

/// A bench media file: its bytes and the content type they sniff as (WebM/Matroska or MP4).
pub(crate) fn read_media(path: &Path) -> Result<(Vec<u8>, &'static str), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let ct = crate::segment::sniff_content_type(&bytes)
        .ok_or_else(|| format!("{}: neither WebM/Matroska nor MP4", path.display()))?;
    Ok((bytes, ct))
}

/// CPU seconds per media minute of the whole ingest path against a GStreamer-only remux of
/// the same file through the same profile, printed as one line naming the file.
fn ingest_ratio(
    app: &Arc<Kiroku>,
    c: &CandidateId,
    media: &Path,
    rounds: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    let (bytes, ct) = read_media(media)?;
    let profile = app.profiles.for_content_type(ct)?.clone();
    let (mut remux_cpu, mut ingest_cpu, mut media_ms) = (0.0, 0.0, 0u64);
    let mut round_ratios = Vec::with_capacity(rounds as usize);
    for round in 0..rounds {
        // Both paths in each round, the one first in even rounds second in odd ones: drift in
        // the machine's state, and CPU that a finished pipeline's threads still spend after it
        // returned, then fall on both alike.
        let mut remux = 0.0;
        let mut ingest = 0.0;
        for remux_now in [round % 2 == 0, round % 2 == 1] {
            let t = cpu_seconds();
            if remux_now {
                crate::segment::remux_only(&profile, &bytes)?;
                remux = cpu_seconds() - t;
            } else {
                media_ms = ingest_once(app, c, &bytes, ct)?;
                ingest = cpu_seconds() - t;
            }
        }
        (remux_cpu, ingest_cpu) = (remux_cpu + remux, ingest_cpu + ingest);
        round_ratios.push(ingest / remux);
    }
    let minutes = media_ms as f64 / 60_000.0 * rounds as f64;
    let (per_min_ingest, per_min_remux) = (ingest_cpu / minutes, remux_cpu / minutes);
    let name = media
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    // The median of the rounds' own ratios: each round runs both paths back to back, so a
    // round disturbed by the machine (a slow fsync, reclaim) does not decide the figure.
    println!(
        "ingest CPU ({name}, profile {}): whole path {:.3} s per media minute, GStreamer-only remux {:.3} s per media minute, ratio {:.3} (median of {} rounds, {}; of the sums {:.3}; target <= 1.25)",
        profile.name,
        per_min_ingest,
        per_min_remux,
        median(&mut round_ratios),
        rounds,
        spread(&mut round_ratios),
        per_min_ingest / per_min_remux
    );
    Ok(())
}

/// CPU seconds per media minute of a WHIP session through kiroku's whole path (webrtcbin,
/// depayloading, muxing, cutting, sealing, storing, catalog) against the same session received
/// by webrtcbin, depayloaded and muxed with nothing after it. The publisher replays `media`
/// (VP8 + Opus WebM) in real time in this process without encoding; its CPU falls on both
/// sides alike, so the line gives the difference per media minute beside the ratio.
fn whip_ratio(
    app: &Arc<Kiroku>,
    c: &CandidateId,
    media: &Path,
    rounds: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    use crate::segment::{IceSettings, Segmenter, WhipPublisher, WhipSource};
    let (bytes, _) = read_media(media)?;
    let target = std::time::Duration::from_secs_f64(app.config.segment.target_seconds);
    let ice = IceSettings::loopback();
    // What the jitter buffer still holds when the publisher has sent its last packet.
    let settle = std::time::Duration::from_millis(500);
    let (mut ours_cpu, mut base_cpu, mut media_ms) = (0.0, 0.0, 0u64);
    let mut round_ratios = Vec::new();
    for round in 0..rounds {
        let (mut ours, mut base) = (0.0, 0.0);
        for baseline_now in [round % 2 == 0, round % 2 == 1] {
            let (publisher, offer) = WhipPublisher::offer(WhipSource::Replay(&bytes))?;
            let t = cpu_seconds();
            if baseline_now {
                let (seg, input, answer) = Segmenter::start_whip(&app.whip, &offer, &ice, target)?;
                let drain = std::thread::spawn(move || seg.drain_without_cutting());
                publisher.answer(&answer.sdp)?;
                publisher.wait_until_sent(std::time::Duration::from_secs(120));
                std::thread::sleep(settle);
                input.end();
                drain
                    .join()
                    .map_err(|_| "the baseline pipeline panicked")??;
                base = cpu_seconds() - t;
            } else {
                let created = capture::create_interview(
                    app,
                    c,
                    &RecruiterHandle::parse("bench")?,
                    None,
                    "video/webm",
                )?;
                capture::spend_ingest_token(app, &created.interview_id, &created.ingest_token)?;
                let (cap, answer) = Capture::start_whip(app, &created.interview_id, &offer)?;
                publisher.answer(&answer)?;
                publisher.wait_until_sent(std::time::Duration::from_secs(120));
                std::thread::sleep(settle);
                let out = cap.finish();
                if let Some(r) = out.reason {
                    return Err(format!("bench WHIP session failed: {r}").into());
                }
                media_ms = out.media_ms;
                ours = cpu_seconds() - t;
            }
        }
        (ours_cpu, base_cpu) = (ours_cpu + ours, base_cpu + base);
        round_ratios.push(ours / base);
    }
    let minutes = media_ms as f64 / 60_000.0 * rounds as f64;
    println!(
        "WHIP ingest CPU ({}, replayed in real time): whole path {:.3} s per media minute, webrtcbin + depayload + mux only {:.3} s per media minute, ratio {:.3} (median of {} rounds, {}; target <= 1.25), difference {:.3} s per media minute (the publisher's CPU is in both)",
        media
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        ours_cpu / minutes,
        base_cpu / minutes,
        median(&mut round_ratios),
        rounds,
        spread(&mut round_ratios),
        (ours_cpu - base_cpu) / minutes
    );
    Ok(())
}

/// The built-in analyzer's CPU seconds per media minute and real-time factor, on the bench
/// media's audio decoded by the analysis tap (decoding not counted).
fn analyzer(
    app: &Arc<Kiroku>,
    media: &[u8],
    container: crate::segment::Container,
    rounds: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut tap = crate::segment::AudioTap::start(app.profiles.source(), container)?;
    tap.push(media)?;
    tap.end();
    let samples = tap.samples_until(None, std::time::Duration::from_secs(30))?;
    if samples.is_empty() {
        return Err("bench media has no audio to analyse".into());
    }
    let (cpu0, wall0) = (cpu_seconds(), Instant::now());
    for _ in 0..rounds {
        let mut e = crate::analysis::features::Extractor::default();
        for piece in samples.chunks(16_000 * 4) {
            e.push(piece);
        }
        e.finish();
        std::hint::black_box(crate::analysis::report::whole(&e.features));
    }
    let (cpu, wall) = (cpu_seconds() - cpu0, wall0.elapsed().as_secs_f64());
    let media_s = samples.len() as f64 / 16_000.0 * rounds as f64;
    println!(
        "built-in analyzer: {:.3} CPU s per media minute, real-time factor {:.4} ({:.1} s of audio)",
        cpu / (media_s / 60.0),
        wall / media_s,
        media_s
    );
    Ok(())
}

/// The bench's own notice, recruiter and `record` grant, made once per data dir.
fn bench_setup(app: &Arc<Kiroku>, c: &CandidateId) -> Result<(), Box<dyn std::error::Error>> {
    let ledger = app.clerk();
    if app.catalog.notice("kiroku-bench")?.is_none() {
        ledger.register_notice(
            "kiroku-bench",
            "en",
            "https://example.invalid/bench",
            &"0".repeat(64),
        )?;
    }
    let bench = RecruiterHandle::parse("bench")?;
    if !app.catalog.recruiter_exists(&bench)? {
        crate::recruiter::add(app, &bench, None)?;
    }
    ledger.grant(
        c,
        &GrantRequest {
            scope: Scope::Record,
            notice: Some("kiroku-bench".into()),
            how: Circumstances {
                method: Method::Api,
                origin: "kiroku-bench".into(),
                language: None,
                time_zone: None,
            },
        },
        &Actor::Operator,
    )?;
    Ok(())
}

fn ingest_once(
    app: &Arc<Kiroku>,
    c: &CandidateId,
    bytes: &[u8],
    ct: &str,
) -> Result<u64, Box<dyn std::error::Error>> {
    let created = capture::create_interview(app, c, &RecruiterHandle::parse("bench")?, None, ct)?;
    capture::spend_ingest_token(app, &created.interview_id, &created.ingest_token)?;
    let cap = Capture::start(app, &created.interview_id, capture::Transport::Upload)?;
    let feeder = cap.feeder();
    for chunk in bytes.chunks(64 * 1024) {
        if feeder.push(chunk.to_vec()) == Pushed::CaptureOver {
            break;
        }
    }
    let outcome = cap.finish();
    if let Some(r) = outcome.reason {
        return Err(r.into());
    }
    Ok(outcome.media_ms)
}

fn seal_throughput(rounds: u32) -> (f64, f64) {
    let segment: Vec<u8> = (0..1024 * 1024).map(|i| (i * 31 % 251) as u8).collect();
    let key = CandidateKey::from_bytes([9; 32], 1);
    let id = ObjectIdentity {
        kind: ObjectKind::Segment,
        region: RegionId::parse("jp").expect("valid"),
        candidate: CandidateId::new_random(),
        interview: InterviewId::new_random(),
        index: 1,
        key_version: 1,
    };
    let per_round = 256; // 256 MiB per round
    let (mut ours, mut raw) = (0.0, 0.0);
    let mut buf = segment.clone();
    let mut ours_buf = segment.clone();
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..per_round {
            // seal() takes the buffer and encrypts it in place; take it back for the next round.
            let sealed = seal::seal(&key, &id, false, std::mem::take(&mut ours_buf)).expect("seal");
            std::hint::black_box(sealed.commitment());
            ours_buf = sealed.into_buffer();
        }
        ours += t.elapsed().as_secs_f64();
        let t = Instant::now();
        for _ in 0..per_round {
            std::hint::black_box(seal::raw_aes_gcm_baseline(&mut buf));
        }
        raw += t.elapsed().as_secs_f64();
    }
    let gb = (segment.len() * per_round * rounds as usize) as f64 / 1e9;
    (gb / ours, gb / raw)
}

/// The process's CPU time (every thread, finished ones included) in seconds, from
/// `CLOCK_PROCESS_CPUTIME_ID`: nanoseconds, where `/proc/self/stat` counts 10 ms ticks, as
/// coarse as one round of the ingest bench.
pub(crate) fn cpu_seconds() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// The middle value (the mean of the two middle ones for an even count); 0 for none.
/// How far the rounds' ratios spread: the middle half (quartiles) and the whole range, so a
/// reader sees whether a figure is steady or moved with the machine.
fn spread(values: &mut [f64]) -> String {
    if values.is_empty() {
        return "no rounds".into();
    }
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    format!(
        "quartiles {:.3}-{:.3}, range {:.3}-{:.3}",
        at(0.25),
        at(0.75),
        values[0],
        values[values.len() - 1]
    )
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// The S3 figures: latency from a closed segment to a durable one, and upload throughput
/// against a bare `put_object` loop of the same sealed bytes, alternating round by round.
pub fn s3(
    app: &Arc<Kiroku>,
    region: &str,
    media: &Path,
    rounds: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    use crate::store::{ObjectKey, Store};
    let id = RegionId::parse(region)?;
    let Some(r) = app.region(&id) else {
        return Err(format!("no region `{region}` in the config").into());
    };
    let Store::S3(store) = &r.store else {
        return Err(format!("region `{region}` is not an S3 region").into());
    };
    let bytes = std::fs::read(media).map_err(|e| format!("{}: {e}", media.display()))?;
    // 32 segment-sized pieces of the media per round (a 4 s segment of interview video is
    // 100 KiB to 1 MiB), cycling through the file.
    let pieces: Vec<Vec<u8>> = (0..32)
        .map(|n| {
            bytes
                .iter()
                .cycle()
                .skip(n * 7919)
                .take(256 * 1024)
                .copied()
                .collect()
        })
        .collect();
    let key = CandidateKey::from_bytes([5; 32], 1);
    let (c, i) = (CandidateId::new_random(), InterviewId::new_random());
    let tags = serde_json::json!({"kiroku": 1, "kind": "segment", "region": region, "consent_scopes": ["record"]});
    let (mut latencies, mut ours, mut plain, mut sent) = (Vec::new(), 0.0, 0.0, 0u64);
    for round in 0..rounds.max(1) {
        for (n, piece) in pieces.iter().enumerate() {
            let index = round * pieces.len() as u32 + n as u32;
            let t = Instant::now();
            let identity = ObjectIdentity {
                kind: ObjectKind::Segment,
                region: id.clone(),
                candidate: c,
                interview: i,
                index,
                key_version: 1,
            };
            let sealed = seal::seal(&key, &identity, false, piece.clone())?;
            let sealing = t.elapsed().as_secs_f64();
            let sealed_bytes = sealed.to_vec();
            // Whichever upload goes second is slowed by the store's work on the first, so
            // the order alternates from one segment to the next.
            let baseline = |plain: &mut f64| -> Result<(), Box<dyn std::error::Error>> {
                let t = Instant::now();
                store.plain_put(
                    &format!("bench-baseline/{i}/{index:08}"),
                    sealed_bytes.clone(),
                )?;
                *plain += t.elapsed().as_secs_f64();
                Ok(())
            };
            if index % 2 == 1 {
                baseline(&mut plain)?;
            }
            let put = Instant::now();
            store.put(&ObjectKey::segment(&c, &i, index), &sealed, &tags)?;
            ours += put.elapsed().as_secs_f64();
            latencies.push(sealing + put.elapsed().as_secs_f64());
            if index.is_multiple_of(2) {
                baseline(&mut plain)?;
            }
            sent += sealed_bytes.len() as u64;
        }
    }
    if !store.spool().keys().is_empty() {
        return Err("the bucket failed during the bench: segments went to the spool".into());
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize] * 1000.0;
    println!(
        "segment close to durable in S3 ({} segments of 256 KiB): p50 {:.1} ms, p99 {:.1} ms",
        latencies.len(),
        at(0.5),
        at(0.99)
    );
    let mb = sent as f64 / 1e6;
    println!(
        "upload throughput: kiroku store {:.1} MB/s, bare put_object {:.1} MB/s, ratio {:.3} (target >= 0.9)",
        mb / ours,
        mb / plain,
        plain / ours
    );
    erasure_time(app, r, store)
}

/// The time to erase a candidate with 10 interviews of 100 segments each in this S3 region
/// (`subject::erase`: the mark, the keyring, the catalog transaction, the listing and
/// deletion of every object, the audit entry), against a bare list-and-delete of as many
/// objects of the same size in the same bucket. The segments are sealed and stored as capture
/// stores them (64 KiB each, to keep the setup short); their catalog rows are not made.
fn erasure_time(
    app: &Arc<Kiroku>,
    region: &crate::app::RegionRuntime,
    store: &crate::store::S3Store,
) -> Result<(), Box<dyn std::error::Error>> {
    use crate::store::ObjectKey;
    const INTERVIEWS: u32 = 10;
    const SEGMENTS: u32 = 100;
    let c = app
        .catalog
        .add_candidate("bench-erasure", &region.region.country)?;
    let key = app.candidate_key(&c, region)?;
    let piece: Vec<u8> = (0..64 * 1024).map(|i| (i * 13 % 251) as u8).collect();
    let tags = serde_json::json!({"kiroku": 1, "kind": "segment", "consent_scopes": ["record"]});
    for _ in 0..INTERVIEWS {
        let i = InterviewId::new_random();
        for index in 0..SEGMENTS {
            let identity = ObjectIdentity {
                kind: ObjectKind::Segment,
                region: region.region.id.clone(),
                candidate: c,
                interview: i,
                index,
                key_version: key.version(),
            };
            let sealed = seal::seal(&key, &identity, false, piece.clone())?;
            region
                .store
                .put(&ObjectKey::segment(&c, &i, index), &sealed, &tags)?;
            store.plain_put(&format!("bench-erase/{i}/{index:08}"), sealed.to_vec())?;
        }
    }
    let t = Instant::now();
    let report = crate::subject::erase(app, &c, &Actor::System)?;
    let ours = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let bare = store.delete_listed("bench-erase/")?;
    let raw = t.elapsed().as_secs_f64();
    println!(
        "erasure ({INTERVIEWS} interviews x {SEGMENTS} segments, {} objects): {:.2} s; bare list+delete of {bare} objects {:.2} s; ratio {:.2}",
        report.objects_deleted,
        ours,
        raw,
        ours / raw
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spread_names_the_quartiles_and_the_range_whatever_the_order() {
        let mut ratios = vec![1.4, 1.0, 1.2, 1.1, 1.3];
        assert_eq!(median(&mut ratios), 1.2);
        assert_eq!(
            spread(&mut ratios),
            "quartiles 1.100-1.300, range 1.000-1.400"
        );
        assert_eq!(spread(&mut []), "no rounds");
        assert_eq!(
            spread(&mut [0.9]),
            "quartiles 0.900-0.900, range 0.900-0.900"
        );
    }
}
