//! The sealed-object format: round trips at the chunk boundaries, and every tamper case fails.

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

#[test]
fn open_fails_when_a_body_bit_is_flipped() {
    let mut s = sealed(3 * CHUNK_SIZE);
    s[HEADER_LEN + CHUNK_SIZE + 100] ^= 1;
    assert_eq!(
        open(&key(), &ident(), &s).unwrap_err(),
        SealError::ChunkAuth(1)
    );
}

#[test]
fn open_fails_when_a_tag_bit_is_flipped() {
    let mut s = sealed(10);
    let n = s.len();
    s[n - 1] ^= 0x80;
    assert_eq!(
        open(&key(), &ident(), &s).unwrap_err(),
        SealError::ChunkAuth(0)
    );
}

#[test]
fn open_fails_when_the_header_salt_is_flipped() {
    let mut s = sealed(10);
    s[40] ^= 1;
    assert_eq!(
        open(&key(), &ident(), &s).unwrap_err(),
        SealError::CommitmentMismatch
    );
}

#[test]
fn open_fails_when_the_final_flag_is_set_by_an_attacker() {
    let mut s = sealed(10);
    s[6] |= 1;
    assert_eq!(
        open(&key(), &ident(), &s).unwrap_err(),
        SealError::CommitmentMismatch
    );
}

#[test]
fn open_fails_when_truncated_mid_chunk() {
    let s = sealed(2 * CHUNK_SIZE);
    assert!(open(&key(), &ident(), &s[..s.len() - 100]).is_err());
}

#[test]
fn open_fails_when_the_last_chunk_is_dropped() {
    let s = sealed(2 * CHUNK_SIZE + 10);
    let cut = HEADER_LEN + 2 * (CHUNK_SIZE + TAG_LEN);
    assert_eq!(
        open(&key(), &ident(), &s[..cut]).unwrap_err(),
        SealError::ChunkAuth(1)
    );
}

#[test]
fn open_fails_when_cut_inside_the_header() {
    let s = sealed(10);
    assert_eq!(
        open(&key(), &ident(), &s[..50]).unwrap_err(),
        SealError::Truncated
    );
}

#[test]
fn open_fails_when_chunks_are_reordered() {
    let s = sealed(3 * CHUNK_SIZE);
    let c = CHUNK_SIZE + TAG_LEN;
    let mut r = s[..HEADER_LEN].to_vec();
    r.extend_from_slice(&s[HEADER_LEN + c..HEADER_LEN + 2 * c]);
    r.extend_from_slice(&s[HEADER_LEN..HEADER_LEN + c]);
    r.extend_from_slice(&s[HEADER_LEN + 2 * c..]);
    assert_eq!(
        open(&key(), &ident(), &r).unwrap_err(),
        SealError::ChunkAuth(0)
    );
}

#[test]
fn open_fails_when_a_chunk_is_duplicated() {
    let s = sealed(2 * CHUNK_SIZE);
    let c = CHUNK_SIZE + TAG_LEN;
    let mut r = s[..HEADER_LEN + c].to_vec();
    r.extend_from_slice(&s[HEADER_LEN..HEADER_LEN + c]);
    r.extend_from_slice(&s[HEADER_LEN + c..]);
    assert!(open(&key(), &ident(), &r).is_err());
}

#[test]
fn open_fails_when_moved_to_another_interview_candidate_index_region_or_kind() {
    let s = sealed(10);
    let mut other = ident();
    other.interview = InterviewId::new_random();
    assert_eq!(
        open(&key(), &other, &s).unwrap_err(),
        SealError::WrongIdentity("interview")
    );
    let mut other = ident();
    other.index = 4;
    assert_eq!(
        open(&key(), &other, &s).unwrap_err(),
        SealError::WrongIdentity("index")
    );
    let mut other = ident();
    other.candidate = CandidateId::new_random();
    assert_eq!(
        open(&key(), &other, &s).unwrap_err(),
        SealError::CommitmentMismatch
    );
    let mut other = ident();
    other.region = RegionId::parse("de").unwrap();
    assert_eq!(
        open(&key(), &other, &s).unwrap_err(),
        SealError::CommitmentMismatch
    );
    let mut other = ident();
    other.kind = ObjectKind::Manifest;
    assert_eq!(
        open(&key(), &other, &s).unwrap_err(),
        SealError::WrongIdentity("object kind")
    );
}

#[test]
fn open_fails_under_another_candidates_key() {
    let s = sealed(10);
    assert_eq!(
        open(&CandidateKey::from_bytes([43; 32], 1), &ident(), &s).unwrap_err(),
        SealError::CommitmentMismatch
    );
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
