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
//! | `ebml_cutter`, `mp4_cutter` | [`crate::segment::Cutter`] | pieces do not depend on how the input is split, and rejoin to it; every cluster mark points at a cluster (`moof`) of its piece; a piece ends no earlier than it starts |
//! | `input_scan` | [`crate::segment::InputScan`] | the verdict does not depend on how the input is split |
//! | `webm_remuxer` | kiroku's own remuxer ([`crate::segment::DirectRemuxer`]) | its output is the same however the input is split, and always cuts cleanly |
//! | `sealed_object` | [`crate::seal::open`], [`crate::seal::ChunkOpener`] | a stored object that opens opens alike by range; a sealed object opens to what was sealed, whole or by range; a changed bit fails |
//! | `manifest` | [`crate::recording::Manifest`] | a manifest read back names the interview it was sealed for, agrees with catalog rows that list its segments in order, and disagrees with rows that differ in one |
//! | `byte_range` | [`crate::release::range::parse`] | a parsed range lies inside the recording |
//! | `finished_header` | [`crate::segment::finish`] | a finished Matroska Segment's size runs exactly to the end of the trailer |
//! | `whip_offer` | [`crate::segment::check_offer`] (GStreamer's SDP parser, then kiroku's plan) | none beyond an answer |
//! | `receipt`, `audit_log` | [`crate::consent::receipt::verify`], [`crate::audit::verify_text`] | a forged receipt or log never verifies |

use crate::catalog::{InterviewRow, SegmentRow};
use crate::ids::{CandidateId, InterviewId, RegionId};
use crate::recording::ManifestEntry;
use crate::seal::{self, CandidateKey, ObjectIdentity, ObjectKind};
use crate::segment::{ClusterMark, Container, Cutter, InputScan, MediaSpan, Piece, PieceKind};

/// The split points of an input: the same bytes arrive in pieces of 1 to 256 bytes, as a
/// network delivers them. The size is a hash of the whole input, not one of its bytes: a
/// stream's first bytes are fixed by its format (an EBML id, an MP4 box size), so a size taken
/// from them would be the same for every input the parser gets far with.
fn step_of(data: &[u8]) -> usize {
    // FNV-1a: any changed byte changes the split.
    let hash = data.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % 256) as usize + 1
}

/// Matroska's cutter: see the module's table.
pub fn ebml_cutter(data: &[u8]) {
    cutter(Container::Matroska, data, &[0x1F, 0x43, 0xB6, 0x75]);
}

/// The MP4 cutter: see the module's table.
pub fn mp4_cutter(data: &[u8]) {
    cutter(Container::Mp4, data, b"moof");
}

/// What a cutter made of an input fed in pieces of `step` bytes: its pieces, and whether it
/// refused the input.
fn cut(container: Container, data: &[u8], step: usize) -> (Vec<Piece>, bool) {
    let mut c = Cutter::new(container, 1_000_000_000);
    let mut pieces = Vec::new();
    for chunk in data.chunks(step.max(1)) {
        match c.push(chunk) {
            Ok(p) => pieces.extend(p),
            Err(_) => return (pieces, true),
        }
    }
    pieces.extend(c.finish().expect("finish after a clean push"));
    (pieces, false)
}

/// A piece as the catalog and the finisher see it.
fn summary(p: &Piece) -> (PieceKind, &[u8], u64, u64, bool, &[ClusterMark]) {
    (
        p.kind,
        &p.bytes,
        p.start_ns,
        p.end_ns,
        p.starts_on_keyframe,
        &p.clusters,
    )
}

