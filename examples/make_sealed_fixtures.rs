//! Writes `fixtures/sealed/`: one sealed segment that opens, and one file per way a stored
//! segment can be tampered with, each named after its fault. Run with
//! `cargo run --example make_sealed_fixtures` (or `bash fixtures/sealed/make.sh`).
//!
//! Everything is sealed under the published test key below for the identity below; the salt is
//! random, so the files differ from run to run while carrying the same faults.

use kiroku::ids::{CandidateId, InterviewId, RegionId};
use kiroku::seal::{
    CHUNK_SIZE, CandidateKey, HEADER_LEN, ObjectIdentity, ObjectKind, TAG_LEN, seal,
};

/// The fixtures' key: 32 bytes of 0x42, version 1. A test key, never a candidate's.
const TEST_KEY: [u8; 32] = [0x42; 32];

fn identity() -> ObjectIdentity {
    ObjectIdentity {
        kind: ObjectKind::Segment,
        region: RegionId::parse("jp").unwrap(),
        candidate: CandidateId::parse("11111111-1111-4111-8111-111111111111").unwrap(),
        interview: InterviewId::parse("22222222-2222-4222-8222-222222222222").unwrap(),
        index: 3,
        key_version: 1,
    }
}

/// Two chunks: a full one and a 10-byte final one.
fn plaintext() -> Vec<u8> {
    (0..CHUNK_SIZE + 10).map(|i| (i * 7 % 256) as u8).collect()
}

fn sealed_as(id: &ObjectIdentity, key: [u8; 32], last: bool) -> Vec<u8> {
    seal(&CandidateKey::from_bytes(key, 1), id, last, plaintext())
        .unwrap()
        .to_vec()
}

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sealed");
    std::fs::create_dir_all(&dir).unwrap();
    let good = sealed_as(&identity(), TEST_KEY, false);
    let c = CHUNK_SIZE + TAG_LEN;
    let (chunk0, chunk1) = (&good[HEADER_LEN..HEADER_LEN + c], &good[HEADER_LEN + c..]);
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut v = good.clone();
        f(&mut v);
        v
    };
    let moved = |f: &dyn Fn(&mut ObjectIdentity)| {
        let mut id = identity();
        f(&mut id);
        sealed_as(&id, TEST_KEY, false)
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("good-two-chunks.krk", good.clone()),
        (
            "bad-tag-first-chunk.krk",
            with(&|v| v[HEADER_LEN + CHUNK_SIZE] ^= 1),
        ),
        (
            "bad-byte-second-chunk.krk",
            with(&|v| v[HEADER_LEN + c + 3] ^= 0x80),
        ),
        ("flipped-salt-in-header.krk", with(&|v| v[40] ^= 1)),
        ("forged-final-flag.krk", with(&|v| v[6] |= 1)),
        ("forged-key-version.krk", with(&|v| v[11] = 2)),
        ("truncated-mid-chunk.krk", good[..good.len() - 5].to_vec()),
        ("no-final-chunk.krk", good[..HEADER_LEN + c].to_vec()),
        ("cut-inside-header.krk", good[..60].to_vec()),
        (
            "chunks-swapped.krk",
            [&good[..HEADER_LEN], chunk1, chunk0].concat(),
        ),
        (
            "first-chunk-duplicated.krk",
            [&good[..HEADER_LEN], chunk0, chunk0, chunk1].concat(),
        ),
        (
            "from-another-interview.krk",
            moved(&|id| {
                id.interview = InterviewId::parse("33333333-3333-4333-8333-333333333333").unwrap()
            }),
        ),
        (
            "from-another-candidate.krk",
            moved(&|id| {
                id.candidate = CandidateId::parse("44444444-4444-4444-8444-444444444444").unwrap()
            }),
        ),
        (
            "from-another-region.krk",
            moved(&|id| id.region = RegionId::parse("de").unwrap()),
        ),
        ("from-another-index.krk", moved(&|id| id.index = 4)),
        (
            "a-manifest-not-a-segment.krk",
            moved(&|id| id.kind = ObjectKind::Manifest),
        ),
        (
            "under-another-key.krk",
            sealed_as(&identity(), [0x43; 32], false),
        ),
    ];
    for (name, bytes) in cases {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    println!("wrote {}", dir.display());
}
