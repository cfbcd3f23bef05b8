//! Recruiting companies: registration, API keys, and their webhook endpoints.
//!
//! A key is `krk_<key id>_<secret>`: the key id finds the stored row, and the SHA-256 of the
//! secret is compared in constant time ([`crate::util::secret::same_secret`]). The secret is 32
//! random bytes, so a plain hash suffices: there is nothing to brute-force that a slow hash
//! would protect. A key is shown once, when made; revoking or rotating takes effect at the
//! next request.

use std::net::IpAddr;

use crate::app::Kiroku;
use crate::audit::{Actor, Event};
use crate::catalog::{CatalogError, KeyCheck, WebhookRow};
use crate::ids::{CountryCode, RecruiterHandle};

/// Why a recruiter operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RecruiterError {
    #[error("recruiter `{0}` is already registered")]
    Exists(String),
    #[error("no recruiter `{0}` is registered")]
    Unknown(String),
    #[error("a recruiter API key is required (Authorization: Bearer krk_...)")]
    NoKey,
    #[error("the recruiter API key is not valid")]
    WrongKey,
    #[error("the recruiter API key was revoked")]
    Revoked,
    #[error("webhook url: {0}")]
    BadUrl(&'static str),
    #[error("the controller's jurisdiction is not a country code: give the recruiter's country")]
    NoCountry,
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    #[error(transparent)]
    Random(#[from] crate::util::secret::RandomFailed),
}

impl RecruiterError {
    pub fn code(&self) -> &'static str {
        match self {
            RecruiterError::Exists(_) => "recruiter_exists",
            RecruiterError::Unknown(_) => "unknown_recruiter",
            RecruiterError::NoKey => "unauthorized",
            RecruiterError::WrongKey => "recruiter_key_invalid",
            RecruiterError::Revoked => "recruiter_key_revoked",
            RecruiterError::BadUrl(_) => "invalid_webhook_url",
            RecruiterError::NoCountry => "country_required",
            RecruiterError::Catalog(_) | RecruiterError::Audit(_) | RecruiterError::Random(_) => {
                "internal"
            }
        }
    }
}

/// Registers a recruiter; returns its first API key (shown once).
/// `country` is where the recruiter receives data; `None`: the controller's own jurisdiction.
/// A release to a recruiter in another country than the candidate's needs the candidate's
/// `transfer` consent for that country.
pub fn add(
    app: &Kiroku,
    h: &RecruiterHandle,
    country: Option<CountryCode>,
) -> Result<String, RecruiterError> {
    let country = match country {
        Some(c) => c,
        None => CountryCode::parse(&app.config.controller.jurisdiction)
            .map_err(|_| RecruiterError::NoCountry)?,
    };
    let (key, key_id, hash) = new_key()?;
    if !app.catalog.insert_recruiter(h, &country, &key_id, &hash)? {
        return Err(RecruiterError::Exists(h.to_string()));
    }
    app.audit.record_or_warn(
        Event::RecruiterAdded {
            recruiter: h.clone(),
            key_id,
            country,
        },
        &Actor::Operator,
    );
    Ok(key)
}

/// Replaces every live key of a recruiter with a new one; returns the new key (shown once).
pub fn rotate(app: &Kiroku, h: &RecruiterHandle) -> Result<String, RecruiterError> {
    known(app, h)?;
    let (key, key_id, hash) = new_key()?;
    let revoked = app
        .catalog
        .replace_recruiter_keys(h, Some((&key_id, &hash)))?;
    // A session opened with a key now revoked ends with it.
    app.catalog.delete_recruiter_sessions(h)?;
    app.audit.record_or_warn(
        Event::RecruiterKeyRotated {
            recruiter: h.clone(),
            key_id,
            revoked,
        },
        &Actor::Operator,
    );
    Ok(key)
}

