//! Sealing and opening one object: HKDF-derived per-object key with key commitment, then
//! chunked AES-256-GCM with a final-chunk flag in the nonce (the age / Tink STREAM construction).
//!
//! ```text
//! PRK    = HKDF-Extract(salt, UK_v)
//! ctx    = "kiroku/object/v1" | suite | kind | [u32 len(analyzer) analyzer, kind 4 only]
//!          | len(region) region | candidate | interview | index | key version | flags
//! SK     = HKDF-Expand(PRK, ctx | "key", 32)        commit = HKDF-Expand(PRK, ctx | "commit", 32)
//! nonce  = 11-byte big-endian chunk counter || 0x01 for the last chunk, else 0x00
//! AAD    = the whole 100-byte header
//! ```
//! A fresh random salt per object makes SK unique per object, so a restarted writer can never
//! reuse a nonce under the same key.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, Tag, UnboundKey};
use ring::hkdf::{HKDF_SHA256, KeyType, Prk, Salt};

use super::chunks::{ChunkRange, chunk_count, sealed_chunk_span};
use super::format::{
    CHUNK_SIZE, FLAG_FINAL, HEADER_LEN, Header, SUITE_HKDF_SHA256_AES256GCM, TAG_LEN,
};
use super::{CandidateKey, ObjectIdentity, ObjectKind, SealError, SealedObject};

/// Largest chunk count: the counter has 88 bits, but nothing kiroku writes comes near 2^32
/// chunks (256 TiB), so refusing beyond that keeps every counter far from wrapping.
const MAX_CHUNKS: u64 = u32::MAX as u64;

/// The result of opening an object.
#[derive(Debug)]
pub struct Opened {
    pub plaintext: Vec<u8>,
    /// Whether the writer marked this the final object of its interview.
    pub is_final: bool,
    pub commitment: [u8; 32],
}

/// Seals `plaintext` as the object `id`, marking it final when `is_final`. Takes the buffer
/// and encrypts it in place: a segment is never copied on its way to the store.
pub fn seal(
    key: &CandidateKey,
    id: &ObjectIdentity,
    is_final: bool,
    plaintext: Vec<u8>,
) -> Result<SealedObject, SealError> {
    let chunks = chunk_count(plaintext.len() as u64);
    if chunks > MAX_CHUNKS {
        return Err(SealError::TooLarge);
    }
    let salt: [u8; 32] = crate::util::secret::random_bytes().map_err(|_| SealError::Random)?;
    let flags = if is_final { FLAG_FINAL } else { 0 };
    let (aead, commitment) = derive(key, id, flags, &salt);
    let header = Header {
        flags,
        kind: id.kind.code(),
        key_version: key.version(),
        chunk_size: CHUNK_SIZE as u32,
        index: id.index,
        interview: *id.interview.as_bytes(),
        salt,
        commitment,
    }
    .encode();

    let mut body = plaintext;
    let mut tags = Vec::with_capacity(chunks as usize);
    if body.is_empty() {
        tags.push(seal_chunk(&aead, &header, 0, true, &mut [])?);
    }
    for (i, chunk) in body.chunks_mut(CHUNK_SIZE).enumerate() {
        tags.push(seal_chunk(
            &aead,
            &header,
            i as u64,
            i as u64 + 1 == chunks,
            chunk,
        )?);
    }
    Ok(SealedObject {
        header,
        body,
        tags,
        commitment,
    })
}

fn seal_chunk(
    aead: &LessSafeKey,
    header: &[u8; HEADER_LEN],
    i: u64,
    last: bool,
    chunk: &mut [u8],
) -> Result<[u8; TAG_LEN], SealError> {
    let tag = aead
        .seal_in_place_separate_tag(nonce(i, last), Aad::from(&header[..]), chunk)
        .map_err(|_| SealError::TooLarge)?;
    Ok(tag.as_ref().try_into().expect("16-byte tag"))
}

