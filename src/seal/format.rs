//! The fixed-size header of a sealed object and the constants of the format.
//!
//! ```text
//! magic "KRK1" | version u8 | suite u8 | flags u8 | kind u8 | key version u32 | chunk size u32
//! | index u32 | interview id [16] | salt [32] | commitment [32]          (100 bytes, big-endian)
//! ```
//! The whole header is the AAD of every chunk, so no byte of it can change unnoticed.

use super::SealError;

pub const MAGIC: &[u8; 4] = b"KRK1";
pub const VERSION: u8 = 1;
/// Suite 1: HKDF-SHA256, AES-256-GCM, 32-byte salt, 32-byte commitment.
pub const SUITE_HKDF_SHA256_AES256GCM: u8 = 1;
/// Plaintext bytes per chunk (64 KiB, as in age). A segment of 4 s of interview video is
/// typically 100 KiB to 1 MiB: a handful of chunks.
pub const CHUNK_SIZE: usize = 64 * 1024;
pub const TAG_LEN: usize = 16;
pub const HEADER_LEN: usize = 4 + 1 + 1 + 1 + 1 + 4 + 4 + 4 + 16 + 32 + 32;
/// The kind bytes a header may carry ([`super::ObjectKind::code`]: segment to finished
/// trailer).
const FIRST_KIND: u8 = 1;
const LAST_KIND: u8 = 6;
/// Flags bit 0: this is the final object of its interview.
pub const FLAG_FINAL: u8 = 0x01;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub flags: u8,
    pub kind: u8,
    pub key_version: u32,
    pub chunk_size: u32,
    pub index: u32,
    pub interview: [u8; 16],
    pub salt: [u8; 32],
    pub commitment: [u8; 32],
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        let mut w = Writer { buf: &mut h, at: 0 };
        w.put(MAGIC);
        w.put(&[VERSION, SUITE_HKDF_SHA256_AES256GCM, self.flags, self.kind]);
        w.put(&self.key_version.to_be_bytes());
        w.put(&self.chunk_size.to_be_bytes());
        w.put(&self.index.to_be_bytes());
        w.put(&self.interview);
        w.put(&self.salt);
        w.put(&self.commitment);
        debug_assert_eq!(w.at, HEADER_LEN);
        h
    }

    pub fn decode(bytes: &[u8]) -> Result<Header, SealError> {
        if bytes.len() < HEADER_LEN {
            return Err(if bytes.starts_with(MAGIC) || bytes.len() < 4 {
                SealError::Truncated
            } else {
                SealError::NotSealed
            });
        }
        if &bytes[..4] != MAGIC || bytes[4] != VERSION || bytes[5] != SUITE_HKDF_SHA256_AES256GCM {
            return Err(SealError::NotSealed);
        }
        let u32_at = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
        let arr = |i: usize| -> [u8; 32] { bytes[i..i + 32].try_into().expect("32 bytes") };
        let h = Header {
            flags: bytes[6],
            kind: bytes[7],
            key_version: u32_at(8),
            chunk_size: u32_at(12),
            index: u32_at(16),
            interview: bytes[20..36].try_into().expect("16 bytes"),
            salt: arr(36),
            commitment: arr(68),
        };
        if h.flags & !FLAG_FINAL != 0 || !(FIRST_KIND..=LAST_KIND).contains(&h.kind) {
            return Err(SealError::NotSealed);
        }
        // Only the chunk size this version writes is accepted: a forged header cannot make a
        // reader allocate or step oddly.
        if h.chunk_size as usize != CHUNK_SIZE {
            return Err(SealError::NotSealed);
        }
        Ok(h)
    }
}

struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, b: &[u8]) {
        self.buf[self.at..self.at + b.len()].copy_from_slice(b);
        self.at += b.len();
    }
}