/// Revokes a recruiter as a recipient: every key, its webhook, its download links and its
/// pending deliveries go at once, and the decision point refuses it from then on. Returns how
/// many keys were revoked.
pub fn revoke(app: &Kiroku, h: &RecruiterHandle) -> Result<usize, RecruiterError> {
    known(app, h)?;
    let (n, cancelled) = app.catalog.revoke_recruiter(h)?;
    // Its people signed in on the pages are signed out with it.
    app.catalog.delete_recruiter_sessions(h)?;
    app.audit.record_or_warn(
        Event::RecruiterRevoked {
            recruiter: h.clone(),
            keys_revoked: n,
            deliveries_cancelled: cancelled,
        },
        &Actor::Operator,
    );
    Ok(n)
}

/// The recruiter a presented key belongs to.
pub fn authenticate(
    app: &Kiroku,
    presented: Option<&str>,
) -> Result<RecruiterHandle, RecruiterError> {
    let presented = presented.ok_or(RecruiterError::NoKey)?;
    let Some((key_id, secret)) = presented
        .strip_prefix("krk_")
        .and_then(|rest| rest.split_once('_'))
    else {
        return Err(RecruiterError::WrongKey);
    };
    if key_id.len() != 16 || !key_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(RecruiterError::WrongKey);
    }
    match app.catalog.recruiter_key(key_id)? {
        KeyCheck::Unknown => Err(RecruiterError::WrongKey),
        KeyCheck::Revoked => Err(RecruiterError::Revoked),
        KeyCheck::Live { handle, hash } => {
            let presented_hash = crate::util::secret::token_hash(secret);
            let same = crate::util::secret::same_secret(&presented_hash, &hash);
            if same {
                Ok(handle)
            } else {
                Err(RecruiterError::WrongKey)
            }
        }
    }
}

/// Removes a recruiter's webhook endpoint; false if there was none.
pub fn remove_webhook(app: &Kiroku, h: &RecruiterHandle) -> Result<bool, RecruiterError> {
    let previous = app.catalog.webhook(h)?;
    let removed = app.catalog.remove_webhook(h)?;
    if removed {
        app.audit.record_or_warn(
            Event::RecruiterWebhookRemoved {
                recruiter: h.clone(),
                url_sha256: previous.map(|w| url_hash(&w.url)),
            },
            &Actor::Recruiter(h.to_string()),
        );
    }
    Ok(removed)
}

/// A webhook URL as the audit log names it: its SHA-256, so a change of endpoint can be
/// proven without the log holding the URL (which may carry a path secret).
fn url_hash(url: &str) -> String {
    crate::util::secret::sha256_hex(url.as_bytes())
}

/// Registers (or replaces) a recruiter's webhook endpoint; returns the signing secret (shown
/// once). Only http(s) URLs without credentials; loopback and private addresses only when
/// the operator allows them.
pub fn set_webhook(app: &Kiroku, h: &RecruiterHandle, url: &str) -> Result<String, RecruiterError> {
    check_url(url, app.config.webhooks.allow_private_addresses)?;
    let secret = format!("whsec_{}", crate::util::secret::random_token(32)?);
    let previous = app.catalog.webhook(h)?;
    app.catalog.set_webhook(&WebhookRow {
        handle: h.clone(),
        url: url.into(),
        secret: secret.clone(),
    })?;
    app.audit.record_or_warn(
        Event::RecruiterWebhookSet {
            recruiter: h.clone(),
            url_sha256: url_hash(url),
            previous_url_sha256: previous.map(|w| url_hash(&w.url)),
        },
        &Actor::Recruiter(h.to_string()),
    );
    Ok(secret)
}

/// Checks a webhook URL: https (http only where private addresses are allowed, i.e. tests
/// and closed networks), no credentials, and no loopback, private or link-local host. The URL
/// is parsed the way the HTTP client will parse it, so `127.1`, `2130706433` or
/// `[::ffff:127.0.0.1]` are seen as the addresses they are. Names are checked again when they
/// are resolved for each delivery ([`PublicOnly`]).
pub fn check_url(url: &str, allow_private: bool) -> Result<(), RecruiterError> {
    if url.len() > 2000 {
        return Err(RecruiterError::BadUrl("at most 2000 characters"));
    }
    let parsed = reqwest::Url::parse(url).map_err(|_| RecruiterError::BadUrl("not a URL"))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_private => {}
        "http" => return Err(RecruiterError::BadUrl("must be https")),
        _ => return Err(RecruiterError::BadUrl("must start with https://")),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(RecruiterError::BadUrl("must not carry credentials"));
    }
    let private = match parsed.host() {
        None => return Err(RecruiterError::BadUrl("has no host")),
        Some(url::Host::Ipv4(a)) => is_private(IpAddr::V4(a)),
        Some(url::Host::Ipv6(a)) => is_private(IpAddr::V6(a)),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
    };
    if private && !allow_private {
        return Err(RecruiterError::BadUrl(
            "points at a loopback or private address (the operator has not allowed that)",
        ));
    }
    Ok(())
}