fn cutter(container: Container, data: &[u8], cluster_id: &[u8]) {
    let (pieces, failed) = cut(container, data, step_of(data));
    let (whole, whole_failed) = cut(container, data, data.len());
    assert_eq!(
        failed, whole_failed,
        "the verdict does not depend on the split"
    );
    if !failed {
        assert!(
            pieces.iter().map(summary).eq(whole.iter().map(summary)),
            "the pieces do not depend on the split"
        );
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

/// The identity the manifest target seals under.
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

/// The key and identity `fixtures/sealed/` was sealed under (`examples/make_sealed_fixtures.rs`),
/// so the sealed seeds open, or fail for the fault each carries, past the header check.
fn fixtures_key_and_identity() -> (CandidateKey, ObjectIdentity) {
    let id = ObjectIdentity {
        kind: ObjectKind::Segment,
        region: RegionId::parse("jp").expect("a region id"),
        candidate: CandidateId::parse("11111111-1111-4111-8111-111111111111").expect("an id"),
        interview: InterviewId::parse("22222222-2222-4222-8222-222222222222").expect("an id"),
        index: 3,
        key_version: 1,
    };
    (CandidateKey::from_bytes([0x42; 32], 1), id)
}

/// Opens `plain_len` bytes of `sealed` from `offset` (the rest of it from `word`, at least one
/// byte) through [`seal::ChunkOpener`] and checks them against `plaintext`, what the whole
/// object opened to.
fn range_opens_to_its_slice(
    key: &CandidateKey,
    id: &ObjectIdentity,
    sealed: &[u8],
    plaintext: &[u8],
    offset: u64,
    word: u64,
) {
    let plain_len = plaintext.len() as u64;
    if offset >= plain_len {
        return;
    }
    let len = 1 + word % (plain_len - offset);
    let opener = seal::ChunkOpener::new(key, id, sealed, plain_len).expect("its header opens");
    let range = opener
        .range(offset, len)
        .expect("a range inside the object");
    let (at, span) = range.sealed_span();
    let stored = &sealed[at as usize..(at + span) as usize];
    let parts = opener.open_range(&range, stored).expect("a range opens");
    assert_eq!(
        parts.concat(),
        &plaintext[offset as usize..(offset + len) as usize],
        "a range opens to its slice"
    );
}

/// Sealed objects: see the module's table. The input is opened as it is (a stored object an
/// attacker wrote): if it opens, a range of it opens to the same bytes. Then it is sealed as
/// plaintext and opened back whole, by a range the input names, and with the bit the input
/// names flipped. (Sealing draws a random salt, so a finding replays the same path but not
/// the same sealed bytes.)
pub fn sealed_object(data: &[u8]) {
    let (key, id) = fixtures_key_and_identity();
    let word = |i: usize| {
        data.get(i..i + 4).map_or(0, |b| {
            u64::from(u32::from_be_bytes(b.try_into().expect("4 bytes")))
        })
    };
    if let Ok(opened) = seal::open(&key, &id, data) {
        let offset = word(40) % (opened.plaintext.len() as u64 + 1);
        range_opens_to_its_slice(&key, &id, data, &opened.plaintext, offset, word(44));
    }
    let sealed = seal::seal(&key, &id, false, data.to_vec())
        .expect("sealing works")
        .to_vec();
    let opened = seal::open(&key, &id, &sealed).expect("a sealed object opens");
    assert_eq!(opened.plaintext, data, "it opens to what was sealed");
    let offset = word(1) % (data.len() as u64 + 1);
    range_opens_to_its_slice(&key, &id, &sealed, data, offset, word(5));
    let mut tampered = sealed.clone();
    let at = word(9) as usize % tampered.len();
    tampered[at] ^= 1 << (word(13) % 8);
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
    if rows.len() != m.segments.len() {
        return;
    }
    let in_order = rows.iter().enumerate().all(|(i, r)| r.index == i as u32);
    let agrees = crate::recording::check_against_manifest(&m, &rows).is_ok();
    assert_eq!(
        agrees, in_order,
        "a manifest agrees with the rows it lists when in order"
    );
    if !in_order || rows.is_empty() {
        return;
    }
    // A catalog that differs from the manifest in one row, as the input picks it: a segment
    // dropped, or one whose commitment or object another.
    let pick = data.last().copied().unwrap_or(0) as usize;
    let i = pick / 3 % rows.len();
    let mut other = rows.clone();
    match pick % 3 {
        0 => {
            other.remove(i);
        }
        1 => other[i].commitment[0] ^= 1,
        _ => {
            other[i].object_key =
                crate::store::ObjectKey::parse(&format!("{}x", other[i].object_key.as_str()))
                    .expect("a longer key is a key");
        }
    }
    assert!(
        crate::recording::check_against_manifest(&m, &other).is_err(),
        "a catalog that differs in segment {i} disagrees"
    );
}

/// Range headers: see the module's table. The first 8 bytes, less their last, are the
/// recording's length (up to 2^56, so a range's end plus one never overflows).
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

/// The public key the receipt and audit targets verify under. Its secret was generated with
/// it (`openssl genpkey -algorithm ed25519`) and destroyed at once, so nothing was ever signed
/// with it and no signature can verify.
const NOBODYS_KEY: &str = "63f4a45a7594805f49364569d5cff5a2d9a99fa145359e3576786efe612de7a1";

/// Consent receipts: see the module's table. A signature's key id is set to the key's, so a
/// receipt that carries a signature reaches its check.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed_fixture(name: &str) -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/sealed")
                .join(name),
        )
        .expect("the sealed fixture is there")
    }

    /// Were the key or identity other than the fixtures', every sealed seed would fail at the
    /// header and the fuzzer would never reach a stored object's chunks.
    #[test]
    fn the_sealed_seeds_open_past_the_header_under_the_key_the_target_uses() {
        let (key, id) = fixtures_key_and_identity();
        let good = seal::open(&key, &id, &sealed_fixture("good-two-chunks.krk"))
            .expect("the good fixture opens");
        assert_eq!(good.plaintext.len(), seal::CHUNK_SIZE + 10);
        assert!(seal::open(&key, &id, &sealed_fixture("chunks-swapped.krk")).is_err());
    }

    #[test]
    fn the_split_of_an_input_depends_on_every_byte_not_its_first() {
        let a = b"\x1a\x45\xdf\xa3 the same start, another end".to_vec();
        let splits: std::collections::BTreeSet<usize> = (0..64u8)
            .map(|i| {
                let mut c = a.clone();
                c.push(i);
                step_of(&c)
            })
            .collect();
        assert!(splits.len() > 16, "{splits:?}");
        assert!(splits.iter().all(|s| (1..=256).contains(s)), "{splits:?}");
    }
}
