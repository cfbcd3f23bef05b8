//! Capture end to end through the library (the path `kiroku ingest` and the HTTP API share):
//! accepted fixtures rebuild byte for byte, refused ones store nothing, no plaintext on disk.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::fixtures::{self, read as fixture};
use common::{app, candidates, interviews};
use kiroku::app::Kiroku;
use kiroku::capture::{self, Capture, CaptureOutcome, Pushed};
use kiroku::consent::Scope;
use kiroku::ids::CandidateId;

/// The 10 s VP8 interview, streamed in 10 kB pieces.
fn ingest_interview(app: &Arc<Kiroku>, c: &CandidateId) -> CaptureOutcome {
    ingest_webm(app, c, "interview-vp8-opus.webm", 10_000).unwrap()
}

/// Streams `fixtures/<name>` as one WebM interview in `chunk`-sized pieces.
fn ingest_webm(
    app: &Arc<Kiroku>,
    c: &CandidateId,
    name: &str,
    chunk: usize,
) -> Result<CaptureOutcome, capture::CaptureError> {
    ingest(app, c, &fixture(name), "video/webm", chunk)
}

/// Streams `bytes` as one interview in `chunk`-sized pieces, until the capture is over.
fn ingest(
    app: &Arc<Kiroku>,
    c: &CandidateId,
    bytes: &[u8],
    ct: &str,
    chunk: usize,
) -> Result<CaptureOutcome, capture::CaptureError> {
    let (_, cap) = interviews::start(app, c, ct)?;
    let feeder = cap.feeder();
    for piece in bytes.chunks(chunk) {
        if feeder.push(piece.to_vec()) == Pushed::CaptureOver {
            break;
        }
    }
    Ok(cap.finish())
}

#[test]
fn every_accepted_fixture_rebuilds_and_segments_stay_time_bounded() {
    let (_dir, app, c) = app::with_candidate(&[Scope::Record], |_| {});
    for (name, ct) in [
        ("interview-vp8-opus.webm", "video/webm"),
        ("sparse-keyframes-vp9-opus.webm", "video/webm"),
        ("chromium-mediarecorder.webm", "video/webm;codecs=vp8,opus"),
        (
            "chromium-mediarecorder-h264-opus.mkv",
            "video/x-matroska;codecs=avc1,opus",
        ),
        (
            "chromium-mediarecorder-av1-opus.webm",
            "video/webm;codecs=av01,opus",
        ),
        ("audio-opus.ogg", "audio/ogg"),
        ("audio-opus.webm", "audio/webm"),
        ("audio-pcm.wav", "audio/wav"),
        (
            "safari-like-fmp4-h264-aac.mp4",
            "video/mp4;codecs=\"avc1.42E01E,mp4a.40.2\"",
        ),
        ("chromium-mediarecorder-fmp4-h264-opus.mp4", "video/mp4"),
        ("non-fragmented-h264-aac.mp4", "video/mp4"),
    ] {
        let out = ingest(&app, &c, &fixture(name), ct, 7_001).unwrap();
        assert!(out.reason.is_none(), "{name}: {:?}", out.reason);
        let segs = app.catalog.segments(&out.interview).unwrap();
        assert_eq!(segs[0].media_kind.as_str(), "header", "{name}");
        assert!(segs.len() >= 2, "{name}");
        for s in &segs[1..] {
            assert!(
                s.end_ns - s.start_ns <= 5_100_000_000,
                "{name}: segment {} lasts {} ns",
                s.index,
                s.end_ns - s.start_ns
            );
            assert_eq!(
                s.tags["consent_scopes"],
                serde_json::json!(["record"]),
                "{name}"
            );
            assert_eq!(s.tags["region"], "jp");
        }
        assert!(
            segs.last().unwrap().is_final && segs.iter().filter(|s| s.is_final).count() == 1,
            "{name}"
        );
        let rec = kiroku::recording::rebuild(&app, &out.interview).unwrap();
        assert_eq!(rec.segments as usize, segs.len());
    }
}

