//! The PKCS#11 key provider: epoch keys made inside a token (an HSM; SoftHSM2 in the tests)
//! as AES-256 secret keys that are sensitive and never extractable. Wrapping and unwrapping a
//! candidate key is an AES-GCM encrypt or decrypt the token performs; the epoch key's bytes
//! never reach kiroku's memory, so destroying the token object destroys the epoch.
//!
//! Each key object is labelled `kiroku/<keyring id>/<region>/<epoch>`: several keyrings (two
//! kiroku installations, or the tests) can share one token without touching each other's keys.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use crate::config::Pkcs11Config;
use crate::seal::{KeyError, WrappingKey};

/// Why the token could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("PKCS#11 module {module}: {source}")]
    Module { module: String, source: P11Error },
    #[error("PKCS#11: no token labelled {token:?} in {module}")]
    NoToken { token: String, module: String },
    #[error("PKCS#11 token {token:?}: the PIN: {reason}")]
    Pin { token: String, reason: String },
    #[error("PKCS#11 token {token:?}: {source}")]
    Token { token: String, source: P11Error },
}

/// One token, logged in, with one session kept for kiroku's calls (a session is not to be used
/// by two threads at once, hence the lock).
pub struct Token {
    label: String,
    session: Mutex<Session>,
}

/// The module's context, one per module in the process: a module is initialised once, and
/// never finalised while another keyring of the process may still use it.
fn context(module: &Path) -> Result<Pkcs11, TokenError> {
    static LOADED: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut loaded = LOADED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(ctx) = loaded.get(module) {
        return Ok(ctx.clone());
    }
    let err = |source| TokenError::Module {
        module: module.display().to_string(),
        source,
    };
    let ctx = Pkcs11::new(module).map_err(err)?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(err(e)),
    }
    loaded.insert(module.to_path_buf(), ctx.clone());
    Ok(ctx)
}

impl Token {
    /// Opens the token named in `cfg` and logs in with its PIN.
    pub fn open(cfg: &Pkcs11Config) -> Result<Token, TokenError> {
        let ctx = context(&cfg.module)?;
        let module = cfg.module.display().to_string();
        let token_err = |source| TokenError::Token {
            token: cfg.token.clone(),
            source,
        };
        let slots = ctx
            .get_slots_with_token()
            .map_err(|source| TokenError::Module {
                module: module.clone(),
                source,
            })?;
        let slot = slots
            .into_iter()
            .find(|s| {
                ctx.get_token_info(*s)
                    .is_ok_and(|info| info.label().trim_end() == cfg.token)
            })
            .ok_or_else(|| TokenError::NoToken {
                token: cfg.token.clone(),
                module,
            })?;
        let session = ctx.open_rw_session(slot).map_err(token_err)?;
        let pin = read_pin(cfg)?;
        match session.login(UserType::User, Some(&pin)) {
            // Another keyring of this process logged in to the token already.
            Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(P11Error::Pkcs11(RvError::PinIncorrect, _)) => {
                return Err(TokenError::Pin {
                    token: cfg.token.clone(),
                    reason: "the token refused it".into(),
                });
            }
            Err(e) => return Err(token_err(e)),
        }
        Ok(Token {
            label: cfg.token.clone(),
            session: Mutex::new(session),
        })
    }

