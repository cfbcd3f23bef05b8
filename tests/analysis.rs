//! The built-in analyzer on real recordings whose truth the fixture script knows
//! (`fixtures/analysis/make.sh`, `truth.json`), and the `analyze` consent gate.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{app, candidates, fixtures, interviews};
use kiroku::app::Kiroku;
use kiroku::capture::{CaptureEvent, Pushed};
use kiroku::catalog::{AnalysisRow, InterviewRow};
use kiroku::consent::Scope;
use kiroku::ids::{CandidateId, InterviewId, RecruiterHandle};
use kiroku::seal::ObjectKind;
use kiroku::vocab::OutputFormat;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    fixtures::path(&format!("analysis/{name}"))
}

fn truth(name: &str) -> Value {
    let t: Value = serde_json::from_slice(&std::fs::read(fixture("truth.json")).unwrap()).unwrap();
    t[name].clone()
}

/// What a candidate whose interviews are analysed granted.
const ANALYZED: &[Scope] = &[Scope::Record, Scope::Analyze];

/// Streams a fixture as an interview. `on_first_ack`, if given, runs once the first media
/// segment is stored, and always before the stream ends: the capture may still be working
/// through what was fed when the last byte goes in (tests run side by side on two cores), so
/// the stream waits for that segment rather than let the callback miss the stream.
fn stream(
    app: &Arc<Kiroku>,
    c: &CandidateId,
    name: &str,
    mut on_first_ack: Option<&mut dyn FnMut()>,
) -> InterviewRow {
    let bytes = std::fs::read(fixture(name)).unwrap();
    let ct = if name.ends_with(".mp4") {
        "audio/mp4"
    } else {
        "audio/webm"
    };
    let (created, mut cap) = interviews::start(app, c, ct).unwrap();
    let mut events = cap.take_events();
    // Whether a media segment (segment 0 is the recording's header) was acknowledged among
    // the events that came since the last look.
    let mut media_acked = move || {
        let mut seen = false;
        while let Ok(e) = events.try_recv() {
            seen |= matches!(e, CaptureEvent::Stored(a) if a.index >= 1);
        }
        seen
    };
    let feeder = cap.feeder();
    let mut fired = false;
    for piece in bytes.chunks(4096) {
        assert_eq!(feeder.push(piece.to_vec()), Pushed::Accepted);
        if let Some(callback) = on_first_ack.as_mut()
            && !fired
            && media_acked()
        {
            fired = true;
            callback();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    if let Some(callback) = on_first_ack
        && !fired
    {
        let start = Instant::now();
        while !media_acked() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no media segment was stored before the stream ended"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        callback();
    }
    let outcome = cap.finish();
    assert!(outcome.reason.is_none(), "{:?}", outcome.reason);
    app.catalog
        .interview(&created.interview_id)
        .unwrap()
        .unwrap()
}

/// Waits for the whole-interview output of the built-in analyzer (or its failure).
fn wait_for_whole(app: &Kiroku, id: &InterviewId) -> Vec<AnalysisRow> {
    let start = Instant::now();
    loop {
        let rows = app.catalog.analysis_outputs(id).unwrap();
        if rows.iter().any(|r| {
            r.analyzer == kiroku::analysis::BUILTIN
                && (r.segment.is_none() || r.status.as_str() == "failed")
        }) {
            return rows;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "analysis never finished: {rows:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Opens one sealed analysis output.
fn open(app: &Kiroku, row: &InterviewRow, out: &AnalysisRow) -> Vec<u8> {
    let (region, key) = app.interview_key(row).unwrap().unwrap();
    let sealed = region.store.get(out.object_key.as_ref().unwrap()).unwrap();
    let kind = if out.kind == OutputFormat::Wav {
        ObjectKind::Rendition
    } else {
        ObjectKind::Analysis {
            analyzer: out.analyzer.clone(),
        }
    };
    kiroku::seal::open(
        &key,
        &kiroku::recording::output_identity(row, kind, out.segment),
        &sealed,
    )
    .unwrap()
    .plaintext
}

fn whole_report(app: &Kiroku, row: &InterviewRow) -> Value {
    let rows = wait_for_whole(app, &row.id);
    let whole = rows
        .iter()
        .find(|r| r.segment.is_none() && r.status.as_str() == "ok")
        .unwrap_or_else(|| panic!("no whole-interview report: {rows:?}"));
    serde_json::from_slice(&open(app, row, whole)).unwrap()
}

/// The 16 kHz samples of the WAV renditions, in segment order.
fn rendition(app: &Kiroku, row: &InterviewRow) -> Vec<f32> {
    let mut out = Vec::new();
    for r in app.catalog.analysis_outputs(&row.id).unwrap() {
        if r.kind == OutputFormat::Wav {
            let bytes = open(app, row, &r);
            let mut reader = hound::WavReader::new(std::io::Cursor::new(bytes)).unwrap();
            assert_eq!(reader.spec().sample_rate, 16_000);
            assert_eq!(reader.spec().channels, 1);
            out.extend(
                reader
                    .samples::<i16>()
                    .map(|s| s.unwrap() as f32 / i16::MAX as f32),
            );
        }
    }
    out
}

fn value(v: &Value) -> f64 {
    v["value"]
        .as_f64()
        .unwrap_or_else(|| panic!("no value in {v}"))
}

#[test]
fn talk_time_and_pauses_of_speech_between_silences_match_the_script() {
    let (_dir, app, c) = app::with_candidate(ANALYZED, |_| {});
    for name in ["speech-pauses.webm", "speech-pauses-noise.webm"] {
        let row = stream(&app, &c, name, None);
        let r = whole_report(&app, &row);
        let t = truth(name);
        let known = t["speech_seconds"].as_f64().unwrap();
        let talk = value(&r["talk_time"]);
        assert!(
            (talk - known).abs() <= 0.1 * known,
            "{name}: talk time {talk} s, known {known} s: {r}"
        );
        assert_eq!(r["pauses"]["count"], t["pauses"], "{name}: {r}");
        assert_eq!(r["talk_time"]["unit"], "s");
        assert_eq!(r["version"], kiroku::analysis::report::VERSION);
        // Loudness within 1 LU of the ebur128 crate on the very same samples.
        let samples = rendition(&app, &row);
        let mut meter = ebur128::EbuR128::new(1, 16_000, ebur128::Mode::I).unwrap();
        meter.add_frames_f32(&samples).unwrap();
        let reference = meter.loudness_global().unwrap();
        let ours = value(&r["loudness"]["integrated"]);
        assert!(
            (ours - reference).abs() <= 1.0,
            "{name}: {ours} LUFS, ebur128 {reference}"
        );
        // Per-segment reports exist beside the whole one.
        let per_segment = app
            .catalog
            .analysis_outputs(&row.id)
            .unwrap()
            .iter()
            .filter(|o| o.kind == OutputFormat::Json && o.segment.is_some())
            .count();
        assert!(per_segment >= 3, "{per_segment}");
    }
}

#[test]
fn the_pitch_of_a_pure_tone_is_found_within_2_percent() {
    let (_dir, app, c) = app::with_candidate(ANALYZED, |_| {});
    // Opus in WebM (Chrome, Firefox) and AAC in fragmented MP4 (Safari): the tap reads both.
    for name in ["tone-220hz.webm", "tone-220hz-aac.mp4"] {
        let row = stream(&app, &c, name, None);
        assert_eq!(
            row.content_type,
            if name.ends_with(".mp4") {
                "audio/mp4"
            } else {
                "audio/webm"
            }
        );
        let r = whole_report(&app, &row);
        let hz = truth("tone-220hz.webm")["tone_hz"].as_f64().unwrap();
        let f0 = value(&r["pitch"]["median"]);
        assert!(
            (f0 - hz).abs() / hz <= 0.02,
            "{name}: {f0} Hz for a {hz} Hz tone"
        );
        assert_eq!(r["pitch"]["median"]["unit"], "Hz");
    }
}

#[test]
fn without_analyze_consent_nothing_is_computed_and_no_rendition_exists() {
    let (dir, app, c) = app::with_candidate(&[Scope::Record], |_| {});
    let row = stream(&app, &c, "speech-pauses.webm", None);
    std::thread::sleep(Duration::from_secs(1));
    assert!(app.catalog.analysis_outputs(&row.id).unwrap().is_empty());
    let objects = dir.path().join("regions/jp/objects/candidates");
    let found = common::files::walk(&objects);
    assert!(!found.is_empty());
    assert!(
        found
            .iter()
            .all(|p| !p.to_string_lossy().contains("/analysis/")),
        "no analysis object: {found:?}"
    );
}

#[test]
fn a_withdrawal_of_analyze_stops_analysis_and_keeps_what_was_made_sealed() {
    let (dir, app, c) = app::with_candidate(ANALYZED, |_| {});
    let mut withdraw_once_segment_1_is_analysed = || {
        // Once segment 1 is analysed, withdraw: what was made must stay, sealed.
        let start = Instant::now();
        loop {
            let interviews = app.catalog.interviews_of_candidate(&c).unwrap();
            let made = app
                .catalog
                .analysis_outputs(&interviews[0].id)
                .unwrap()
                .iter()
                .any(|o| o.kind == OutputFormat::Wav && o.segment == Some(1));
            if made {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "segment 1 never analysed"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        candidates::withdraw(&app, &c, Scope::Analyze);
    };
    let row = stream(
        &app,
        &c,
        "speech-pauses.webm",
        Some(&mut withdraw_once_segment_1_is_analysed),
    );
    // The capture itself went on to the end.
    assert_eq!(row.state, kiroku::catalog::InterviewState::Finished);
    let start = Instant::now();
    while !common::audit::log(dir.path()).contains("analysis.stopped") {
        // Generous: on a loaded two-core machine a debug build analyses slowly.
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "analysis did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let outputs = app.catalog.analysis_outputs(&row.id).unwrap();
    assert!(
        outputs.iter().all(|o| o.segment.is_some()),
        "no whole report after the withdrawal"
    );
    let first = outputs
        .iter()
        .find(|o| o.kind == OutputFormat::Wav && o.segment == Some(1))
        .expect("the output made before the withdrawal stays");
    let wav = open(&app, &row, first);
    assert!(wav.starts_with(b"RIFF"), "it opens, sealed as it was");
    let segments = app.catalog.segments(&row.id).unwrap().len();
    assert!(
        outputs
            .iter()
            .filter(|o| o.kind == OutputFormat::Wav)
            .count()
            < segments - 1
    );
}

#[test]
fn analysis_reaches_a_recruiter_only_under_share_analysis_while_analyze_stands() {
    use kiroku::consent::{Refusal, decision};
    let (_dir, app, c) = app::with_candidate(ANALYZED, |_| {});
    let row = stream(&app, &c, "tone-220hz.webm", None);
    let whole = whole_report(&app, &row);
    let acme = RecruiterHandle::parse("acme").unwrap();
    let decide =
        || decision::decide(&app.catalog, &app.audit, &acme, &row, decision::Analysis).unwrap();
    assert!(matches!(decide(), Err(Refusal::NoShareConsent { .. })));
    // share.recording does not open the analysis.
    candidates::grant(&app, &c, Scope::ShareRecording(acme.clone()));
    assert!(matches!(decide(), Err(Refusal::NoShareConsent { .. })));
    candidates::grant(&app, &c, Scope::ShareAnalysis(acme.clone()));
    let proof = decide().unwrap();
    let (body, provision) = kiroku::release::release_analysis(&app, proof).unwrap();
    assert_eq!(body["analyzers"]["kiroku-builtin"]["interview"], whole);
    assert!(
        !body["analyzers"]["kiroku-builtin"]["segments"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let records = app.catalog.provisions(&c).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].id, provision);
    assert_eq!(records[0].item.as_str(), "analysis");
    assert_eq!(records[0].recipient, "acme");
    // Once `analyze` is withdrawn, the outputs stay sealed and are no longer released.
    candidates::withdraw(&app, &c, Scope::Analyze);
    assert_eq!(decide().unwrap_err(), Refusal::AnalyzeConsentWithdrawn);
}

#[test]
fn external_analyzers_that_crash_hang_or_print_garbage_are_recorded_and_capture_goes_on() {
    let script = |name: &str| {
        vec![
            "sh".to_string(),
            fixtures::path(&format!("analyzers/{name}"))
                .display()
                .to_string(),
        ]
    };
    let analyzer = |name: &str, file: &str| kiroku::config::AnalyzerConfig {
        name: name.into(),
        command: Some(script(file)),
        url: None,
        // Only the one that hangs is meant to run out of time.
        timeout_seconds: if file == "hangs.sh" { 1 } else { 20 },
        environment: Vec::new(),
    };
    let (_dir, app, c) = app::with_candidate(ANALYZED, |cfg| {
        cfg.analyzers = vec![
            analyzer("wav-size", "wav-size.sh"),
            analyzer("crashes", "crashes.sh"),
            analyzer("hangs", "hangs.sh"),
            analyzer("garbage", "prints-garbage.sh"),
        ]
    });
    let row = stream(&app, &c, "speech-pauses.webm", None);
    assert_eq!(row.state, kiroku::catalog::InterviewState::Finished);
    let outputs = wait_for_whole(&app, &row.id);
    let media_segments = app.catalog.segments(&row.id).unwrap().len() - 1;
    let of = |name: &str| -> Vec<&AnalysisRow> {
        outputs.iter().filter(|o| o.analyzer == name).collect()
    };
    assert_eq!(of("wav-size").len(), media_segments, "{outputs:#?}");
    for o in of("wav-size") {
        assert_eq!(o.status.as_str(), "ok");
        let v: Value = serde_json::from_slice(&open(&app, &row, o)).unwrap();
        assert!(v["wav_bytes"].as_u64().unwrap() > 44, "{v}");
    }
    for (name, why) in [
        ("crashes", "exited with status 3"),
        ("hangs", "timed out after 1 s"),
        ("garbage", "not JSON"),
    ] {
        let rows = of(name);
        assert_eq!(rows.len(), media_segments, "{name}");
        for o in rows {
            assert_eq!(o.status.as_str(), "failed", "{name}");
            assert!(
                o.error.as_deref().unwrap().contains(why),
                "{name}: {:?}",
                o.error
            );
            assert!(o.object_key.is_none());
        }
    }
    assert!(outputs.iter().any(|o| o.analyzer == "kiroku-builtin"
        && o.segment.is_none()
        && o.status.as_str() == "ok"));
}

/// A one-route HTTP analyzer on loopback answering every POST with `status` and `body`;
/// returns its URL and how many WAV bytes it received in all.
fn http_analyzer(status: u16, body: &'static str) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/analyze", listener.local_addr().unwrap());
    let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = received.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut wav = vec![0u8; len];
            let _ = reader.read_exact(&mut wav);
            if wav.starts_with(b"RIFF") {
                seen.fetch_add(wav.len(), std::sync::atomic::Ordering::SeqCst);
            }
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, received)
}

#[test]
fn an_http_analyzer_gets_the_wav_and_its_json_is_sealed_and_an_error_status_is_recorded() {
    let (good, received) = http_analyzer(200, r#"{"score": 0.7, "unit": "probability"}"#);
    let (bad, _) = http_analyzer(500, r#"{"error": "model not loaded"}"#);
    let analyzer = |name: &str, url: &str| kiroku::config::AnalyzerConfig {
        name: name.into(),
        command: None,
        url: Some(url.into()),
        timeout_seconds: 5,
        environment: Vec::new(),
    };
    let (_dir, app, c) = app::with_candidate(ANALYZED, |cfg| {
        cfg.analyzers = vec![analyzer("vendor", &good), analyzer("broken", &bad)]
    });
    let row = stream(&app, &c, "tone-220hz.webm", None);
    let outputs = wait_for_whole(&app, &row.id);
    let vendor: Vec<&AnalysisRow> = outputs.iter().filter(|o| o.analyzer == "vendor").collect();
    assert!(!vendor.is_empty());
    for o in &vendor {
        assert_eq!(o.status.as_str(), "ok");
        let v: Value = serde_json::from_slice(&open(&app, &row, o)).unwrap();
        assert_eq!(v["score"], 0.7);
    }
    assert!(received.load(std::sync::atomic::Ordering::SeqCst) > 44 * vendor.len());
    let broken: Vec<&AnalysisRow> = outputs.iter().filter(|o| o.analyzer == "broken").collect();
    assert_eq!(broken.len(), vendor.len());
    assert!(
        broken
            .iter()
            .all(|o| o.status.as_str() == "failed"
                && o.error.as_deref() == Some("answered HTTP 500"))
    );
}

/// With reports kept 30 days and renditions 7, a sweep deletes exactly the outputs made
/// before that, rows and sealed objects, after a dry run that deleted nothing; the per-segment
/// reports still within their 30 days and the recording itself stay.
#[test]
fn a_retention_sweep_deletes_expired_reports_and_renditions_and_keeps_the_rest() {
    let (dir, app, c) = app::with_candidate(ANALYZED, |cfg| {
        cfg.retention.analysis_days = 30;
        cfg.retention.renditions_days = 7;
    });
    let row = stream(&app, &c, "tone-220hz.webm", None);
    let outputs = wait_for_whole(&app, &row.id);
    let ago = |days: i64| {
        (time::OffsetDateTime::now_utc() - time::Duration::days(days))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let db = common::postgres::catalog_db(dir.path());
    // Renditions ten days old (past 7), the whole report forty (past 30), the per-segment
    // reports ten (within 30).
    db.execute(
        "UPDATE analysis_outputs SET created_at = ?1 WHERE kind = 'wav'",
        [ago(10)],
    )
    .unwrap();
    db.execute(
        "UPDATE analysis_outputs SET created_at = ?1 WHERE kind = 'json' AND segment IS NULL",
        [ago(40)],
    )
    .unwrap();
    db.execute(
        "UPDATE analysis_outputs SET created_at = ?1 WHERE kind = 'json' AND segment IS NOT NULL",
        [ago(10)],
    )
    .unwrap();
    let stored = |o: &AnalysisRow| o.object_key.is_some() && o.status.as_str() == "ok";
    let renditions = outputs
        .iter()
        .filter(|o| stored(o) && o.kind == OutputFormat::Wav)
        .count();
    assert!(renditions > 0, "{outputs:?}");
    let now = kiroku::util::now_unix();
    let dry = kiroku::subject::sweep(&app, now, true).unwrap();
    assert_eq!(dry.expired.len(), renditions + 1, "{:?}", dry.expired);
    assert_eq!(
        app.catalog.analysis_outputs(&row.id).unwrap().len(),
        outputs.len()
    );

    let swept = kiroku::subject::sweep(&app, now, false).unwrap();
    assert_eq!(swept.expired, dry.expired);
    assert_eq!(swept.objects_deleted, renditions + 1);
    let left = app.catalog.analysis_outputs(&row.id).unwrap();
    assert!(
        left.iter()
            .filter(|o| stored(o))
            .all(|o| o.kind == OutputFormat::Json && o.segment.is_some()),
        "{left:?}"
    );
    let store = &app.region(&row.region).unwrap().store;
    for gone in outputs
        .iter()
        .filter(|o| stored(o) && (o.kind == OutputFormat::Wav || o.segment.is_none()))
    {
        let key = gone.object_key.as_ref().unwrap();
        assert!(store.get(key).is_err(), "{key:?} is still stored");
    }
    assert!(kiroku::recording::rebuild(&app, &row.id).is_ok());
}
