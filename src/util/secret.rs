//! Random secrets, SHA-256 and constant-time comparison: the one place kiroku makes a bearer
//! token, hashes one for storage, or compares one with what a caller presented.
//!
//! Every bearer secret (capture tokens, recruiter keys, download links, webhook secrets, the
//! service and operator tokens) is 32 random bytes from the system generator, stored only as
//! its SHA-256 where the catalog keeps it, and compared without an early exit so timing tells
//! nothing about where a guess went wrong.

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};

/// The system random generator refused to produce bytes (no entropy source).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the system random generator failed")]
pub struct RandomFailed;

/// Fills `buf` from the system random generator.
pub fn fill_random(buf: &mut [u8]) -> Result<(), RandomFailed> {
    SystemRandom::new().fill(buf).map_err(|_| RandomFailed)
}

/// `N` bytes from the system random generator.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], RandomFailed> {
    let mut out = [0u8; N];
    fill_random(&mut out)?;
    Ok(out)
}

/// A bearer token of `bytes` random bytes, URL-safe base64 without padding (fits a path
/// segment or a header without escaping).
pub fn random_token(bytes: usize) -> Result<String, RandomFailed> {
    let mut raw = vec![0u8; bytes];
    fill_random(&mut raw)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
}

/// `bytes` random bytes as lowercase hex (for secrets an operator copies into files).
pub fn random_hex(bytes: usize) -> Result<String, RandomFailed> {
    let mut raw = vec![0u8; bytes];
    fill_random(&mut raw)?;
    Ok(hex::encode(raw))
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// SHA-256 of `bytes` as lowercase hex.
/// How a bearer secret (ingest token, download link, API key) is stored: its SHA-256, so a
/// copy of the catalog cannot be presented.
pub fn token_hash(token: &str) -> Vec<u8> {
    sha256(token.as_bytes()).to_vec()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha256(bytes))
}

/// Whether two secrets are equal, compared without an early exit: the time taken depends on
/// their lengths only, never on where they differ. (Lengths are not secret: every kiroku
/// secret and hash has a fixed, public length.)
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Fails when `path` may be read or written by anyone but its owner: a secret file kiroku
/// would otherwise trust (a token, the signing key). The error says how to fix it.
pub fn refuse_if_readable_by_others(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "is readable by others (mode {mode:o}); `chmod 600` it, and consider it leaked"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_published_test_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha256(b"abc").to_vec(),
            hex::decode(sha256_hex(b"abc")).unwrap()
        );
    }

    #[test]
    fn same_secret_is_true_only_for_identical_bytes() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(same_secret(b"", b""));
        assert!(!same_secret(b"s3cret", b"s3creT"));
        assert!(!same_secret(b"s3cret", b"S3cret"));
        assert!(!same_secret(b"s3cret", b"s3cre"));
        assert!(!same_secret(b"s3cre", b"s3cret"));
    }

    #[test]
    fn random_tokens_have_the_asked_length_and_differ() {
        let a = random_token(32).unwrap();
        let b = random_token(32).unwrap();
        assert_eq!(
            a.len(),
            43,
            "32 bytes are 43 base64url characters without padding"
        );
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(a, b);
        let h = random_hex(8).unwrap();
        assert_eq!(h.len(), 16);
        assert!(h.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(random_bytes::<32>().unwrap(), [0u8; 32]);
    }
}
