//! The bodies of the fuzz targets in `fuzz/`: each takes arbitrary bytes, runs one parser of
//! bytes kiroku did not write, and panics only when an invariant of that parser fails. A
//! parser's errors are its answers; a panic, a hang or a result that breaks the invariant is
//! the bug.
//!
//! They live in the library, not in `fuzz/`, so that `tests/fuzz_corpus.rs` runs every input
//! of the saved corpora and every regression through them in the normal suite, on the stable
//! toolchain: what fuzzing found stays fixed without libFuzzer in the loop.
//!
//! | target | parser | invariant beyond "no panic" |
//! |---|---|---|
//! | `ebml_cutter`, `mp4_cutter` | [`crate::segment::Cutter`] | pieces rejoin to the input, however it is split; every cluster mark points at a cluster (`moof`) of its piece; a piece ends no earlier than it starts |
//! | `input_scan` | [`crate::segment::InputScan`] | the verdict does not depend on how the input is split |
//! | `webm_remuxer` | kiroku's own remuxer ([`crate::segment::DirectRemuxer`]) | its output is the same however the input is split, and always cuts cleanly |
//! | `sealed_object` | [`crate::seal::open`], [`crate::seal::ChunkOpener`] | a sealed object opens to what was sealed, whole or by range; a changed byte fails with a named error |
//! | `manifest` | [`crate::recording::Manifest`] | a manifest read back names the interview it was sealed for, and agrees with the catalog rows it lists |
//! | `byte_range` | [`crate::release::range::parse`] | a parsed range lies inside the recording |
//! | `finished_header` | [`crate::segment::finish`] | a finished Matroska Segment's size runs exactly to the end of the trailer |
//! | `whip_offer` | [`crate::segment::check_offer`] (GStreamer's SDP parser, then kiroku's plan) | none beyond an answer |
//! | `receipt`, `audit_log` | [`crate::consent::receipt::verify`], [`crate::audit::verify_text`] | a forged receipt or log never verifies |

use crate::catalog::{InterviewRow, SegmentRow};
use crate::ids::{CandidateId, InterviewId, RegionId};
use crate::recording::ManifestEntry;
use crate::seal::{self, CandidateKey, ObjectIdentity, ObjectKind};
use crate::segment::{ClusterMark, Container, Cutter, InputScan, MediaSpan, PieceKind};

/// The split points of an input, from its first byte: the same bytes arrive in pieces of
/// 1 to 256 bytes, as a network delivers them.
fn step_of(data: &[u8]) -> usize {
    data.first().map_or(1, |b| *b as usize + 1)
}

/// Matroska's cutter: see the module's table.
pub fn ebml_cutter(data: &[u8]) {
    cutter(Container::Matroska, data, &[0x1F, 0x43, 0xB6, 0x75]);
}

/// The MP4 cutter: see the module's table.
pub fn mp4_cutter(data: &[u8]) {
    cutter(Container::Mp4, data, b"moof");
}