#[test]
fn sparse_keyframes_give_segments_that_do_not_start_on_a_keyframe() {
    let (_dir, app, c) = app::with_candidate(&[Scope::Record], |_| {});
    // One keyframe in each recording, at its start: WebM cut at clusters, MP4 at fragments.
    for (name, ct) in [
        ("sparse-keyframes-vp9-opus.webm", "video/webm"),
        ("safari-like-fmp4-h264-aac.mp4", "video/mp4"),
    ] {
        let out = ingest(&app, &c, &fixture(name), ct, 65_536).unwrap();
        let segs = app.catalog.segments(&out.interview).unwrap();
        let keys: Vec<bool> = segs[1..].iter().map(|s| s.starts_on_keyframe).collect();
        assert!(keys[0], "{name}");
        assert!(keys[1..].iter().all(|k| !k), "{name}: {keys:?}");
        assert!(keys.len() >= 2, "{name}: {keys:?}");
        for s in &segs[1..] {
            assert!(
                s.end_ns - s.start_ns <= 5_100_000_000,
                "{name}: segment {} lasts {} ns though the target is 4 s",
                s.index,
                s.end_ns - s.start_ns
            );
        }
    }
}

#[test]
fn no_plaintext_media_is_left_in_the_data_dir_after_an_ingest() {
    let (dir, app, c) = app::with_candidate(&[Scope::Record], |_| {});
    let media = fixture("interview-vp8-opus.webm");
    ingest(&app, &c, &media, "video/webm", 10_000).unwrap();
    let mp4 = fixture("safari-like-fmp4-h264-aac.mp4");
    ingest(&app, &c, &mp4, "video/mp4", 10_000).unwrap();
    assert_no_plaintext(dir.path(), &[&media, &mp4]);
}

/// No file under `dir` holds the EBML magic or a 64-byte run from the middle of any of `media`.
fn assert_no_plaintext(dir: &Path, media: &[&[u8]]) {
    let files = common::files::walk(dir);
    assert!(files.len() > 5);
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes.windows(4).any(|w| w == [0x1A, 0x45, 0xDF, 0xA3]),
            "EBML magic in {}",
            f.display()
        );
        for m in media {
            let run = &m[m.len() / 2..m.len() / 2 + 64];
            assert!(
                !bytes.windows(run.len()).any(|w| w == run),
                "fixture bytes in {}",
                f.display()
            );
        }
    }
}

#[test]
fn media_is_refused_without_record_consent_and_nothing_is_stored() {
    let (dir, app, c) = app::with_candidate(&[], |_| {});
    let err = ingest_webm(&app, &c, "interview-vp8-opus.webm", 10_000).unwrap_err();
    assert_eq!(err.code(), "no_record_consent");
    assert!(!dir.path().join("regions/jp/objects/candidates").exists());
}

#[test]
fn refused_or_broken_media_gets_a_precise_code() {
    let (dir, app, c) = app::with_candidate(&[Scope::Record], |_| {});
    for (name, ct, code) in [
        (
            "codec-vorbis-not-allowed.webm",
            "video/webm",
            "codec_not_allowed",
        ),
        (
            "codec-vorbis-not-allowed.ogg",
            "audio/ogg",
            "codec_not_allowed",
        ),
        // WebM cannot carry H.264: declared as WebM, Chrome's H.264 recording is refused.
        (
            "chromium-mediarecorder-h264-opus.mkv",
            "video/webm",
            "codec_not_allowed",
        ),
        // The Matroska profile takes H.264, VP8, VP9 and AV1, and still only Opus audio.
        (
            "codec-vorbis-not-allowed.webm",
            "video/x-matroska",
            "codec_not_allowed",
        ),
        ("not-media.bin", "video/webm", "media_unreadable"),
        (
            "corrupted-garbage-in-middle.webm",
            "video/webm",
            "media_unreadable",
        ),
        (
            "truncated-mid-cluster.webm",
            "video/webm",
            "media_truncated",
        ),
        (
            "codec-mpeg4part2-not-allowed.mp4",
            "video/mp4",
            "codec_not_allowed",
        ),
        ("truncated-mid-fragment.mp4", "video/mp4", "media_truncated"),
        ("not-media.bin", "video/mp4", "media_unreadable"),
        // WebM declared as MP4: the demuxer chosen by the declaration cannot read it.
        ("interview-vp8-opus.webm", "video/mp4", "media_unreadable"),
    ] {
        let out = ingest(&app, &c, &fixture(name), ct, 8_192).unwrap();
        assert_eq!(out.reason.as_ref().map(|r| r.code()), Some(code), "{name}");
    }
    let err = ingest(&app, &c, b"hello", "application/pdf", 5).unwrap_err();
    assert_eq!(err.code(), "unsupported_content_type");
    let broken = [
        "truncated-mid-cluster.webm",
        "corrupted-garbage-in-middle.webm",
        "truncated-mid-fragment.mp4",
    ]
    .map(fixture);
    assert_no_plaintext(dir.path(), &[&broken[0], &broken[1], &broken[2]]);
}

