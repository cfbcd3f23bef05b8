//! Push release: signed webhook notifications to recruiters, from a durable outbox.
//!
//! - `recording.ready` is queued when an interview finishes while `share.recording` for its
//!   recruiter stands, or when that consent is granted after it finished. At each attempt the
//!   decision point is asked again; the notification carries a short-lived download link whose
//!   use is decided again, and recorded, like any pull.
//! - A withdrawal cancels every pending delivery resting on the withdrawn scope, and, if the
//!   recruiter has already received data of that candidate, queues `consent.withdrawn` (APPI
//!   Art. 35, GDPR Art. 19: tell each recipient).
//! - Signature: header `Kiroku-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
//!   "<t>.<body>")>`. Receivers check it with [`verify_signature`] and refuse a `t` outside
//!   their replay window; every delivery has a unique `id` for deduplication.
//! - Retries with exponential backoff; redirects are not followed; a delivery that fails
//!   `max_attempts` times is recorded as failed.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::json;

use crate::app::Kiroku;
use crate::audit::Actor;
use crate::catalog::{ConsentEventRow, InterviewRow, InterviewState, OutboxRow};
use crate::consent::decision::{self, Item};
use crate::consent::{Ledger, Scope, ledger::scope_of};
use crate::ids::RecruiterHandle;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub const RECORDING_READY: &str = "recording.ready";
pub const ANALYSIS_READY: &str = "analysis.ready";
pub const CONSENT_WITHDRAWN: &str = "consent.withdrawn";

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

/// The ledger's hook: a consent changed. Never fails the consent change itself; problems are
/// logged, and the decision point still guards every delivery.
pub fn consent_changed(app: &Kiroku, e: &ConsentEventRow) {
    if let Err(err) = on_consent_changed(app, e) {
        tracing::error!(error = %err, consent_event = %e.id, "outbox could not follow a consent change");
    }
    app.wake_deliveries();
}

fn on_consent_changed(app: &Kiroku, e: &ConsentEventRow) -> Result<(), BoxError> {
    let scope = scope_of(e)?;
    let (Scope::ShareRecording(to) | Scope::ShareAnalysis(to)) = &scope else {
        return Ok(());
    };
    if e.action == "grant" {
        for i in app.catalog.interviews_of_candidate(&e.candidate)? {
            if i.recruiter != *to || i.state != InterviewState::Finished {
                continue;
            }
            match scope {
                Scope::ShareRecording(_) => enqueue(app, to, RECORDING_READY, &i, &scope)?,
                Scope::ShareAnalysis(_) if has_analysis(app, &i)? => {
                    enqueue(app, to, ANALYSIS_READY, &i, &scope)?
                }
                _ => {}
            }
        }
        return Ok(());
    }
    let cancelled =
        app.catalog
            .cancel_deliveries(&e.candidate, &scope.to_string(), "consent withdrawn")?;
    if !cancelled.is_empty() {
        app.audit.record_or_warn(
            "delivery.cancelled",
            &Actor::System,
            json!({"deliveries": cancelled, "candidate": e.candidate.to_string(), "consent_event": e.id}),
        );
    }
    let received = app.catalog.has_received(&e.candidate, to.as_str())?
        || app
            .catalog
            .was_delivered(&e.candidate, to.as_str(), &scope.to_string())?;
    // Queued even without a webhook: then it fails at once, so the outbox shows the operator
    // a recipient who must be told by other means.
    if received {
        app.catalog.enqueue(&OutboxRow {
            id: new_id(),
            recruiter: to.to_string(),
            kind: CONSENT_WITHDRAWN.into(),
            candidate: e.candidate,
            interview: None,
            scope: scope.to_string(),
            state: "pending".into(),
            attempts: 0,
            next_at: 0,
            last_error: None,
            created_at: e.at.clone(),
            done_at: None,
        })?;
    }
    Ok(())
}

/// Capture's hook: an interview finished. Queues `recording.ready` if the consent stands.
pub fn interview_finished(app: &Kiroku, row: &InterviewRow) {
    ready(app, row, Item::Recording, RECORDING_READY);
}

/// The analysis worker's hook: an interview's analysis is complete. Queues `analysis.ready`
/// if `share.analysis` for its recruiter stands (the decision point asks again at delivery).
pub fn analysis_completed(app: &Kiroku, row: &InterviewRow) {
    ready(app, row, Item::Analysis, ANALYSIS_READY);
}

