//! The key hierarchy: a region's master key wraps each candidate's key; a candidate key never
//! leaves memory unwrapped. Keys are zeroised when dropped.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::ids::{CandidateId, RegionId};

/// Why a key could not be loaded, created or unwrapped.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("master key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("master key file {path} must hold exactly 32 bytes (it holds {len})")]
    BadLength { path: String, len: usize },
    #[error("master key file {path} is readable by others (mode {mode:o}); it must be 0600")]
    TooOpen { path: String, mode: u32 },
    #[error("wrapped candidate key does not open under this region's master key")]
    Unwrap,
    #[error("the system random generator failed")]
    Random,
    #[error("key provider: {0}")]
    Provider(String),
}

/// A region's master key. For the embedded default it lives in a 0600 file in the data dir.
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl MasterKey {
    /// Loads the key file, creating it (mode 0600, fsynced) when it does not exist yet.
    pub fn load_or_create(path: &Path) -> Result<MasterKey, KeyError> {
        let shown = path.display().to_string();
        let io = |source| KeyError::Io {
            path: shown.clone(),
            source,
        };
        match std::fs::read(path) {
            Ok(bytes) => {
                use std::os::unix::fs::PermissionsExt;
                let bytes = Zeroizing::new(bytes);
                let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(KeyError::TooOpen { path: shown, mode });
                }
                let key: [u8; 32] =
                    bytes
                        .as_slice()
                        .try_into()
                        .map_err(|_| KeyError::BadLength {
                            path: shown.clone(),
                            len: bytes.len(),
                        })?;
                Ok(MasterKey(Zeroizing::new(key)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = random_key()?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(io)?;
                f.write_all(key.as_slice()).map_err(io)?;
                f.sync_all().map_err(io)?;
                crate::util::fsync_dir(path.parent().unwrap_or(Path::new("."))).map_err(io)?;
                Ok(MasterKey(key))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Wraps a candidate key for the keyring: see [`wrap_candidate_key`].
    pub fn wrap(
        &self,
        key: &CandidateKey,
        candidate: &CandidateId,
        region: &RegionId,
    ) -> Result<Vec<u8>, KeyError> {
        wrap_candidate_key(self, key, candidate, region)
    }

    /// Opens a wrapped candidate key: see [`unwrap_candidate_key`].
    pub fn unwrap(
        &self,
        wrapped: &[u8],
        candidate: &CandidateId,
        version: u32,
        region: &RegionId,
    ) -> Result<CandidateKey, KeyError> {
        unwrap_candidate_key(self, wrapped, candidate, version, region)
    }

    fn aead(&self) -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, self.0.as_slice()).expect("32-byte key"))
    }
}

impl WrappingKey for MasterKey {
    fn seal(&self, nonce: [u8; NONCE_LEN], aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut body = plain.to_vec();
        self.aead()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .map_err(|_| KeyError::Unwrap)?;
        Ok(body)
    }

    fn open(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let mut body = Zeroizing::new(sealed.to_vec());
        let len = self
            .aead()
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .map_err(|_| KeyError::Unwrap)?
            .len();
        body.truncate(len);
        Ok(body)
    }
}

/// An AES-256-GCM key that wraps candidate keys: held in memory ([`MasterKey`], the file
/// provider) or inside a token that never lets it out (the keyring's PKCS#11 provider, which
/// asks the token to encrypt and decrypt). Either way the wrapped format is the one below.
pub trait WrappingKey {
    /// AES-256-GCM of `plain` under this key: ciphertext || 16-byte tag.
    fn seal(&self, nonce: [u8; NONCE_LEN], aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, KeyError>;
    /// Opens ciphertext || tag; fails under any other key, nonce or `aad`.
    fn open(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyError>;
}

/// Wraps a candidate key for the keyring: AES-256-GCM under `under` with a random nonce,
/// bound to candidate, version and region. Output: nonce || ciphertext || tag.
pub fn wrap_candidate_key(
    under: &dyn WrappingKey,
    key: &CandidateKey,
    candidate: &CandidateId,
    region: &RegionId,
) -> Result<Vec<u8>, KeyError> {
    let nonce: [u8; NONCE_LEN] =
        crate::util::secret::random_bytes().map_err(|_| KeyError::Random)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&under.seal(
        nonce,
        &wrap_aad(candidate, key.version, region),
        key.bytes.as_slice(),
    )?);
    Ok(out)
}

/// Opens a wrapped candidate key; fails if it was wrapped for another candidate, version or
/// region, or under another key.
pub fn unwrap_candidate_key(
    under: &dyn WrappingKey,
    wrapped: &[u8],
    candidate: &CandidateId,
    version: u32,
    region: &RegionId,
) -> Result<CandidateKey, KeyError> {
    if wrapped.len() != NONCE_LEN + 32 + 16 {
        return Err(KeyError::Unwrap);
    }
    let nonce: [u8; NONCE_LEN] = wrapped[..NONCE_LEN].try_into().expect("nonce length");
    let plain = under.open(
        nonce,
        &wrap_aad(candidate, version, region),
        &wrapped[NONCE_LEN..],
    )?;
    let bytes: [u8; 32] = plain.as_slice().try_into().map_err(|_| KeyError::Unwrap)?;
    Ok(CandidateKey {
        bytes: Zeroizing::new(bytes),
        version,
    })
}

fn wrap_aad(candidate: &CandidateId, version: u32, region: &RegionId) -> Vec<u8> {
    let mut aad = b"kiroku/uk".to_vec();
    aad.extend_from_slice(candidate.as_bytes());
    aad.extend_from_slice(&version.to_be_bytes());
    aad.push(region.as_str().len() as u8);
    aad.extend_from_slice(region.as_str().as_bytes());
    aad
}

fn random_key() -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let mut k = Zeroizing::new([0u8; 32]);
    crate::util::secret::fill_random(k.as_mut_slice()).map_err(|_| KeyError::Random)?;
    Ok(k)
}

/// A candidate's 256-bit key of one version (UK_v). Every object of that candidate's
/// interviews is sealed under a key derived from it.
pub struct CandidateKey {
    pub(super) bytes: Zeroizing<[u8; 32]>,
    version: u32,
}

impl CandidateKey {
    /// A fresh random key of the given version.
    pub fn generate(version: u32) -> Result<CandidateKey, KeyError> {
        Ok(CandidateKey {
            bytes: random_key()?,
            version,
        })
    }
    /// A key from known bytes: for test vectors and the benchmark, never for candidates.
    pub fn from_bytes(bytes: [u8; 32], version: u32) -> CandidateKey {
        CandidateKey {
            bytes: Zeroizing::new(bytes),
            version,
        }
    }
    /// The raw key, for tests that compare keys across a rewrap.
    #[cfg(test)]
    pub(crate) fn bytes_for_test(&self) -> [u8; 32] {
        *self.bytes
    }

    pub fn version(&self) -> u32 {
        self.version
    }
}

impl std::fmt::Debug for CandidateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CandidateKey(v{}, ..)", self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (CandidateId, RegionId) {
        (CandidateId::new_random(), RegionId::parse("jp").unwrap())
    }

    #[test]
    fn master_key_file_is_created_with_mode_0600_and_reloads_the_same() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/jp.key");
        let a = MasterKey::load_or_create(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let b = MasterKey::load_or_create(&path).unwrap();
        assert_eq!(a.0.as_slice(), b.0.as_slice());
    }

    #[test]
    fn wrapped_key_opens_only_for_its_candidate_version_and_region() {
        let dir = tempfile::tempdir().unwrap();
        let m = MasterKey::load_or_create(&dir.path().join("m.key")).unwrap();
        let (c, r) = ids();
        let k = CandidateKey::generate(1).unwrap();
        let w = m.wrap(&k, &c, &r).unwrap();
        assert_eq!(
            m.unwrap(&w, &c, 1, &r).unwrap().bytes.as_slice(),
            k.bytes.as_slice()
        );
        assert!(m.unwrap(&w, &CandidateId::new_random(), 1, &r).is_err());
        assert!(m.unwrap(&w, &c, 2, &r).is_err());
        assert!(
            m.unwrap(&w, &c, 1, &RegionId::parse("de").unwrap())
                .is_err()
        );
        let other = MasterKey::load_or_create(&dir.path().join("other.key")).unwrap();
        assert!(other.unwrap(&w, &c, 1, &r).is_err());
    }

    #[test]
    fn master_key_file_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.key");
        MasterKey::load_or_create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            MasterKey::load_or_create(&path),
            Err(KeyError::TooOpen { .. })
        ));
    }
}