#[test]
fn segments_acknowledged_before_a_truncation_stay_recoverable() {
    let (_dir, app, c) = app::with_candidate(&[Scope::Record], |_| {});
    let out = ingest_webm(&app, &c, "truncated-mid-cluster.webm", 8_192).unwrap();
    assert!(out.segments >= 2);
    let rec = kiroku::recording::rebuild(&app, &out.interview).unwrap();
    assert_eq!(rec.segments, out.segments);
}

#[test]
fn a_stream_past_the_byte_limit_stops_and_keeps_what_came_before() {
    let (_dir, app, c) = app::with_candidate(&[Scope::Record], |cfg| {
        cfg.limits.max_bytes_per_interview = 150_000
    });
    let out = ingest_interview(&app, &c);
    assert_eq!(
        out.reason.as_ref().map(|r| r.code()),
        Some("too_many_bytes")
    );
    assert!(kiroku::recording::rebuild(&app, &out.interview).is_ok());
}

/// An interview of the VP8 fixture stored in a fresh data dir, and its objects' paths.
struct Stored {
    dir: tempfile::TempDir,
    app: Arc<Kiroku>,
    interview: kiroku::ids::InterviewId,
    objects: Vec<PathBuf>,
    /// The sealed finished header and trailer (MP4 has no trailer).
    finished_header: PathBuf,
    finished_trailer: PathBuf,
}

/// The recordings the tamper tests run on: WebM cut at clusters, Safari's MP4 at fragments.
const TAMPERED: [(&str, &str); 2] = [
    ("interview-vp8-opus.webm", "video/webm"),
    ("safari-like-fmp4-h264-aac.mp4", "video/mp4"),
];

/// Runs `check` on a freshly stored interview of each of [`TAMPERED`].
fn each_stored(check: impl Fn(Stored)) {
    for (name, ct) in TAMPERED {
        check(stored_interview(name, ct));
    }
}

fn stored_interview(name: &str, ct: &str) -> Stored {
    let (dir, app, c) = app::with_candidate(&[Scope::Record], |_| {});
    let out = ingest(&app, &c, &fixture(name), ct, 10_000).unwrap();
    assert!(out.reason.is_none(), "{name}: {:?}", out.reason);
    let root = dir.path().join("regions/jp/objects");
    let objects = app
        .catalog
        .segments(&out.interview)
        .unwrap()
        .iter()
        .map(|s| root.join(s.object_key.as_str()))
        .collect();
    let finished = root.join(format!(
        "candidates/{c}/interviews/{}/finished",
        out.interview
    ));
    Stored {
        dir,
        app,
        interview: out.interview,
        objects,
        finished_header: finished.join("header.krk"),
        finished_trailer: finished.join("trailer.krk"),
    }
}

impl Stored {
    fn export_error(&self) -> String {
        kiroku::recording::rebuild(&self.app, &self.interview)
            .err()
            .expect("export must fail")
            .to_string()
    }
}

#[test]
fn export_fails_naming_the_segment_when_a_segment_is_swapped() {
    each_stored(|s| {
        let (a, b) = (
            std::fs::read(&s.objects[1]).unwrap(),
            std::fs::read(&s.objects[2]).unwrap(),
        );
        std::fs::write(&s.objects[1], &b).unwrap();
        std::fs::write(&s.objects[2], &a).unwrap();
        let err = s.export_error();
        assert!(err.starts_with("segment 1 fails to open"), "{err}");
    });
}

#[test]
fn export_fails_when_a_segment_is_missing() {
    each_stored(|s| {
        std::fs::remove_file(&s.objects[2]).unwrap();
        let err = s.export_error();
        assert!(err.starts_with("segment 2 fails to open"), "{err}");
    });
}

#[test]
fn export_fails_when_a_segment_is_duplicated_over_the_next() {
    each_stored(|s| {
        std::fs::copy(&s.objects[1], &s.objects[2]).unwrap();
        let err = s.export_error();
        assert!(err.starts_with("segment 2 fails to open"), "{err}");
    });
}

