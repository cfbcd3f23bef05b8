//! The `Kiroku-Signature` header of push deliveries: `t=<unix seconds>,v1=<hex
//! HMAC-SHA256(secret, "<t>.<body>")>`, made by kiroku and checked by receivers, who refuse a
//! `t` outside their replay window.

use ring::hmac;

/// Why a signature does not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("Kiroku-Signature header is malformed")]
    Malformed,
    #[error("the delivery is outside the replay window")]
    Stale,
    #[error("the signature does not match")]
    Mismatch,
}

/// The value of the `Kiroku-Signature` header for `body` at time `t`.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(t.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("t={t},v1={}", hex::encode(ctx.sign().as_ref()))
}

/// Checks a delivery as a receiver should: signature over `t.body`, and `t` within `window`
/// seconds of `now`.
pub fn verify_signature(
    secret: &str,
    header: &str,
    body: &[u8],
    now: i64,
    window: i64,
) -> Result<(), SignatureError> {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = x.parse::<i64>().ok(),
            Some(("v1", x)) => v1 = hex::decode(x).ok(),
            _ => return Err(SignatureError::Malformed),
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return Err(SignatureError::Malformed);
    };
    if now.abs_diff(t) > window.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut msg = format!("{t}.").into_bytes();
    msg.extend_from_slice(body);
    hmac::verify(&key, &msg, &v1).map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_body_secret_and_window() {
        let h = sign("s3cret", 1000, b"{\"a\":1}");
        assert_eq!(
            verify_signature("s3cret", &h, b"{\"a\":1}", 1100, 300),
            Ok(())
        );
        assert_eq!(
            verify_signature("s3cret", &h, b"{\"a\":2}", 1100, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature("other", &h, b"{\"a\":1}", 1100, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature("s3cret", &h, b"{\"a\":1}", 1400, 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_signature("s3cret", "v1=zz", b"", 0, 300),
            Err(SignatureError::Malformed)
        );
    }
}
