//! Consent receipts: the Kantara Consent Receipt v1.1 fields for one grant, signed with the
//! operator's Ed25519 key, so the candidate can later prove what they agreed to, under which
//! notice, and when. [`verify`] checks one offline with only the operator's public key.
//!
//! ```text
//! {"receipt": {...Kantara fields..., "kiroku": {scope, consentEventId, notice...}},
//!  "signature": {"alg": "Ed25519", "kid": "...", "value": "<base64url>"}}
//! ```
//! The signature covers `"kiroku-consent-receipt/v1\n"` + the canonical JSON of `receipt`.

use serde_json::{Value, json};

use super::Scope;
use crate::catalog::{ConsentEventRow, NoticeRow};
use crate::config::Controller;
use crate::signing::OperatorKey;

/// Signature domain of receipts.
pub const DOMAIN: &str = "kiroku-consent-receipt/v1";

/// Why a receipt does not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReceiptError {
    #[error("not a kiroku consent receipt: {0}")]
    Malformed(&'static str),
    #[error("signed by key {found}, not by the operator key {expected}")]
    OtherKey { found: String, expected: String },
    #[error("the signature does not match the receipt: it was altered or forged")]
    BadSignature,
}

/// Builds and signs the receipt of a grant.
pub fn build(
    c: &Controller,
    signer: &OperatorKey,
    e: &ConsentEventRow,
    notice: &NoticeRow,
) -> Value {
    let scope = Some(e.scope.clone());
    let (purpose, category, third_party) = match &scope {
        Some(Scope::Record) => (
            "Recording the voice and video of an AI job interview",
            "core function",
            None,
        ),
        Some(Scope::Analyze) => (
            "Analysing and evaluating the interview recording (AI evaluation, matching)",
            "core function",
            None,
        ),
        Some(Scope::ShareRecording(r)) => (
            "Providing the interview recording to a recruiting company for selection and scouting",
            "third-party disclosure",
            Some(r.to_string()),
        ),
        Some(Scope::ShareAnalysis(r)) => (
            "Providing the interview's analysis results to a recruiting company",
            "third-party disclosure",
            Some(r.to_string()),
        ),
        Some(Scope::Transfer(_)) => (
            "Storing the interview data in a foreign country",
            "cross-border transfer",
            None,
        ),
        Some(Scope::Improve) | None => (
            "Improving the interview service",
            "service improvement",
            None,
        ),
    };
    let receipt = json!({
        "version": "KI-CR-v1.1.0",
        "jurisdiction": c.jurisdiction,
        // Kantara v1.1: epoch seconds; the time with its zone is in `kiroku.consentTime`.
        "consentTimestamp": time::OffsetDateTime::parse(&e.at, &time::format_description::well_known::Rfc3339)
            .map(|t| t.unix_timestamp())
            .unwrap_or_default(),
        "collectionMethod": e.method,
        "consentReceiptID": e.id,
        "publicKey": signer.public_key_hex(),
        "language": e.language,
        "piiPrincipalId": e.candidate.to_string(),
        "piiControllers": [{
            "piiController": c.name,
            "contact": c.contact,
            "address": c.address,
            "email": c.email,
            "phone": c.phone,
        }],
        "policyUrl": notice.url,
        "services": [{
            "service": "AI job interview",
            "purposes": [{
                "purpose": purpose,
                "purposeCategory": [category],
                "consentType": "EXPLICIT",
                "piiCategory": ["voice", "video", "interview content"],
                "primaryPurpose": matches!(scope, Some(Scope::Record)),
                "termination": "until withdrawn: POST /v1/candidates/{id}/consents/{consent_id}/withdraw",
                "thirdPartyDisclosure": third_party.is_some(),
                "thirdPartyName": third_party,
            }],
        }],
        "sensitive": false,
        "spiCat": [],
        "kiroku": {
            "scope": scope.map(|s| s.to_string()),
            "consentTime": e.at,
            "origin": e.origin,
            "notice": {"id": notice.id, "language": notice.language, "textSha256": notice.text_sha256},
        },
    });
    json!({
        "receipt": receipt,
        "signature": {
            "alg": "Ed25519",
            "kid": signer.kid(),
            "value": signer.sign_json(DOMAIN, &receipt),
        },
    })
}

/// Checks a signed receipt against the operator's public key (hex).
pub fn verify(signed: &Value, public_key_hex: &str) -> Result<(), ReceiptError> {
    let receipt = signed
        .get("receipt")
        .filter(|r| r.is_object())
        .ok_or(ReceiptError::Malformed("no `receipt` object"))?;
    let sig = &signed["signature"];
    if sig["alg"] != "Ed25519" {
        return Err(ReceiptError::Malformed("signature.alg is not Ed25519"));
    }
    let value = sig["value"]
        .as_str()
        .ok_or(ReceiptError::Malformed("no signature.value"))?;
    let expected = crate::signing::key_id(&hex::decode(public_key_hex.trim()).unwrap_or_default());
    let found = sig["kid"].as_str().unwrap_or_default();
    if found != expected {
        return Err(ReceiptError::OtherKey {
            found: found.chars().take(32).collect(),
            expected,
        });
    }
    if crate::signing::verify_json(public_key_hex, DOMAIN, receipt, value) {
        Ok(())
    } else {
        Err(ReceiptError::BadSignature)
    }
}