#[test]
fn export_fails_when_a_segment_comes_from_another_interview() {
    each_stored(|s| {
        let c = candidates::add(&s.app, "JP", &[Scope::Record]);
        let other = ingest_webm(&s.app, &c, "interview-vp8-opus.webm", 10_000).unwrap();
        let theirs = s.app.catalog.segments(&other.interview).unwrap();
        let theirs = s
            .dir
            .path()
            .join("regions/jp/objects")
            .join(theirs[1].object_key.as_str());
        std::fs::copy(theirs, &s.objects[1]).unwrap();
        let err = s.export_error();
        assert!(err.starts_with("segment 1 fails to open"), "{err}");
    });
}

/// Flips one byte in the middle of the file at `path`.
fn flip_a_byte(path: &Path) {
    let mut b = std::fs::read(path).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x01;
    std::fs::write(path, b).unwrap();
}

#[test]
fn export_fails_when_the_finished_header_is_tampered() {
    each_stored(|s| {
        flip_a_byte(&s.finished_header);
        let err = s.export_error();
        assert!(
            err.starts_with("the finished recording's header fails to open"),
            "{err}"
        );
    });
}

#[test]
fn export_fails_when_the_cues_are_tampered() {
    let s = stored_interview("interview-vp8-opus.webm", "video/webm");
    flip_a_byte(&s.finished_trailer);
    let err = s.export_error();
    assert!(
        err.starts_with("the finished recording's trailer fails to open"),
        "{err}"
    );
}

#[test]
fn export_fails_when_the_cues_stand_in_for_the_header_or_a_segment() {
    let s = stored_interview("interview-vp8-opus.webm", "video/webm");
    let (header, cues) = (
        std::fs::read(&s.finished_header).unwrap(),
        std::fs::read(&s.finished_trailer).unwrap(),
    );
    std::fs::write(&s.finished_header, &cues).unwrap();
    let err = s.export_error();
    assert!(err.contains("header fails to open"), "{err}");
    std::fs::write(&s.finished_header, &header).unwrap();
    std::fs::write(&s.objects[1], &cues).unwrap();
    let err = s.export_error();
    assert!(err.starts_with("segment 1 fails to open"), "{err}");
}

#[test]
fn export_fails_when_a_finished_header_comes_from_another_interview() {
    each_stored(|s| {
        let c = candidates::add(&s.app, "JP", &[Scope::Record]);
        let other = ingest_webm(&s.app, &c, "interview-vp8-opus.webm", 10_000).unwrap();
        let theirs = s.dir.path().join(format!(
            "regions/jp/objects/candidates/{c}/interviews/{}/finished/header.krk",
            other.interview
        ));
        std::fs::copy(theirs, &s.finished_header).unwrap();
        let err = s.export_error();
        assert!(
            err.starts_with("the finished recording's header fails to open"),
            "{err}"
        );
    });
}

#[test]
fn tags_beside_each_object_are_readable_with_only_the_store() {
    let s = stored_interview("interview-vp8-opus.webm", "video/webm");
    for (i, obj) in s.objects.iter().enumerate() {
        let path = PathBuf::from(format!("{}.tags.json", obj.display()));
        let tags: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(tags["index"], i as u64);
        assert_eq!(tags["region"], "jp");
        assert_eq!(tags["key_version"], 1);
        assert_eq!(tags["consent_scopes"], serde_json::json!(["record"]));
        assert!(
            tags["media_kind"].is_string() && tags["start_ms"].is_u64() && tags["end_ms"].is_u64()
        );
        assert_eq!(tags["interview"], s.interview.to_string());
    }
    for (obj, kind) in [
        (&s.finished_header, "finished_header"),
        (&s.finished_trailer, "finished_trailer"),
    ] {
        let path = PathBuf::from(format!("{}.tags.json", obj.display()));
        let tags: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(tags["kind"], kind);
        assert_eq!(tags["region"], "jp");
        assert_eq!(tags["interview"], s.interview.to_string());
    }
}

#[test]
fn a_withdrawal_mid_stream_stops_capture_at_the_next_segment_boundary() {
    withdrawing_mid_stream_stops_capture(
        "JP",
        &[Scope::Record],
        Scope::Record,
        "consent_withdrawn",
    );
}