/// Every address a webhook may not reach: loopback, private, link-local, shared (CGNAT),
/// unspecified, broadcast, multicast, IETF protocol assignments (192.0.0.0/24), benchmarking
/// (198.18.0.0/15), reserved (240.0.0.0/4), unique-local; and every IPv6 form that carries an
/// IPv4 address a gateway would reach for it (mapped, IPv4-compatible, NAT64 64:ff9b::/96,
/// 6to4 2002::/16), refused whatever the address inside.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let [x, y, z, _] = a.octets();
            a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_multicast()
                || (x == 100 && (64..128).contains(&y))
                || (x == 192 && y == 0 && z == 0)
                || (x == 198 && (y == 18 || y == 19))
                || x >= 240
                || x == 0
        }
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let s = a.segments();
            let ipv4_compatible = s[..6] == [0; 6] && !a.is_loopback() && !a.is_unspecified();
            let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
            let six_to_four = s[0] == 0x2002;
            a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || ipv4_compatible
                || nat64
                || six_to_four
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

/// A resolver for webhook deliveries that refuses names resolving to private addresses, so a
/// name registered as public cannot later be pointed inside (DNS rebinding).
pub struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| !is_private(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err("the webhook host resolves to no public address".into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

fn known(app: &Kiroku, h: &RecruiterHandle) -> Result<(), RecruiterError> {
    if app.catalog.recruiter_exists(h)? {
        Ok(())
    } else {
        Err(RecruiterError::Unknown(h.to_string()))
    }
}

fn new_key() -> Result<(String, String, Vec<u8>), RecruiterError> {
    let key_id = crate::util::secret::random_hex(8)?;
    let secret = crate::util::secret::random_token(32)?;
    let hash = crate::util::secret::token_hash(&secret);
    Ok((format!("krk_{key_id}_{secret}"), key_id, hash))
}

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn webhook_urls_refuse_credentials_other_schemes_and_private_hosts_unless_allowed() {
        assert!(check_url("https://hooks.acme.example/kiroku", false).is_ok());
        assert!(check_url("ftp://acme.example/", false).is_err());
        assert!(check_url("https://user:pw@acme.example/", false).is_err());
        assert!(check_url("http://127.0.0.1:9000/hook", false).is_err());
        assert!(check_url("http://10.1.2.3/hook", false).is_err());
        assert!(check_url("http://[::1]:80/", false).is_err());
        assert!(check_url("http://localhost/", false).is_err());
        assert!(check_url("http://127.0.0.1:9000/hook", true).is_ok());
        assert!(check_url("https://", true).is_err());
        assert!(
            check_url("http://hooks.acme.example/", false).is_err(),
            "https only"
        );
        for sneaky in [
            "https://127.1/",
            "https://2130706433/",
            "https://0/",
            "https://[::ffff:127.0.0.1]/",
            "https://[fe80::1]/",
            "https://100.64.0.1/",
            "https://LOCALHOST./",
            "https://127.0.0.1\\@acme.example/",
            // IPv6 forms a gateway turns into IPv4, multicast, and IPv4's odd ranges.
            "https://[64:ff9b::a00:1]/",
            "https://[64:ff9b::808:808]/",
            "https://[2002:7f00:1::]/",
            "https://[::10.0.0.1]/",
            "https://[ff02::1]/",
            "https://224.0.0.1/",
            "https://198.18.0.1/",
            "https://240.0.0.1/",
            "https://192.0.0.8/",
        ] {
            assert!(check_url(sneaky, false).is_err(), "{sneaky} was accepted");
        }
    }
}