/// Opens `sealed`, which must be the object `id` sealed under `key`. Checks the identity and
/// the key commitment before decrypting anything, and authenticates every chunk.
pub fn open(key: &CandidateKey, id: &ObjectIdentity, sealed: &[u8]) -> Result<Opened, SealError> {
    let header = Header::decode(sealed)?;
    check_identity(key, id, &header)?;
    let (aead, commitment) = derive(key, id, header.flags, &header.salt);
    if !constant_time_eq(&commitment, &header.commitment) {
        return Err(SealError::CommitmentMismatch);
    }
    let aad = &sealed[..HEADER_LEN];
    let body = &sealed[HEADER_LEN..];
    let sealed_chunk = CHUNK_SIZE + TAG_LEN;
    if body.len() < TAG_LEN {
        return Err(SealError::Truncated);
    }
    let chunks = body.len().div_ceil(sealed_chunk) as u64;
    let last_len = body.len() - (chunks as usize - 1) * sealed_chunk;
    if last_len < TAG_LEN || (last_len == TAG_LEN && chunks > 1) {
        // A lone tag after full chunks (or a torn tag) is not something seal() writes.
        return Err(SealError::Truncated);
    }
    let mut plaintext = Vec::with_capacity(body.len() - chunks as usize * TAG_LEN);
    for (i, chunk) in body.chunks(sealed_chunk).enumerate() {
        let (ct, tag) = chunk.split_at(chunk.len() - TAG_LEN);
        let start = plaintext.len();
        plaintext.extend_from_slice(ct);
        let tag = Tag::try_from(tag).map_err(|_| SealError::Truncated)?;
        let last = i as u64 + 1 == chunks;
        aead.open_in_place_separate_tag(
            nonce(i as u64, last),
            Aad::from(aad),
            tag,
            &mut plaintext[start..],
            0..,
        )
        .map_err(|_| SealError::ChunkAuth(i as u64))?;
    }
    Ok(Opened {
        plaintext,
        is_final: header.flags & FLAG_FINAL != 0,
        commitment,
    })
}

/// Opens single chunks of one object, for serving a byte range without reading the rest.
///
/// Built from the object's header and the plaintext length the catalog records; the header's
/// identity and key commitment are checked first, exactly as [`open`] does. Which chunk is the
/// last follows from the plaintext length, and the last chunk is sealed under its own nonce, so
/// a catalog length that disagrees with the object makes the chunk fail authentication rather
/// than yield a shortened plaintext.
pub struct ChunkOpener {
    aead: LessSafeKey,
    header: [u8; HEADER_LEN],
    chunks: u64,
    plain_len: u64,
    is_final: bool,
    commitment: [u8; 32],
}

impl ChunkOpener {
    pub fn new(
        key: &CandidateKey,
        id: &ObjectIdentity,
        header_bytes: &[u8],
        plain_len: u64,
    ) -> Result<ChunkOpener, SealError> {
        let header = Header::decode(header_bytes)?;
        check_identity(key, id, &header)?;
        let (aead, commitment) = derive(key, id, header.flags, &header.salt);
        if !constant_time_eq(&commitment, &header.commitment) {
            return Err(SealError::CommitmentMismatch);
        }
        Ok(ChunkOpener {
            aead,
            header: header_bytes[..HEADER_LEN]
                .try_into()
                .expect("header length"),
            chunks: chunk_count(plain_len),
            plain_len,
            is_final: header.flags & FLAG_FINAL != 0,
            commitment,
        })
    }

    /// The chunks a plaintext byte range of this object needs; `None` when the range is empty
    /// or runs past the object's end.
    pub fn range(&self, offset: u64, len: u64) -> Option<ChunkRange> {
        ChunkRange::new(self.plain_len, offset, len)
    }

    /// Opens the chunks of `range` from `stored`, the object's bytes at
    /// [`ChunkRange::sealed_span`], and returns each chunk's plaintext trimmed to the range.
    pub fn open_range(&self, range: &ChunkRange, stored: &[u8]) -> Result<Vec<Vec<u8>>, SealError> {
        if range.plain_len() != self.plain_len || stored.len() as u64 != range.sealed_span().1 {
            return Err(SealError::Truncated);
        }
        let mut out = Vec::with_capacity(range.chunks().count());
        let mut at = 0usize;
        for i in range.chunks() {
            let len = sealed_chunk_span(self.plain_len, i).1 as usize;
            let plain = self.open_chunk(i, stored[at..at + len].to_vec())?;
            at += len;
            out.push(plain[range.within(i)].to_vec());
        }
        Ok(out)
    }