/// A candidate living in Korea, stored in Japan on their `transfer:JP` consent: withdrawing
/// it mid-stream stops capture at the next boundary, as `record` does. Storage abroad rests
/// on it at every segment, not only when the region was chosen.
#[test]
fn a_transfer_withdrawn_mid_stream_stops_capture_at_the_next_segment_boundary() {
    let to_japan = Scope::Transfer(kiroku::ids::CountryCode::parse("JP").unwrap());
    withdrawing_mid_stream_stops_capture(
        "KR",
        &[Scope::Record, to_japan.clone()],
        to_japan,
        "transfer_consent_withdrawn",
    );
}

/// Streams each tampering fixture for a candidate living in `home` with `scopes`, withdraws
/// `withdrawn` once the first media segment is acknowledged, and expects the capture to stop
/// at the next boundary with `code`, the two segments before kept.
fn withdrawing_mid_stream_stops_capture(
    home: &str,
    scopes: &[Scope],
    withdrawn: Scope,
    code: &str,
) {
    for (name, ct) in TAMPERED {
        let dir = tempfile::tempdir().unwrap();
        let app = app::ready(dir.path(), |_| {});
        let c = candidates::add(&app, home, scopes);
        let (_, mut cap) = interviews::start(&app, &c, ct).unwrap();
        let mut acks = cap.take_events();
        let feeder = cap.feeder();
        let media = fixture(name);
        // Stream until the first media segment (0-4 s) is acknowledged, then withdraw. Past
        // media time 5 s (beyond the cut that closes segment 1, short of the one that closes
        // segment 2) the feed slows to a chunk a second while it waits: fed on at full speed,
        // a loaded machine could cut segment 2 before the acknowledgement of segment 1
        // arrived, its consent still standing. (A remuxing pipeline may hold back a fragment
        // until it sees the next, so the pause cannot be a full stop.)
        let slow_from = offset_of_media_time(&media, ct, 5_000_000_000);
        let mut chunks = media.chunks(4_096);
        let mut fed = 0;
        let mut acked = 0;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while acked < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "{name}: segment {acked} acknowledged after {fed} bytes"
            );
            if fed < slow_from || wait_for_one(&mut acks, Duration::from_secs(1)) == 0 {
                if let Some(chunk) = chunks.next() {
                    fed += chunk.len();
                    assert_eq!(feeder.push(chunk.to_vec()), Pushed::Accepted, "{name}");
                }
                // All of it in and the stream still open: the acknowledgement is on its way
                // (a loaded machine seals and fsyncs slowly).
            } else {
                acked += 1;
            }
            while acks.try_recv().is_ok() {
                acked += 1;
            }
        }
        candidates::withdraw(&app, &c, withdrawn.clone());
        for chunk in chunks {
            if feeder.push(chunk.to_vec()) == Pushed::CaptureOver {
                break;
            }
        }
        let out = cap.finish();
        assert_eq!(out.reason.as_ref().map(|r| r.code()), Some(code), "{name}");
        let segs = app.catalog.segments(&out.interview).unwrap();
        assert_eq!(
            segs.len(),
            2,
            "{name}: nothing after the withdrawal is kept"
        );
        // Cut short, and finished all the same: its duration is what was kept.
        let export = dir.path().join(format!("{name}.withdrawn"));
        kiroku::recording::export(&app, &out.interview, &export).unwrap();
        common::probe::assert_duration(&export, out.media_ms as f64 / 1000.0);
    }
}