/// Queues a `*.ready` delivery of `item` to the interview's recruiter while its share scope
/// stands; a failure to queue is logged, never passed back to capture or analysis.
fn ready(app: &Kiroku, row: &InterviewRow, item: Item, kind: &str) {
    let result = (|| -> Result<(), BoxError> {
        let scope = item.scope(&row.recruiter);
        if Ledger::new(app)
            .standing_grant(&row.candidate, &scope)?
            .is_some()
        {
            enqueue(app, &row.recruiter, kind, row, &scope)?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        tracing::error!(error = %e, interview = %row.id, kind, "could not queue a delivery");
    }
    app.wake_deliveries();
}

fn has_analysis(app: &Kiroku, i: &InterviewRow) -> Result<bool, BoxError> {
    Ok(app
        .catalog
        .analysis_outputs(&i.id)?
        .iter()
        .any(|o| o.segment.is_none() && o.status == "ok"))
}

fn enqueue(
    app: &Kiroku,
    to: &RecruiterHandle,
    kind: &str,
    i: &InterviewRow,
    scope: &Scope,
) -> Result<(), BoxError> {
    if app.catalog.webhook(to)?.is_none() {
        return Ok(());
    }
    app.catalog.enqueue(&OutboxRow {
        id: new_id(),
        recruiter: to.to_string(),
        kind: kind.into(),
        candidate: i.candidate,
        interview: Some(i.id),
        scope: scope.to_string(),
        state: "pending".into(),
        attempts: 0,
        next_at: 0,
        last_error: None,
        created_at: crate::util::now_rfc3339(),
        done_at: None,
    })?;
    Ok(())
}

/// The delivery loop of `kiroku serve`: wakes on a new delivery or every second; purges
/// provision records past their keeping time every hour.
pub async fn run(app: Arc<Kiroku>) {
    let mut builder = reqwest::Client::builder();
    if !app.config.webhooks.allow_private_addresses {
        builder = builder.dns_resolver(Arc::new(crate::recruiter::PublicOnly));
    }
    let client = match builder
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(app.config.webhooks.timeout_seconds))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook client could not be built; no push deliveries");
            return;
        }
    };
    let mut last_purge = std::time::Instant::now();
    // On shutdown the attempt in flight completes; the rest stay pending for the next start.
    while !app.is_shutting_down() {
        if last_purge.elapsed() > Duration::from_secs(3600) {
            last_purge = std::time::Instant::now();
            let app = app.clone();
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(e) = crate::release::purge_expired_provisions(&app) {
                    tracing::error!(error = %e, "provision records could not be purged");
                }
            })
            .await;
        }
        let due = {
            let app = app.clone();
            tokio::task::spawn_blocking(move || app.catalog.due_deliveries(crate::util::now_unix()))
                .await
        };
        match due {
            Ok(Ok(rows)) => {
                for row in rows.into_iter().take_while(|_| !app.is_shutting_down()) {
                    attempt(&app, &client, row).await;
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "outbox unreadable"),
            Err(e) => tracing::error!(error = %e, "outbox task failed"),
        }
        tokio::select! {
            _ = app.deliveries_wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = app.stopped() => {}
        }
    }
}

