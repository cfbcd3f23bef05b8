//! The sealed-object format: round trips at the chunk boundaries, and every tamper case fails.

mod common;

use kiroku::ids::{CandidateId, InterviewId, RegionId};
use kiroku::seal::{
    CHUNK_SIZE, CandidateKey, HEADER_LEN, ObjectIdentity, ObjectKind, SealError, TAG_LEN, open,
    seal,
};

fn key() -> CandidateKey {
    CandidateKey::from_bytes([42; 32], 1)
}

fn ident() -> ObjectIdentity {
    ObjectIdentity {
        kind: ObjectKind::Segment,
        region: RegionId::parse("jp").unwrap(),
        candidate: CandidateId::parse("11111111-1111-4111-8111-111111111111").unwrap(),
        interview: InterviewId::parse("22222222-2222-4222-8222-222222222222").unwrap(),
        index: 3,
        key_version: 1,
    }
}

fn plain(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 256) as u8).collect()
}

fn sealed(len: usize) -> Vec<u8> {
    seal(&key(), &ident(), false, plain(len)).unwrap().to_vec()
}

#[test]
fn round_trips_at_every_chunk_boundary() {
    for len in [
        0,
        1,
        CHUNK_SIZE - 1,
        CHUNK_SIZE,
        CHUNK_SIZE + 1,
        5 * CHUNK_SIZE + 7,
    ] {
        for last in [false, true] {
            let s = seal(&key(), &ident(), last, plain(len)).unwrap();
            let chunks = len.div_ceil(CHUNK_SIZE).max(1);
            assert_eq!(
                s.len() as usize,
                HEADER_LEN + len + chunks * TAG_LEN,
                "len {len}"
            );
            let o = open(&key(), &ident(), &s.to_vec()).unwrap();
            assert_eq!(o.plaintext, plain(len), "len {len}");
            assert_eq!(o.is_final, last);
            assert_eq!(&o.commitment, s.commitment());
        }
    }
}

#[test]
fn two_seals_of_the_same_bytes_differ() {
    assert_ne!(sealed(100), sealed(100));
}

/// A fixture of `fixtures/sealed/` (made by `examples/make_sealed_fixtures.rs` under the test
/// key 0x42… for the identity of [`ident`]).
fn sealed_fixture(name: &str) -> Vec<u8> {
    common::fixtures::read(&format!("sealed/{name}"))
}

fn fixture_key() -> CandidateKey {
    CandidateKey::from_bytes([0x42; 32], 1)
}

#[test]
fn the_good_fixture_opens_to_its_two_chunks() {
    let o = open(
        &fixture_key(),
        &ident(),
        &sealed_fixture("good-two-chunks.krk"),
    )
    .unwrap();
    assert_eq!(o.plaintext, plain(CHUNK_SIZE + 10));
    assert!(!o.is_final);
}

/// Each tampered fixture fails to open, with the error that names its fault.
macro_rules! tampered {
    ($test:ident, $file:literal, $err:expr) => {
        #[test]
        fn $test() {
            assert_eq!(
                open(&fixture_key(), &ident(), &sealed_fixture($file)).unwrap_err(),
                $err
            );
        }
    };
}

tampered!(
    open_fails_when_a_tag_of_the_first_chunk_is_flipped,
    "bad-tag-first-chunk.krk",
    SealError::ChunkAuth(0)
);
tampered!(
    open_fails_when_a_byte_of_the_second_chunk_is_flipped,
    "bad-byte-second-chunk.krk",
    SealError::ChunkAuth(1)
);
tampered!(
    open_fails_when_the_header_salt_is_flipped,
    "flipped-salt-in-header.krk",
    SealError::CommitmentMismatch
);
tampered!(
    open_fails_when_the_final_flag_is_forged,
    "forged-final-flag.krk",
    SealError::CommitmentMismatch
);
tampered!(
    open_fails_when_the_key_version_is_forged,
    "forged-key-version.krk",
    SealError::WrongIdentity("key version")
);
tampered!(
    open_fails_when_truncated_mid_chunk,
    "truncated-mid-chunk.krk",
    SealError::ChunkAuth(1)
);
tampered!(
    open_fails_when_the_final_chunk_is_dropped,
    "no-final-chunk.krk",
    SealError::ChunkAuth(0)
);
tampered!(
    open_fails_when_cut_inside_the_header,
    "cut-inside-header.krk",
    SealError::Truncated
);
tampered!(
    open_fails_when_chunks_are_swapped,
    "chunks-swapped.krk",
    SealError::ChunkAuth(0)
);
tampered!(
    open_fails_when_a_chunk_is_duplicated,
    "first-chunk-duplicated.krk",
    SealError::ChunkAuth(1)
);
tampered!(
    open_fails_when_moved_from_another_interview,
    "from-another-interview.krk",
    SealError::WrongIdentity("interview")
);
tampered!(
    open_fails_when_moved_from_another_candidate,
    "from-another-candidate.krk",
    SealError::CommitmentMismatch
);
tampered!(
    open_fails_when_moved_from_another_region,
    "from-another-region.krk",
    SealError::CommitmentMismatch
);
tampered!(
    open_fails_when_moved_from_another_index,
    "from-another-index.krk",
    SealError::WrongIdentity("index")
);
tampered!(
    open_fails_when_a_manifest_poses_as_a_segment,
    "a-manifest-not-a-segment.krk",
    SealError::WrongIdentity("object kind")
);
tampered!(
    open_fails_under_another_candidates_key,
    "under-another-key.krk",
    SealError::CommitmentMismatch
);

#[test]
fn every_sealed_fixture_is_covered_by_a_test() {
    let mut names: Vec<String> = std::fs::read_dir(common::fixtures::path("sealed"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".krk"))
        .collect();
    names.sort();
    let source = include_str!("seal_format.rs");
    for n in names {
        assert!(
            source.contains(&format!("\"{n}\"")),
            "fixtures/sealed/{n} has no test"
        );
    }
}

#[test]
fn bytes_that_are_not_sealed_are_refused() {
    assert_eq!(
        open(&key(), &ident(), &[0x1A, 0x45, 0xDF, 0xA3, 0, 0, 0, 0]).unwrap_err(),
        SealError::NotSealed
    );
    assert_eq!(
        open(&key(), &ident(), &[0u8; 200]).unwrap_err(),
        SealError::NotSealed
    );
}
