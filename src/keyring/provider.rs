//! Where a region's epoch keys live: the key provider. Files in the keys folder are the
//! embedded default (`<keys dir>/epochs/<region>/<n>.key`, 32 bytes, 0600; destroying one
//! overwrites it with zeros, syncs and unlinks it); a PKCS#11 token (`[keys.pkcs11]`) keeps
//! them where they cannot be read out at all. The rest of the keyring asks for an epoch's key
//! and gets something the seal module can wrap with, whichever provider holds it.

use std::path::{Path, PathBuf};

use super::pkcs11::{Token, TokenKey};
use super::{Keyring, KeyringError};
use crate::ids::RegionId;
use crate::seal::{MasterKey, WrappingKey};

/// The key provider of one keyring.
pub enum Provider {
    Files,
    Token(Token),
}

/// One epoch key, ready to wrap and unwrap candidate keys.
pub enum EpochKey<'k> {
    File(MasterKey),
    Token(TokenKey<'k>),
}

impl EpochKey<'_> {
    pub fn wrapping(&self) -> &dyn WrappingKey {
        match self {
            EpochKey::File(k) => k,
            EpochKey::Token(k) => k,
        }
    }
}

/// Where an epoch key lives with the file provider.
pub(super) fn key_path(dir: &Path, region: &RegionId, epoch: u32) -> PathBuf {
    dir.join("epochs")
        .join(region.as_str())
        .join(format!("{epoch}.key"))
}

impl Keyring {
    /// The token object's label for an epoch: unique to this keyring (see the pkcs11 module).
    fn token_label(&self, region: &RegionId, epoch: u32) -> String {
        format!("kiroku/{}/{}/{epoch}", self.id, region.as_str())
    }

    /// Where the epoch key lives, for messages: a file, or an object in a token.
    pub(super) fn key_place(&self, region: &RegionId, epoch: u32) -> String {
        match &self.provider {
            Provider::Files => key_path(&self.dir, region, epoch).display().to_string(),
            Provider::Token(t) => format!(
                "PKCS#11 token {:?}, object {}",
                t.label(),
                self.token_label(region, epoch)
            ),
        }
    }

    /// Makes the epoch key (keeping one already made: a rotation cut short made it, and no
    /// candidate key is wrapped under it yet).
    pub(super) fn create_epoch_key(
        &self,
        region: &RegionId,
        epoch: u32,
    ) -> Result<EpochKey<'_>, KeyringError> {
        Ok(match &self.provider {
            Provider::Files => EpochKey::File(MasterKey::load_or_create(&key_path(
                &self.dir, region, epoch,
            ))?),
            Provider::Token(t) => {
                EpochKey::Token(t.key(t.find_or_generate(&self.token_label(region, epoch))?))
            }
        })
    }

    /// The epoch key; a missing one is named with its region and place.
    pub(super) fn epoch_key(
        &self,
        region: &RegionId,
        epoch: u32,
    ) -> Result<EpochKey<'_>, KeyringError> {
        let missing = || KeyringError::EpochKeyMissing {
            region: region.to_string(),
            epoch,
            path: self.key_place(region, epoch),
        };
        Ok(match &self.provider {
            Provider::Files => {
                let path = key_path(&self.dir, region, epoch);
                if !path.exists() {
                    return Err(missing());
                }
                EpochKey::File(MasterKey::load_or_create(&path)?)
            }
            Provider::Token(t) => {
                let handle = t
                    .find(&self.token_label(region, epoch))?
                    .ok_or_else(missing)?;
                EpochKey::Token(t.key(handle))
            }
        })
    }

    /// Destroys the epoch key: shredded file, or token object destroyed.
    pub(super) fn destroy_epoch_key(
        &self,
        region: &RegionId,
        epoch: u32,
    ) -> Result<(), KeyringError> {
        match &self.provider {
            Provider::Files => {
                let path = key_path(&self.dir, region, epoch);
                crate::util::shred_file(&path).map_err(|source| KeyringError::Io {
                    path: path.display().to_string(),
                    source,
                })
            }
            Provider::Token(t) => Ok(t.destroy(&self.token_label(region, epoch))?),
        }
    }

    /// Whether the token would let the epoch key out (never, for keys kiroku made); `None`
    /// with the file provider, whose keys are files.
    pub fn epoch_key_extractable(
        &self,
        region: &RegionId,
        epoch: u32,
    ) -> Result<Option<bool>, KeyringError> {
        match &self.provider {
            Provider::Files => Ok(None),
            Provider::Token(t) => {
                let Some(handle) = t.find(&self.token_label(region, epoch))? else {
                    return Ok(None);
                };
                Ok(Some(t.is_extractable(handle)?))
            }
        }
    }
}