    /// Authenticates and decrypts chunk `i` from its stored bytes.
    pub fn open_chunk(&self, i: u64, mut sealed: Vec<u8>) -> Result<Vec<u8>, SealError> {
        if i >= self.chunks || sealed.len() as u64 != sealed_chunk_span(self.plain_len, i).1 {
            return Err(SealError::Truncated);
        }
        let tag_at = sealed.len() - TAG_LEN;
        let tag = Tag::try_from(&sealed[tag_at..]).map_err(|_| SealError::Truncated)?;
        self.aead
            .open_in_place_separate_tag(
                nonce(i, i + 1 == self.chunks),
                Aad::from(&self.header[..]),
                tag,
                &mut sealed[..tag_at],
                0..,
            )
            .map_err(|_| SealError::ChunkAuth(i))?;
        sealed.truncate(tag_at);
        Ok(sealed)
    }

    pub fn is_final(&self) -> bool {
        self.is_final
    }

    pub fn commitment(&self) -> &[u8; 32] {
        &self.commitment
    }
}

fn check_identity(
    key: &CandidateKey,
    id: &ObjectIdentity,
    header: &Header,
) -> Result<(), SealError> {
    if header.kind != id.kind.code() {
        return Err(SealError::WrongIdentity("object kind"));
    }
    if header.interview != *id.interview.as_bytes() {
        return Err(SealError::WrongIdentity("interview"));
    }
    if header.index != id.index {
        return Err(SealError::WrongIdentity("index"));
    }
    if header.key_version != id.key_version || key.version() != id.key_version {
        return Err(SealError::WrongIdentity("key version"));
    }
    Ok(())
}

/// The baseline of `kiroku bench`: ring's AES-256-GCM over the same bytes in the same chunks,
/// in place, with no format around it. Returns the tags so the work cannot be optimised away.
pub fn raw_aes_gcm_baseline(buf: &mut [u8]) -> Vec<Tag> {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).expect("32-byte key"));
    let chunks = chunk_count(buf.len() as u64);
    buf.chunks_mut(CHUNK_SIZE)
        .enumerate()
        .map(|(i, c)| {
            key.seal_in_place_separate_tag(nonce(i as u64, i as u64 + 1 == chunks), Aad::empty(), c)
                .expect("seal")
        })
        .collect()
}