fn cutter(container: Container, data: &[u8], cluster_id: &[u8]) {
    let mut c = Cutter::new(container, 1_000_000_000);
    let mut pieces = Vec::new();
    let mut failed = false;
    for chunk in data.chunks(step_of(data)) {
        match c.push(chunk) {
            Ok(p) => pieces.extend(p),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    if !failed {
        pieces.extend(c.finish().expect("finish after a clean push"));
    }
    let joined: Vec<u8> = pieces.iter().flat_map(|p| p.bytes.clone()).collect();
    if failed {
        assert!(
            data.starts_with(&joined),
            "pieces handed out are the input's start"
        );
    } else {
        assert_eq!(joined, data, "pieces rejoin to the input");
    }
    for p in &pieces {
        assert!(p.end_ns >= p.start_ns, "a piece ends before it starts");
        if p.kind == PieceKind::Header {
            assert!(p.clusters.is_empty(), "a header has no cluster");
        }
        for m in &p.clusters {
            let at = m.offset as usize;
            let here = match container {
                Container::Matroska => p.bytes.get(at..at + 4),
                Container::Mp4 => p.bytes.get(at + 4..at + 8),
            };
            assert_eq!(here, Some(cluster_id), "a cluster mark points at a cluster");
        }
    }
}

/// Both input scans: see the module's table.
pub fn input_scan(data: &[u8]) {
    for content_type in ["video/webm", "video/mp4"] {
        let verdict = |step: usize| {
            let mut s = InputScan::for_content_type(content_type).expect("a known container");
            data.chunks(step.max(1)).for_each(|c| s.push(c));
            (s.incomplete(), s.is_unfragmented_mp4())
        };
        let whole = verdict(data.len());
        assert_eq!(
            verdict(step_of(data)),
            whole,
            "{content_type}: split differently"
        );
        assert_eq!(verdict(1), whole, "{content_type}: byte by byte");
    }
}

/// kiroku's own WebM remuxer: see the module's table.
pub fn webm_remuxer(data: &[u8]) {
    let allowed: Vec<String> = ["video/x-vp8", "video/x-vp9", "video/x-av1", "audio/x-opus"]
        .map(String::from)
        .to_vec();
    let run = |step: usize| {
        let mut r = crate::segment::DirectRemuxer::new("webm", &allowed);
        let mut out = Vec::new();
        for chunk in data.chunks(step.max(1)) {
            match r.push(chunk) {
                Ok(o) => out.extend(o),
                Err(_) => return (out, true),
            }
        }
        (out, false)
    };
    let (out, failed) = run(data.len());
    let (split, split_failed) = run(step_of(data));
    assert_eq!(
        failed, split_failed,
        "the verdict does not depend on the split"
    );
    if !failed {
        assert_eq!(out, split, "the output does not depend on the split");
        let mut c = Cutter::new(Container::Matroska, 1_000_000_000);
        c.push(&out).expect("the remuxer's output cuts");
        c.finish().expect("the remuxer's output cuts to its end");
    }
}

/// The identity the sealed-object targets seal under.
fn identity(kind: ObjectKind) -> ObjectIdentity {
    ObjectIdentity {
        kind,
        region: RegionId::parse("jp").expect("a region id"),
        candidate: CandidateId::parse("5b1f0e52-3c4d-4e7a-9f00-000000000001").expect("an id"),
        interview: InterviewId::parse("5b1f0e52-3c4d-4e7a-9f00-000000000002").expect("an id"),
        index: 1,
        key_version: 1,
    }
}

fn key() -> CandidateKey {
    CandidateKey::from_bytes([7; 32], 1)
}

/// Sealed objects: see the module's table. The input is opened as it is (a stored object an
/// attacker wrote), then sealed as plaintext and opened back whole, by a range the input
/// names, and with the byte the input names changed.
pub fn sealed_object(data: &[u8]) {
    let (key, id) = (key(), identity(ObjectKind::Segment));
    let _ = seal::open(&key, &id, data);
    let sealed = seal::seal(&key, &id, false, data.to_vec())
        .expect("sealing works")
        .to_vec();
    let opened = seal::open(&key, &id, &sealed).expect("a sealed object opens");
    assert_eq!(opened.plaintext, data, "it opens to what was sealed");
    let plain_len = data.len() as u64;
    let word = |i: usize| {
        data.get(i..i + 4)
            .map_or(0, |b| u32::from_be_bytes(b.try_into().expect("4 bytes")))
    };
    let (offset, len) = (u64::from(word(1)) % (plain_len + 1), u64::from(word(5)));
    let opener = seal::ChunkOpener::new(&key, &id, &sealed, plain_len).expect("its header opens");
    if let Some(range) = opener.range(offset, len) {
        let (at, span) = range.sealed_span();
        let stored = &sealed[at as usize..(at + span) as usize];
        let parts = opener.open_range(&range, stored).expect("a range opens");
        let end = (offset + len).min(plain_len) as usize;
        assert_eq!(
            parts.concat(),
            &data[offset as usize..end],
            "a range opens to its slice"
        );
    }
    let mut tampered = sealed.clone();
    let at = word(9) as usize % tampered.len();
    tampered[at] ^= 1 << (data.first().copied().unwrap_or(0) % 8);
    assert!(
        seal::open(&key, &id, &tampered).is_err(),
        "a changed byte at {at} of {} is found",
        tampered.len()
    );
}

/// The interview the manifest target's manifests are sealed for.
fn interview_row() -> InterviewRow {
    let id = identity(ObjectKind::Manifest);
    InterviewRow {
        id: id.interview,
        candidate: id.candidate,
        recruiter: crate::ids::RecruiterHandle::parse("acme").expect("a handle"),
        job_ref: None,
        region: id.region,
        content_type: "video/webm".into(),
        profile: "webm".into(),
        state: crate::vocab::InterviewState::Finished,
        key_version: 1,
        created_at: String::new(),
        ended_at: None,
        bytes_in: 0,
        end_reason: None,
    }
}

/// The catalog row a manifest entry stands for, when its words and numbers read as one.
fn segment_row(row: &InterviewRow, e: &ManifestEntry) -> Option<SegmentRow> {
    Some(SegmentRow {
        interview: row.id,
        index: e.index,
        object_key: crate::store::ObjectKey::parse(&e.object_key).ok()?,
        media_kind: crate::vocab::MediaKind::parse(&e.media_kind)?,
        plain_len: e.plain_len,
        sealed_len: e.sealed_len,
        start_ns: e.start_ns,
        end_ns: e.end_ns,
        starts_on_keyframe: e.starts_on_keyframe,
        is_final: false,
        // Only as kiroku writes it (lowercase hex), which is all the check accepts.
        commitment: hex::decode(&e.commitment)
            .ok()
            .filter(|c| hex::encode(c) == e.commitment)?
            .try_into()
            .ok()?,
        tags: serde_json::Value::Null,
        stored_at: String::new(),
        clusters: Vec::new(),
    })
}

/// The manifest: see the module's table. The input is the plaintext of a sealed manifest.
pub fn manifest(data: &[u8]) {
    let row = interview_row();
    let key = key();
    let sealed = seal::seal(
        &key,
        &crate::recording::Manifest::identity(&row),
        true,
        data.to_vec(),
    )
    .expect("sealing works")
    .to_vec();
    let Ok(m) = crate::recording::Manifest::open(&key, &row, &sealed) else {
        return;
    };
    assert_eq!((m.interview, m.candidate), (row.id, row.candidate));
    let rows: Vec<SegmentRow> = m
        .segments
        .iter()
        .filter_map(|e| segment_row(&row, e))
        .collect();
    if rows.len() == m.segments.len() {
        let in_order = rows.iter().enumerate().all(|(i, r)| r.index == i as u32);
        let agrees = crate::recording::check_against_manifest(&m, &rows).is_ok();
        assert_eq!(
            agrees, in_order,
            "a manifest agrees with the rows it lists when in order"
        );
    }
}

/// Range headers: see the module's table. The first 8 bytes are the recording's length.
pub fn byte_range(data: &[u8]) {
    let (total, header) = match data.split_at_checked(8) {
        Some((t, h)) => (u64::from_be_bytes(t.try_into().expect("8 bytes")) >> 8, h),
        None => (0, data),
    };
    let Ok(text) = std::str::from_utf8(header) else {
        return;
    };
    if let Ok(Some(r)) = crate::release::range::parse(Some(text), total) {
        assert!(
            r.start <= r.end && r.end < total,
            "{r:?} inside {total} bytes"
        );
        assert!(r.len() <= total, "{r:?} no longer than the recording");
    }
}

/// Finished headers written from an arbitrary live header and cluster index: see the
/// module's table.
pub fn finished_header(data: &[u8]) {
    let (index, header) = data.split_at(data.len().min(32));
    let marks: Vec<ClusterMark> = index
        .chunks(4)
        .scan(0u64, |at, c| {
            *at += u64::from(c[0]) * 97;
            Some(ClusterMark {
                offset: *at,
                time_ns: u64::from(c.get(1).copied().unwrap_or(0)) * 40_000_000,
                keyframe: c.get(2).is_some_and(|b| b & 1 == 1),
            })
        })
        .collect();
    let len = marks.last().map_or(1, |m| m.offset + 1);
    let span = MediaSpan {
        len,
        clusters: &marks,
        starts_on_keyframe: true,
    };
    for container in [Container::Matroska, Container::Mp4] {
        let Ok(ends) = crate::segment::finish(container, header, &[span], 9_000_000_000) else {
            continue;
        };
        if container == Container::Matroska {
            let total = ends.header.len() as u64
                + len
                + ends.trailer.as_ref().map_or(0, |t| t.len() as u64);
            assert_eq!(
                crate::segment::segment_end(&ends.header),
                Some(total),
                "the Segment's size runs to the end of the trailer"
            );
        }
    }
}

/// WHIP offers: see the module's table.
pub fn whip_offer(data: &[u8]) {
    let Ok(offer) = std::str::from_utf8(data) else {
        return;
    };
    let d = crate::segment::WhipDescription::load(&crate::segment::PipelineSource::Builtin)
        .expect("the built-in WHIP description loads");
    let _ = crate::segment::check_offer(&d, offer);
}

/// The public key the receipt and audit targets verify under: RFC 8032's first test key,
/// whose signatures of kiroku's domains nobody made.
const NOBODYS_KEY: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

/// Consent receipts: see the module's table. The receipt's key id is set to the key's, so
/// every input reaches the signature check.
pub fn receipt(data: &[u8]) {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Some(sig) = value.get_mut("signature").and_then(|s| s.as_object_mut()) {
        let kid = crate::signing::key_id(&hex::decode(NOBODYS_KEY).expect("hex"));
        sig.insert("kid".into(), kid.into());
    }
    assert!(crate::consent::receipt::verify(&value, NOBODYS_KEY).is_err());
}

/// Audit logs given to `kiroku audit verify`: see the module's table. A NUL byte splits the
/// input into the log and its checkpoints.
pub fn audit_log(data: &[u8]) {
    let key = NOBODYS_KEY;
    let (log, checkpoints) = match data.iter().position(|b| *b == 0) {
        Some(i) => (
            &data[..i],
            String::from_utf8_lossy(&data[i + 1..]).into_owned(),
        ),
        None => (data, String::new()),
    };
    if let Ok(report) = crate::audit::verify_text(log, &checkpoints, key, &[]) {
        assert_eq!(
            report.checkpoints, 0,
            "no checkpoint verifies under a key that signed none"
        );
    }
}
