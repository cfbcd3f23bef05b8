//! The operator's Ed25519 signing key: it signs consent receipts and audit checkpoints, so a
//! candidate or an auditor holding only the public key can check them offline.
//!
//! What is signed is always the canonical JSON of a value (object keys sorted, no whitespace:
//! serde_json's own output without `preserve_order`, pinned by a test below), prefixed with a
//! domain string so a receipt signature can never pass for a checkpoint signature.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

/// Why the signing key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("signing key file {path}: {why}")]
    File { path: String, why: String },
}

/// The operator's key pair.
pub struct OperatorKey {
    pair: Ed25519KeyPair,
    kid: String,
}

impl OperatorKey {
    /// Loads the PKCS#8 key file, creating it (mode 0600) on first run.
    pub fn load_or_create(path: &Path) -> Result<OperatorKey, SigningError> {
        let err = |why: String| SigningError::File {
            path: path.display().to_string(),
            why,
        };
        let doc = match std::fs::read(path) {
            Ok(d) => {
                crate::util::secret::refuse_if_readable_by_others(path)
                    .map_err(|e| err(e.to_string()))?;
                d
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                    .map_err(|_| err("random generator failed".into()))?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
                }
                let created = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path);
                match created {
                    Ok(mut f) => {
                        f.write_all(doc.as_ref())
                            .and_then(|_| f.sync_all())
                            .map_err(|e| err(e.to_string()))?;
                        doc.as_ref().to_vec()
                    }
                    // Another kiroku process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        std::fs::read(path).map_err(|e| err(e.to_string()))?
                    }
                    Err(e) => return Err(err(e.to_string())),
                }
            }
            Err(e) => return Err(err(e.to_string())),
        };
        let pair = Ed25519KeyPair::from_pkcs8(&doc).map_err(|e| err(e.to_string()))?;
        let kid = key_id(pair.public_key().as_ref());
        Ok(OperatorKey { pair, kid })
    }

    /// Signs `domain` + canonical JSON of `value`; the signature in unpadded base64url.
    pub fn sign_json(&self, domain: &str, value: &serde_json::Value) -> String {
        let sig = self.pair.sign(&message(domain, value));
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig.as_ref())
    }

    /// The public key in hex, as published to candidates and auditors.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.pair.public_key().as_ref())
    }

    /// A short fingerprint of the public key, carried beside every signature.
    pub fn kid(&self) -> &str {
        &self.kid
    }
}

/// The first 16 hex digits of the SHA-256 of a public key.
pub fn key_id(public_key: &[u8]) -> String {
    hex::encode(&crate::util::secret::sha256(public_key)[..8])
}

/// Checks a signature made by [`OperatorKey::sign_json`].
pub fn verify_json(
    public_key_hex: &str,
    domain: &str,
    value: &serde_json::Value,
    signature_b64: &str,
) -> bool {
    let (Ok(pk), Ok(sig)) = (
        hex::decode(public_key_hex.trim()),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature_b64),
    ) else {
        return false;
    };
    UnparsedPublicKey::new(&ED25519, pk)
        .verify(&message(domain, value), &sig)
        .is_ok()
}

/// Canonical JSON: keys sorted, no whitespace.
pub fn canonical_json(value: &serde_json::Value) -> String {
    serde_json::to_string(value).expect("a JSON value serialises")
}

fn message(domain: &str, value: &serde_json::Value) -> Vec<u8> {
    let mut m = Vec::with_capacity(domain.len() + 1 + 256);
    m.extend_from_slice(domain.as_bytes());
    m.push(b'\n');
    m.extend_from_slice(canonical_json(value).as_bytes());
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_whatever_order_they_were_written_in() {
        let a = json!({"b": 1, "a": {"d": [1, 2], "c": null}});
        assert_eq!(canonical_json(&a), r#"{"a":{"c":null,"d":[1,2]},"b":1}"#);
    }

    #[test]
    fn a_signature_fails_for_another_domain_value_or_key() {
        let dir = tempfile::tempdir().unwrap();
        let k = OperatorKey::load_or_create(&dir.path().join("op.pk8")).unwrap();
        let v = json!({"scope": "record"});
        let sig = k.sign_json("receipt", &v);
        assert!(verify_json(&k.public_key_hex(), "receipt", &v, &sig));
        assert!(!verify_json(&k.public_key_hex(), "checkpoint", &v, &sig));
        assert!(!verify_json(
            &k.public_key_hex(),
            "receipt",
            &json!({"scope": "analyze"}),
            &sig
        ));
        let other = OperatorKey::load_or_create(&dir.path().join("other.pk8")).unwrap();
        assert!(!verify_json(&other.public_key_hex(), "receipt", &v, &sig));
        let again = OperatorKey::load_or_create(&dir.path().join("op.pk8")).unwrap();
        assert_eq!(again.public_key_hex(), k.public_key_hex());
    }
}
