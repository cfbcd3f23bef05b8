//! Sealing: the only module that uses ring's AEAD. It owns the key hierarchy (region master key
//! → wrapped candidate key → per-object key) and the sealed-object format of
//! `docs/segment-format.md`.
//!
//! Plain bytes become a [`SealedObject`] only through [`seal`]; a `SealedObject` cannot be built
//! anywhere else, so the store, which accepts nothing else, can never receive plaintext.
//! Opening needs the identity the caller expects ([`ObjectIdentity`]): an object moved to
//! another candidate, interview, index, region or kind (or, for an analysis output, another
//! analyzer) fails to open. [`ChunkRange`] says which chunks a plaintext byte range needs.

mod chunks;
mod format;
mod keys;
mod stream;

pub use chunks::{ChunkRange, chunk_count, sealed_chunk_span};
pub use format::{CHUNK_SIZE, HEADER_LEN, TAG_LEN};
pub use keys::{
    CandidateKey, KeyError, MasterKey, WrappingKey, unwrap_candidate_key, wrap_candidate_key,
};
pub use stream::{ChunkOpener, Opened, open, raw_aes_gcm_baseline, seal};

use crate::ids::{CandidateId, InterviewId, RegionId};

/// What a sealed object is; part of the derived key so kinds cannot be swapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectKind {
    /// A media segment (or the recording's header, segment 0).
    Segment,
    /// The interview's manifest: the ordered list of its segments.
    Manifest,
    /// A 16 kHz WAV rendition of one segment's audio, for analyzers.
    Rendition,
    /// An analyzer's output (per segment, or for the whole interview). The analyzer's name is
    /// bound into the derived key, so one analyzer's output never opens as another's.
    Analysis { analyzer: String },
    /// A finished recording's header (known size and duration, a SeekHead; MP4's `moov` with
    /// `mehd` and a `sidx`), served in place of segment 0 once capture has ended.
    FinishedHeader,
    /// What follows a finished recording's last segment (Matroska's Cues).
    FinishedTrailer,
}

impl ObjectKind {
    /// The kind's byte in the header (and in the key derivation).
    pub fn code(&self) -> u8 {
        match self {
            ObjectKind::Segment => 1,
            ObjectKind::Manifest => 2,
            ObjectKind::Rendition => 3,
            ObjectKind::Analysis { .. } => 4,
            ObjectKind::FinishedHeader => 5,
            ObjectKind::FinishedTrailer => 6,
        }
    }
}

/// Everything an object is bound to. The opener supplies what it expects; any difference makes
/// the object fail to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectIdentity {
    pub kind: ObjectKind,
    pub region: RegionId,
    pub candidate: CandidateId,
    pub interview: InterviewId,
    pub index: u32,
    pub key_version: u32,
}

/// A sealed object: header and authenticated chunks. Built only by [`seal`].
///
/// The ciphertext stays in the buffer the plaintext came in (sealing encrypts in place), and
/// the tags are kept beside it; [`SealedObject::parts`] yields header, chunk, tag, chunk, tag…
/// in the order of the format, so a writer lays out the documented bytes without the copy
/// that interleaving in memory would cost (about a quarter of the sealing time).
#[derive(Debug, Clone)]
pub struct SealedObject {
    header: [u8; HEADER_LEN],
    body: Vec<u8>,
    tags: Vec<[u8; TAG_LEN]>,
    commitment: [u8; 32],
}

impl SealedObject {
    /// The object's bytes in order, as slices to write one after another.
    pub fn parts(&self) -> impl Iterator<Item = &[u8]> {
        let chunks: Box<dyn Iterator<Item = &[u8]>> = if self.body.is_empty() {
            Box::new(std::iter::once(&[][..]))
        } else {
            Box::new(self.body.chunks(CHUNK_SIZE))
        };
        std::iter::once(&self.header[..])
            .chain(chunks.zip(&self.tags).flat_map(|(c, t)| [c, &t[..]]))
    }
    /// The object's bytes as one buffer (one copy; for tests and small objects).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len() as usize);
        self.parts().for_each(|p| v.extend_from_slice(p));
        v
    }
    /// Length of the stored object.
    pub fn len(&self) -> u64 {
        (HEADER_LEN + self.body.len() + self.tags.len() * TAG_LEN) as u64
    }
    /// Never true: even an empty plaintext seals to a header and one tag.
    pub fn is_empty(&self) -> bool {
        false
    }
    /// The key commitment, which the manifest lists to catch a swapped segment.
    pub fn commitment(&self) -> &[u8; 32] {
        &self.commitment
    }
    /// Length of the plaintext it carries.
    pub fn plain_len(&self) -> u64 {
        self.body.len() as u64
    }
    /// Gives the buffer back (it holds ciphertext now) so a caller can reuse its allocation.
    pub fn into_buffer(self) -> Vec<u8> {
        self.body
    }
}

/// Why an object could not be sealed or opened. Deliberately coarse on the opening side: the
/// reason an attacker's object fails is not information to hand back.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("not a kiroku sealed object (bad magic or version)")]
    NotSealed,
    #[error("sealed object is truncated")]
    Truncated,
    #[error("sealed object belongs elsewhere: {0}")]
    WrongIdentity(&'static str),
    #[error("key commitment does not match: wrong key or altered header")]
    CommitmentMismatch,
    #[error("chunk {0} failed authentication")]
    ChunkAuth(u64),
    #[error("object too large to seal")]
    TooLarge,
    #[error("the system random generator failed")]
    Random,
}