fn nonce(counter: u64, last: bool) -> Nonce {
    let mut n = [0u8; NONCE_LEN];
    n[3..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = last as u8;
    Nonce::assume_unique_for_key(n)
}

struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn derive(
    key: &CandidateKey,
    id: &ObjectIdentity,
    flags: u8,
    salt: &[u8; 32],
) -> (LessSafeKey, [u8; 32]) {
    let prk: Prk = Salt::new(HKDF_SHA256, salt).extract(key.bytes.as_slice());
    let region = id.region.as_str().as_bytes();
    let mut ctx = Vec::with_capacity(96);
    ctx.extend_from_slice(b"kiroku/object/v1");
    ctx.push(SUITE_HKDF_SHA256_AES256GCM);
    ctx.push(id.kind.code());
    // Only analysis outputs name their analyzer: every other kind derives exactly as before.
    if let ObjectKind::Analysis { analyzer } = &id.kind {
        ctx.extend_from_slice(&(analyzer.len() as u32).to_be_bytes());
        ctx.extend_from_slice(analyzer.as_bytes());
    }
    ctx.push(region.len() as u8);
    ctx.extend_from_slice(region);
    ctx.extend_from_slice(id.candidate.as_bytes());
    ctx.extend_from_slice(id.interview.as_bytes());
    ctx.extend_from_slice(&id.index.to_be_bytes());
    ctx.extend_from_slice(&id.key_version.to_be_bytes());
    ctx.push(flags);

    let key_info: [&[u8]; 2] = [&ctx, b"key"];
    let sk = prk
        .expand(&key_info, &AES_256_GCM)
        .expect("HKDF length is valid");
    let aead = LessSafeKey::new(UnboundKey::from(sk));
    let mut commitment = [0u8; 32];
    let commit_info: [&[u8]; 2] = [&ctx, b"commit"];
    prk.expand(&commit_info, Len(32))
        .expect("HKDF length is valid")
        .fill(&mut commitment)
        .expect("32 bytes");
    (aead, commitment)
}

/// Compares without an early exit, so timing tells nothing about where two values differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    crate::util::secret::same_secret(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CandidateId, InterviewId, RegionId};
    use crate::seal::ObjectKind;

    fn identity(kind: ObjectKind) -> ObjectIdentity {
        ObjectIdentity {
            kind,
            region: RegionId::parse("jp").unwrap(),
            candidate: CandidateId::new_random(),
            interview: InterviewId::new_random(),
            index: 3,
            key_version: 1,
        }
    }

    fn analysis_by(analyzer: &str, of: &ObjectIdentity) -> ObjectIdentity {
        ObjectIdentity {
            kind: ObjectKind::Analysis {
                analyzer: analyzer.into(),
            },
            ..of.clone()
        }
    }

    #[test]
    fn an_output_sealed_for_one_analyzer_does_not_open_as_another_analyzers() {
        let key = CandidateKey::from_bytes([7; 32], 1);
        let base = identity(ObjectKind::Segment);
        let x = analysis_by("pitch", &base);
        let sealed = seal(&key, &x, false, b"{\"x\":1}".to_vec())
            .unwrap()
            .to_vec();
        assert_eq!(open(&key, &x, &sealed).unwrap().plaintext, b"{\"x\":1}");
        for other in ["pitch2", "pitc", "builtin", ""] {
            assert_eq!(
                open(&key, &analysis_by(other, &base), &sealed).unwrap_err(),
                SealError::CommitmentMismatch,
                "{other}"
            );
        }
        let header = &sealed[..HEADER_LEN];
        assert!(matches!(
            ChunkOpener::new(&key, &analysis_by("energy", &base), header, 7),
            Err(SealError::CommitmentMismatch)
        ));
    }

    #[test]
    fn a_range_opened_chunk_by_chunk_is_the_same_bytes_as_the_whole_object() {
        let key = CandidateKey::from_bytes([9; 32], 1);
        let id = identity(ObjectKind::Segment);
        let plain: Vec<u8> = (0..2 * CHUNK_SIZE + 300).map(|i| (i % 251) as u8).collect();
        let sealed = seal(&key, &id, true, plain.clone()).unwrap().to_vec();
        let opener =
            ChunkOpener::new(&key, &id, &sealed[..HEADER_LEN], plain.len() as u64).unwrap();
        assert!(opener.is_final());
        for (offset, len) in [
            (0, 1),
            (CHUNK_SIZE as u64 - 1, 2),
            (10, plain.len() as u64 - 10),
            (2 * CHUNK_SIZE as u64 + 299, 1),
        ] {
            let range = opener.range(offset, len).unwrap();
            let (at, span) = range.sealed_span();
            let stored = &sealed[at as usize..(at + span) as usize];
            let got: Vec<u8> = opener.open_range(&range, stored).unwrap().concat();
            assert_eq!(got, plain[offset as usize..(offset + len) as usize]);
        }
        let range = opener.range(5, 10).unwrap();
        let (at, span) = range.sealed_span();
        let mut stored = sealed[at as usize..(at + span) as usize].to_vec();
        stored[20] ^= 1;
        assert_eq!(
            opener.open_range(&range, &stored).unwrap_err(),
            SealError::ChunkAuth(0)
        );
        assert_eq!(
            opener.open_range(&range, &stored[1..]).unwrap_err(),
            SealError::Truncated
        );
    }
}