/// Waits up to `wait` for one acknowledgement: 1 if it came, 0 if not.
fn wait_for_one<T>(acks: &mut tokio::sync::mpsc::UnboundedReceiver<T>, wait: Duration) -> usize {
    let until = std::time::Instant::now() + wait;
    while std::time::Instant::now() < until {
        if acks.try_recv().is_ok() {
            return 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    0
}

/// The byte offset in `media` of its first cluster or fragment at or after `ns` of media
/// time (the length of `media` if none is), as kiroku's own cutter reads it.
fn offset_of_media_time(media: &[u8], content_type: &str, ns: u64) -> usize {
    use kiroku::segment::{Container, Cutter};
    let container = Container::of(content_type).expect("a container kiroku cuts");
    let mut cutter = Cutter::new(container, 1_000_000_000);
    let mut pieces = cutter.push(media).expect("the fixture cuts");
    pieces.extend(cutter.finish().expect("the fixture ends cleanly"));
    let mut start = 0;
    for piece in pieces {
        if let Some(mark) = piece.clusters.iter().find(|m| m.time_ns >= ns) {
            return start + mark.offset as usize;
        }
        start += piece.bytes.len();
    }
    media.len()
}

#[test]
fn a_stream_past_the_duration_limit_stops_and_keeps_what_came_before() {
    let (_dir, app, c) = app::with_candidate(&[Scope::Record], |cfg| {
        cfg.limits.max_seconds_per_interview = 5
    });
    let out = ingest_interview(&app, &c);
    assert_eq!(out.reason.as_ref().map(|r| r.code()), Some("too_long"));
    let segs = app.catalog.segments(&out.interview).unwrap();
    assert!(segs.iter().all(|s| s.end_ns <= 5_000_000_000));
    assert_eq!(segs.len(), 2);
    assert!(kiroku::recording::rebuild(&app, &out.interview).is_ok());
}

#[test]
fn a_second_stream_for_the_same_interview_is_refused() {
    let (_dir, app, c) = app::with_candidate(&[Scope::Record], |_| {});
    let (created, cap) = interviews::start(&app, &c, "video/webm").unwrap();
    let err = capture::spend_ingest_token(&app, &created.interview_id, &created.ingest_token)
        .unwrap_err();
    assert_eq!(err.code(), "already_streamed");
    assert_eq!(
        Capture::start(
            &app,
            &created.interview_id,
            kiroku::capture::Transport::Upload
        )
        .err()
        .unwrap()
        .code(),
        "already_streamed"
    );
    drop(cap.finish());
}

/// On both roads for Matroska/WebM (kiroku's own remuxer, the default, and the profiles'
/// GStreamer pipelines), and for MP4.
#[test]
fn every_export_decodes_to_the_same_streams_every_frame_and_duration() {
    for direct in [true, false] {
        exports_decode_to_their_inputs(direct);
    }
}

fn exports_decode_to_their_inputs(direct: bool) {
    let (dir, app, c) =
        app::with_candidate(&[Scope::Record], |cfg| cfg.segment.direct_remux = direct);
    for (name, ct) in [
        ("interview-vp8-opus.webm", "video/webm"),
        ("sparse-keyframes-vp9-opus.webm", "video/webm"),
        ("chromium-mediarecorder.webm", "video/webm"),
        ("chromium-mediarecorder-av1-opus.webm", "video/webm"),
        ("chromium-mediarecorder-h264-opus.mkv", "video/x-matroska"),
        ("audio-opus.webm", "video/webm"),
        ("safari-like-fmp4-h264-aac.mp4", "video/mp4"),
        ("chromium-mediarecorder-fmp4-h264-opus.mp4", "video/mp4"),
        ("non-fragmented-h264-aac.mp4", "video/mp4"),
    ] {
        let input = fixtures::path(name);
        let out = ingest(&app, &c, &fixture(name), ct, 9_999).unwrap();
        assert!(
            out.reason.is_none(),
            "{name} (direct: {direct}): {:?}",
            out.reason
        );
        let export = dir.path().join(format!("{name}.export"));
        kiroku::recording::export(&app, &out.interview, &export).unwrap();
        common::media::assert_same_media(&input, &export);
        // Finished: players read the duration from the header, not by reading it all.
        let end = common::media::decode(&export)
            .iter()
            .map(|s| s.end_ns)
            .max()
            .unwrap();
        common::probe::assert_duration(&export, end as f64 / 1e9);
    }
}

#[test]
fn a_segment_that_starts_on_a_keyframe_plays_alone_behind_the_header() {
    use kiroku::seal::{ObjectIdentity, ObjectKind, open};
    // 1 s segments, so the MP4 (4 s, a keyframe every second) has later segments too.
    let (dir, app, c) =
        app::with_candidate(&[Scope::Record], |cfg| cfg.segment.target_seconds = 1.0);
    for (name, ct, codec) in [
        ("interview-vp8-opus.webm", "video/webm", "video/x-vp8"),
        ("non-fragmented-h264-aac.mp4", "video/mp4", "video/x-h264"),
    ] {
        let out = ingest(&app, &c, &fixture(name), ct, 10_000).unwrap();
        assert!(out.reason.is_none(), "{name}: {:?}", out.reason);
        let row = app.catalog.interview(&out.interview).unwrap().unwrap();
        let (region, key) = app.interview_key(&row).unwrap().unwrap();
        let segs = app.catalog.segments(&out.interview).unwrap();
        let plain = |i: usize| {
            let id = ObjectIdentity {
                kind: ObjectKind::Segment,
                region: row.region.clone(),
                candidate: row.candidate,
                interview: row.id,
                index: i as u32,
                key_version: row.key_version,
            };
            let sealed = region.store.get(&segs[i].object_key).unwrap();
            open(&key, &id, &sealed).unwrap().plaintext
        };
        // Later segments only: the first media segment follows the header anyway.
        let alone: Vec<usize> = segs
            .iter()
            .filter(|s| s.starts_on_keyframe && s.index > 1)
            .map(|s| s.index as usize)
            .collect();
        assert!(
            alone.len() >= 2,
            "{name}: the keyframe interval gives later segments that start on one"
        );
        for i in alone {
            let file = dir.path().join(format!("{name}-segment-{i}-alone"));
            std::fs::write(&file, [plain(0), plain(i)].concat()).unwrap();
            let video = common::media::decode(&file)
                .into_iter()
                .find(|s| s.codec == codec)
                .unwrap();
            let seconds = (segs[i].end_ns - segs[i].start_ns) as f64 / 1e9;
            // 30 frames per second in both fixtures: every frame of the segment decodes.
            assert!(
                video.frames as f64 >= seconds * 30.0 - 1.0,
                "{name} segment {i}: {} frames in {seconds} s",
                video.frames
            );
            assert!(
                video.end_ns + 100_000_000 >= segs[i].end_ns,
                "{name} segment {i} plays to its end"
            );
        }
    }
}

/// A stream whose media time never advances reaches no cut: past `max_segment_bytes` it ends
/// with `segment_too_large` instead of growing in memory, the header it made kept.
#[test]
fn a_stream_whose_timestamps_never_advance_ends_as_segment_too_large() {
    let (_dir, app, c) = app::with_candidate(&[Scope::Record], |cfg| {
        cfg.limits.max_segment_bytes = 100_000
    });
    let media = fixture("timestamps-never-advance.webm");
    assert!(
        media.len() > 200_000,
        "the fixture is larger than the limit"
    );
    let out = ingest(&app, &c, &media, "video/webm", 8_192).unwrap();
    assert_eq!(
        out.reason.as_ref().map(|r| r.code()),
        Some("segment_too_large")
    );
    let segs = app.catalog.segments(&out.interview).unwrap();
    assert_eq!(segs.len(), 1, "only the header: no media time, no cut");
    assert_eq!(segs[0].media_kind.as_str(), "header");
    // Within the default limit the same file is one (long) segment and finishes.
    let (_dir, app, c) = app::with_candidate(&[Scope::Record], |_| {});
    let out = ingest(&app, &c, &media, "video/webm", 8_192).unwrap();
    assert!(out.reason.is_none(), "{:?}", out.reason);
}

/// A stream whose media time leaps four hours ahead after 4 s ends with `too_long` at the
/// segment that reaches past the three-hour limit, in the time the media takes to send, and
/// no stored segment reaches past the limit.
#[test]
fn a_stream_whose_timestamps_jump_hours_ahead_ends_as_too_long() {
    let (_dir, app, c) = app::with_candidate(&[Scope::Record], |_| {});
    let media = fixture("timestamps-jump-hours-ahead.webm");
    let out = ingest(&app, &c, &media, "video/webm", 8_192).unwrap();
    assert_eq!(out.reason.as_ref().map(|r| r.code()), Some("too_long"));
    let limit_ns = app.config.limits.max_seconds_per_interview * 1_000_000_000;
    let segs = app.catalog.segments(&out.interview).unwrap();
    assert!(!segs.is_empty(), "the header is kept");
    assert!(segs.iter().all(|s| s.end_ns <= limit_ns), "{segs:?}");
}

/// Above `max_stream_kbps` in media time (the fixture is about 180 kbit/s; the limit here 20)
/// the stream stops at the first media segment with `bitrate_too_high`, measured on the
/// segments' own bytes, so an upload sent faster than real time is judged by its media.
#[test]
fn a_stream_above_the_bitrate_limit_in_media_time_stops_at_the_first_segment() {
    let (_dir, app, c) =
        app::with_candidate(&[Scope::Record], |cfg| cfg.limits.max_stream_kbps = 20);
    let out = ingest(
        &app,
        &c,
        &fixture("interview-vp8-opus.webm"),
        "video/webm",
        65_536,
    )
    .unwrap();
    assert_eq!(
        out.reason.as_ref().map(|r| r.code()),
        Some("bitrate_too_high")
    );
    let segs = app.catalog.segments(&out.interview).unwrap();
    assert_eq!(segs.len(), 1, "the header only");
    // At 400 kbit/s the same upload, sent at once, is recorded whole.
    let (_dir, app, c) =
        app::with_candidate(&[Scope::Record], |cfg| cfg.limits.max_stream_kbps = 400);
    let out = ingest(
        &app,
        &c,
        &fixture("interview-vp8-opus.webm"),
        "video/webm",
        65_536,
    )
    .unwrap();
    assert!(out.reason.is_none(), "{:?}", out.reason);
}

/// The boxes at the top level of an MP4 file, or inside one box's body: (type, body, offset).
fn boxes(b: &[u8], at: usize) -> Vec<([u8; 4], &[u8], usize)> {
    let mut out = Vec::new();
    let mut p = 0;
    while p + 8 <= b.len() {
        let size = u32::from_be_bytes(b[p..p + 4].try_into().unwrap()) as usize;
        assert!(
            size >= 8 && p + size <= b.len(),
            "a box at {} runs past its parent",
            at + p
        );
        out.push((
            b[p + 4..p + 8].try_into().unwrap(),
            &b[p + 8..p + size],
            at + p,
        ));
        p += size;
    }
    assert_eq!(p, b.len(), "boxes fill their parent");
    out
}

/// A finished MP4 declares its duration in `mehd` and indexes its fragments in a `sidx`
/// whose references land, one after another, on `moof` boxes and run to the end of the file.
#[test]
fn a_finished_mp4_has_its_duration_in_mehd_and_a_sidx_that_lands_on_fragments() {
    let (dir, app, c) = app::with_candidate(&[Scope::Record], |_| {});
    for name in [
        "safari-like-fmp4-h264-aac.mp4",
        "chromium-mediarecorder-fmp4-h264-opus.mp4",
    ] {
        let out = ingest(&app, &c, &fixture(name), "video/mp4", 10_000).unwrap();
        assert!(out.reason.is_none(), "{name}: {:?}", out.reason);
        let export = dir.path().join(format!("{name}.finished"));
        kiroku::recording::export(&app, &out.interview, &export).unwrap();
        let file = std::fs::read(&export).unwrap();
        let top = boxes(&file, 0);
        let kinds: Vec<&[u8; 4]> = top.iter().map(|(k, ..)| k).collect();
        assert_eq!(&kinds[..2], &[b"ftyp", b"moov"], "{name}");
        // The sidx is the header's last box, right before the first fragment.
        let s = kinds.iter().position(|k| *k == b"moof").unwrap() - 1;
        assert_eq!(kinds[s], b"sidx", "{name}");
        let moov = boxes(top[1].1, top[1].2 + 8);
        let mvhd = moov.iter().find(|(k, ..)| k == b"mvhd").unwrap().1;
        let scale = u32::from_be_bytes(mvhd[12..16].try_into().unwrap()) as f64;
        let mvex = moov.iter().find(|(k, ..)| k == b"mvex").unwrap();
        let mehd = boxes(mvex.1, mvex.2 + 8);
        assert_eq!(&mehd[0].0, b"mehd", "{name}: mehd leads mvex");
        let declared = u64::from_be_bytes(mehd[0].1[4..12].try_into().unwrap()) as f64 / scale;
        assert!(
            (declared - out.media_ms as f64 / 1000.0).abs() <= 0.05,
            "{name}: mehd says {declared} s, capture stored {} ms",
            out.media_ms
        );
        let sidx = top[s].1;
        let first_offset = u64::from_be_bytes(sidx[20..28].try_into().unwrap()) as usize;
        let count = u16::from_be_bytes(sidx[30..32].try_into().unwrap()) as usize;
        assert!(count >= 2, "{name}: {count} references");
        let mut at = top[s].2 + 8 + sidx.len() + first_offset;
        for i in 0..count {
            let r = &sidx[32 + 12 * i..44 + 12 * i];
            assert_eq!(
                &file[at + 4..at + 8],
                b"moof",
                "{name}: reference {i} lands on a moof"
            );
            assert_eq!(
                r[8] & 0x80,
                0x80,
                "{name}: reference {i} starts on a sync sample"
            );
            at += (u32::from_be_bytes(r[0..4].try_into().unwrap()) & 0x7FFF_FFFF) as usize;
        }
        assert_eq!(
            at,
            file.len(),
            "{name}: the references cover every fragment"
        );
    }
}