    /// The token's label, for messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn err(&self, source: P11Error) -> TokenError {
        TokenError::Token {
            token: self.label.clone(),
            source,
        }
    }

    /// The key object labelled `label`, if the token holds one.
    pub fn find(&self, label: &str) -> Result<Option<ObjectHandle>, TokenError> {
        let found = self
            .session()
            .find_objects(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .map_err(|e| self.err(e))?;
        Ok(found.into_iter().next())
    }

    /// The key labelled `label`, made in the token when it has none: AES-256, kept on the
    /// token, private, sensitive, not extractable, for encrypt and decrypt only.
    pub fn find_or_generate(&self, label: &str) -> Result<ObjectHandle, TokenError> {
        if let Some(found) = self.find(label)? {
            return Ok(found);
        }
        self.session()
            .generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::ValueLen(32.into()),
                    Attribute::Label(label.as_bytes().to_vec()),
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                    Attribute::Wrap(false),
                    Attribute::Unwrap(false),
                ],
            )
            .map_err(|e| self.err(e))
    }

    /// Destroys every key object labelled `label` (none is fine).
    pub fn destroy(&self, label: &str) -> Result<(), TokenError> {
        while let Some(handle) = self.find(label)? {
            self.session()
                .destroy_object(handle)
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Whether the token would hand out the key's value: never, for a key kiroku made.
    pub fn is_extractable(&self, handle: ObjectHandle) -> Result<bool, TokenError> {
        let attrs = self
            .session()
            .get_attributes(
                handle,
                &[AttributeType::Extractable, AttributeType::Sensitive],
            )
            .map_err(|e| self.err(e))?;
        let flag = |want: AttributeType| {
            attrs.iter().any(|a| match (a, want) {
                (Attribute::Extractable(v), AttributeType::Extractable) => *v,
                (Attribute::Sensitive(v), AttributeType::Sensitive) => *v,
                _ => false,
            })
        };
        Ok(flag(AttributeType::Extractable) || !flag(AttributeType::Sensitive))
    }

    /// The key object as a [`WrappingKey`] the seal module wraps candidate keys with.
    pub fn key(&self, handle: ObjectHandle) -> TokenKey<'_> {
        TokenKey {
            token: self,
            handle,
        }
    }
}

/// The PIN from the file or the environment, never from the config itself.
fn read_pin(cfg: &Pkcs11Config) -> Result<AuthPin, TokenError> {
    let pin_err = |reason: String| TokenError::Pin {
        token: cfg.token.clone(),
        reason,
    };
    let text = match &cfg.pin_file {
        Some(path) => {
            let shown = |e: std::io::Error| pin_err(format!("{}: {e}", path.display()));
            crate::util::secret::refuse_if_readable_by_others(path).map_err(shown)?;
            let text = Zeroizing::new(std::fs::read(path).map_err(shown)?);
            String::from_utf8(text.to_vec())
                .map_err(|_| pin_err(format!("{} is not UTF-8", path.display())))?
        }
        None => cfg
            .pin
            .clone()
            .ok_or_else(|| pin_err("set pin_file, or KIROKU_KEYS__PKCS11__PIN".into()))?,
    };
    let pin = text.trim().to_string();
    drop(Zeroizing::new(text));
    if pin.is_empty() {
        return Err(pin_err("it is empty".into()));
    }
    Ok(AuthPin::from(pin))
}

/// An epoch key inside the token: AES-GCM done by the token.
pub struct TokenKey<'t> {
    token: &'t Token,
    handle: ObjectHandle,
}

impl TokenKey<'_> {
    fn gcm(
        &self,
        nonce: [u8; 12],
        aad: &[u8],
        input: &[u8],
        encrypt: bool,
    ) -> Result<Vec<u8>, P11Error> {
        let mut iv = nonce;
        let params = GcmParams::new(&mut iv, aad, 128.into())?;
        let mechanism = Mechanism::AesGcm(params);
        let session = self.token.session();
        if encrypt {
            session.encrypt(&mechanism, self.handle, input)
        } else {
            session.decrypt(&mechanism, self.handle, input)
        }
    }
}

impl WrappingKey for TokenKey<'_> {
    fn seal(&self, nonce: [u8; 12], aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.gcm(nonce, aad, plain, true)
            .map_err(|e| KeyError::Provider(format!("token {}: {e}", self.token.label)))
    }

    fn open(
        &self,
        nonce: [u8; 12],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        match self.gcm(nonce, aad, sealed, false) {
            Ok(plain) => Ok(Zeroizing::new(plain)),
            // A wrong key, nonce or aad: the tag does not verify.
            Err(P11Error::Pkcs11(
                RvError::EncryptedDataInvalid | RvError::EncryptedDataLenRange,
                _,
            )) => Err(KeyError::Unwrap),
            Err(e) => Err(KeyError::Provider(format!(
                "token {}: {e}",
                self.token.label
            ))),
        }
    }
}