/// One attempt at one delivery.
async fn attempt(app: &Arc<Kiroku>, client: &reqwest::Client, row: OutboxRow) {
    let prepared = {
        let (app, row) = (app.clone(), row.clone());
        tokio::task::spawn_blocking(move || prepare(&app, &row)).await
    };
    let (url, secret, body) = match prepared {
        Ok(Ok(Ready::Send { url, secret, body })) => (url, secret, body),
        Ok(Ok(Ready::Cancel(why))) => {
            settle(app, &row, "cancelled", row.attempts, 0, Some(why)).await;
            return;
        }
        Ok(Ok(Ready::Fail(why))) => {
            settle(app, &row, "failed", row.attempts, 0, Some(why)).await;
            return;
        }
        Ok(Ok(Ready::Later)) => {
            let next = crate::util::now_unix() + 1;
            settle(app, &row, "pending", row.attempts, next, None).await;
            return;
        }
        // A delivery that cannot even be built counts as a failed attempt, so it backs off
        // instead of being rebuilt every second.
        Ok(Err(e)) => {
            tracing::error!(error = %e, delivery = %row.id, "delivery could not be prepared");
            retry_or_fail(app, &row, format!("could not be prepared: {e}")).await;
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "delivery task failed");
            return;
        }
    };
    if let Err(e) = crate::recruiter::check_url(&url, app.config.webhooks.allow_private_addresses) {
        settle(app, &row, "failed", row.attempts, 0, Some(e.to_string())).await;
        return;
    }
    let t = crate::util::now_unix();
    let sent = client
        .post(&url)
        .header("content-type", "application/json")
        .header("kiroku-signature", sign(&secret, t, body.as_bytes()))
        .header("kiroku-delivery", &row.id)
        .body(body)
        .send()
        .await;
    let error = match sent {
        Ok(r) if r.status().is_success() => None,
        Ok(r) if r.status().is_redirection() => Some(format!(
            "endpoint answered HTTP {} (a redirect, not followed)",
            r.status().as_u16()
        )),
        Ok(r) => Some(format!("endpoint answered HTTP {}", r.status().as_u16())),
        Err(e) if e.is_timeout() => Some(format!(
            "endpoint did not answer within {} s",
            app.config.webhooks.timeout_seconds
        )),
        Err(e) if e.is_connect() => Some("could not connect to the endpoint".to_string()),
        Err(_) => Some("the request to the endpoint failed".to_string()),
    };
    match error {
        None => settle(app, &row, "delivered", row.attempts + 1, 0, None).await,
        Some(why) => retry_or_fail(app, &row, why).await,
    }
}

/// Records a failed attempt: a retry after the backoff, or `failed` after the last attempt.
async fn retry_or_fail(app: &Arc<Kiroku>, row: &OutboxRow, why: String) {
    let attempts = row.attempts + 1;
    let cfg = &app.config.webhooks;
    if attempts >= cfg.max_attempts {
        settle(app, row, "failed", attempts, 0, Some(why)).await;
    } else {
        let delay = cfg
            .backoff_base_seconds
            .saturating_mul(1 << (attempts - 1).min(20))
            .min(3600);
        let next = crate::util::now_unix() + delay as i64;
        settle(app, row, "pending", attempts, next, Some(why)).await;
    }
}

enum Ready {
    Send {
        url: String,
        secret: String,
        body: String,
    },
    /// Nothing to send any more (the decision point refused, the interview is gone).
    Cancel(String),
    /// It cannot be sent, and someone must act (no endpoint to tell of a withdrawal).
    Fail(String),
    /// Not yet: the interview's capture is still being concluded.
    Later,
}

/// Decides again and builds the notification (blocking: catalog and audit).
fn prepare(app: &Kiroku, row: &OutboxRow) -> Result<Ready, BoxError> {
    let to = RecruiterHandle::parse(&row.recruiter)?;
    let Some(hook) = app.catalog.webhook(&to)? else {
        return Ok(if row.kind == CONSENT_WITHDRAWN {
            Ready::Fail(
                "the recruiter has no webhook endpoint: tell it of the withdrawal by other means"
                    .into(),
            )
        } else {
            Ready::Cancel("the recruiter has no webhook endpoint".into())
        });
    };
    let body = match row.kind.as_str() {
        RECORDING_READY => {
            let Some(i) = row
                .interview
                .map(|id| app.catalog.interview(&id))
                .transpose()?
                .flatten()
            else {
                return Ok(Ready::Cancel("the interview is gone".into()));
            };
            match decision::decide(app, &to, &i, Item::Recording)? {
                Err(refusal) => return Ok(Ready::Cancel(refusal.code().into())),
                Ok(proof) => {
                    let (url, expires_at) = download_link(app, &to, &i)?;
                    json!({
                        "id": row.id,
                        "type": RECORDING_READY,
                        "created_at": row.created_at,
                        "interview_id": i.id,
                        "candidate_id": i.candidate,
                        "job_ref": i.job_ref,
                        "consent_event_id": match proof.basis() {
                            crate::consent::Basis::Consent { consent_event_id } => Some(consent_event_id.clone()),
                            _ => None,
                        },
                        "download": {"url": url, "expires_at": expires_at},
                    })
                }
            }
        }
        ANALYSIS_READY => {
            let Some(i) = row
                .interview
                .map(|id| app.catalog.interview(&id))
                .transpose()?
                .flatten()
            else {
                return Ok(Ready::Cancel("the interview is gone".into()));
            };
            match decision::decide(app, &to, &i, Item::Analysis)? {
                Err(crate::consent::Refusal::NotEnded) => return Ok(Ready::Later),
                Err(refusal) => return Ok(Ready::Cancel(refusal.code().into())),
                Ok(_) => {
                    let base = app.config.release.public_url.trim_end_matches('/');
                    json!({
                        "id": row.id,
                        "type": ANALYSIS_READY,
                        "created_at": row.created_at,
                        "interview_id": i.id,
                        "candidate_id": i.candidate,
                        "job_ref": i.job_ref,
                        // Fetched with the recruiter's API key; decided and recorded then.
                        "analysis_url": format!("{base}/v1/recruiter/interviews/{}/analysis", i.id),
                    })
                }
            }
        }
        CONSENT_WITHDRAWN => {
            let interviews: Vec<String> = app
                .catalog
                .interviews_of_candidate(&row.candidate)?
                .into_iter()
                .filter(|i| i.recruiter == to)
                .map(|i| i.id.to_string())
                .collect();
            json!({
                "id": row.id,
                "type": CONSENT_WITHDRAWN,
                "created_at": row.created_at,
                "candidate_id": row.candidate,
                "scope": row.scope,
                "interview_ids": interviews,
                "instruction": "The candidate withdrew this consent. Stop using what you received under it and delete it (APPI Art. 35, GDPR Art. 17 and 19).",
            })
        }
        other => return Ok(Ready::Cancel(format!("unknown delivery kind {other}"))),
    };
    Ok(Ready::Send {
        url: hook.url,
        secret: hook.secret,
        body: body.to_string(),
    })
}

/// A short-lived capability link to the recording; its use is decided and recorded like a pull.
fn download_link(
    app: &Kiroku,
    to: &RecruiterHandle,
    i: &InterviewRow,
) -> Result<(String, i64), BoxError> {
    let mut raw = [0u8; 32];
    SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| "random generator failed")?;
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let expires_at = crate::util::now_unix() + app.config.release.download_link_ttl_seconds as i64;
    app.catalog
        .insert_download_link(&link_hash(&token), to, &i.id, expires_at)?;
    let base = app.config.release.public_url.trim_end_matches('/');
    Ok((format!("{base}/v1/links/{token}"), expires_at))
}

/// Links are stored hashed, like every bearer secret.
pub fn link_hash(token: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

async fn settle(
    app: &Arc<Kiroku>,
    row: &OutboxRow,
    state: &'static str,
    attempts: u32,
    next_at: i64,
    error: Option<String>,
) {
    let (app2, row2) = (app.clone(), row.clone());
    let result = tokio::task::spawn_blocking(
        move || -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            let before = app2.catalog.settle_delivery(
                &row2.id,
                state,
                attempts,
                next_at,
                error.as_deref(),
            )?;
            match before.as_deref() {
                Some("pending") => {}
                // Cancelled by a withdrawal while the request was on its way, and it arrived:
                // it is recorded as delivered, and the recipient is told of the withdrawal.
                Some("cancelled") if state == "delivered" => {
                    if let Some(e) = app2.catalog.last_withdrawal(&row2.candidate, &row2.scope)? {
                        on_consent_changed(&app2, &e)?;
                    }
                }
                _ => return Ok(()), // cancelled meanwhile: nothing was sent
            }
            let event = match state {
                "delivered" => "delivery.delivered",
                "cancelled" => "delivery.cancelled",
                "failed" => "delivery.failed",
                _ => "delivery.retrying",
            };
            app2.audit.record(
                event,
                &Actor::System,
                json!({
                    "delivery": row2.id,
                    "kind": row2.kind,
                    "recipient": row2.recruiter,
                    "candidate": row2.candidate.to_string(),
                    "interview": row2.interview.map(|i| i.to_string()),
                    "attempts": attempts,
                    "error": error,
                }),
            )?;
            Ok(())
        },
    )
    .await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "delivery outcome could not be recorded"),
        Err(e) => tracing::error!(error = %e, "delivery task failed"),
    }
}

fn new_id() -> String {
    format!("dl_{}", uuid::Uuid::new_v4().simple())
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
