//! The sender: the delivery loop of `kiroku serve`. It takes what is due from the outbox, asks
//! the decision point again, signs and posts each notification (no redirects, public
//! addresses only), and settles it: delivered, retried with backoff, or failed.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::signature::sign;
use super::{BoxError, outbox};
use crate::app::Kiroku;
use crate::audit::{Actor, DeliveryAttempt, Event};
use crate::catalog::{InterviewRow, OutboxRow};
use crate::consent::decision;
use crate::ids::RecruiterHandle;
use crate::vocab::{OutboxKind, OutboxState};

/// The delivery loop of `kiroku serve`: wakes on a new delivery or every second; purges
/// provision records past their keeping time every hour.
pub async fn run(app: Arc<Kiroku>) {
    let mut builder = reqwest::Client::builder();
    if !app.config.webhooks.allow_private_addresses {
        builder = builder.dns_resolver(Arc::new(crate::recruiter::PublicOnly));
    }
    // No proxy from the environment (HTTP_PROXY and the like): a proxy would resolve and
    // reach the endpoint itself, past the public-address checks.
    let client = match builder
        .no_proxy()
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
    // One task per recipient with deliveries due, each sending its own in order: a hanging
    // endpoint holds up only its own recipient's deliveries, never another's.
    let mut in_flight: tokio::task::JoinSet<()> = tokio::task::JoinSet::new();
    let busy = Busy::default();
    // On shutdown the attempts in flight complete; the rest stay pending for the next start.
    while !app.is_shutting_down() {
        while in_flight.try_join_next().is_some() {}
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
                for to in recipients(rows) {
                    // None: its earlier deliveries are still being attempted.
                    let Some(turn) = busy.take(to.clone()) else {
                        continue;
                    };
                    let (app, client) = (app.clone(), client.clone());
                    in_flight.spawn(async move {
                        let _turn = turn;
                        send_claimed(&app, &client, &to).await;
                    });
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
    while in_flight.join_next().await.is_some() {}
}

/// Sends a recipient's due deliveries in order, under this node's claim on that recipient in
/// the catalog: with several nodes on one catalog each delivery goes out once. The claim
/// outlasts one attempt and is renewed before each; the rows are read after it is won, so
/// none another node has just sent is sent again.
async fn send_claimed(app: &Arc<Kiroku>, client: &reqwest::Client, to: &RecruiterHandle) {
    let hold = app.config.webhooks.timeout_seconds as i64 + 30;
    let claim = |app: Arc<Kiroku>, to: RecruiterHandle| async move {
        tokio::task::spawn_blocking(move || {
            let now = crate::util::now_unix();
            app.catalog
                .claim(&format!("deliveries:{to}"), app.node(), now, now + hold)
        })
        .await
    };
    if !matches!(claim(app.clone(), to.clone()).await, Ok(Ok(true))) {
        return; // another node is sending them
    }
    let rows = {
        let (app, to) = (app.clone(), to.clone());
        tokio::task::spawn_blocking(move || {
            app.catalog.due_deliveries_of(&to, crate::util::now_unix())
        })
        .await
    };
    if let Ok(Ok(rows)) = rows {
        for row in rows {
            if app.is_shutting_down()
                || !matches!(claim(app.clone(), to.clone()).await, Ok(Ok(true)))
            {
                break;
            }
            attempt(app, client, row).await;
        }
    }
    let (app, to) = (app.clone(), to.clone());
    let released = tokio::task::spawn_blocking(move || {
        app.catalog
            .release_claim(&format!("deliveries:{to}"), app.node())
    })
    .await;
    if let Ok(Err(e)) = released {
        tracing::error!(error = %e, "a delivery claim could not be given up; it lapses by itself");
    }
}

/// The recipients whose deliveries are being attempted now.
#[derive(Clone, Default)]
struct Busy(Arc<std::sync::Mutex<std::collections::HashSet<RecruiterHandle>>>);

/// A recipient's turn at delivery; given back when dropped, even by a task that panicked.
struct Turn(Busy, RecruiterHandle);

impl Busy {
    fn take(&self, to: RecruiterHandle) -> Option<Turn> {
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        set.insert(to.clone()).then(|| Turn(self.clone(), to))
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut set = self.0.0.lock().unwrap_or_else(|p| p.into_inner());
        set.remove(&self.1);
    }
}

/// The recipients of due deliveries, each once, in the order of their oldest delivery.
fn recipients(rows: Vec<OutboxRow>) -> Vec<RecruiterHandle> {
    let mut out: Vec<RecruiterHandle> = Vec::new();
    for row in rows {
        if !out.contains(&row.recruiter) {
            out.push(row.recruiter);
        }
    }
    out
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
            settle(
                app,
                &row,
                OutboxState::Cancelled,
                row.attempts,
                0,
                Some(why),
            )
            .await;
            return;
        }
        Ok(Ok(Ready::Fail(why))) => {
            settle(app, &row, OutboxState::Failed, row.attempts, 0, Some(why)).await;
            return;
        }
        Ok(Ok(Ready::Later)) => {
            let next = crate::util::now_unix() + 1;
            settle(app, &row, OutboxState::Pending, row.attempts, next, None).await;
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
        settle(
            app,
            &row,
            OutboxState::Failed,
            row.attempts,
            0,
            Some(e.to_string()),
        )
        .await;
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
        None => settle(app, &row, OutboxState::Delivered, row.attempts + 1, 0, None).await,
        Some(why) => retry_or_fail(app, &row, why).await,
    }
}

/// Records a failed attempt: a retry after the backoff, or `failed` after the last attempt.
async fn retry_or_fail(app: &Arc<Kiroku>, row: &OutboxRow, why: String) {
    let attempts = row.attempts + 1;
    let cfg = &app.config.webhooks;
    if attempts >= cfg.max_attempts {
        settle(app, row, OutboxState::Failed, attempts, 0, Some(why)).await;
    } else {
        let delay = cfg
            .backoff_base_seconds
            .saturating_mul(1 << (attempts - 1).min(20))
            .min(3600);
        let next = crate::util::now_unix() + delay as i64;
        settle(app, row, OutboxState::Pending, attempts, next, Some(why)).await;
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
    let to = row.recruiter.clone();
    let Some(hook) = app.catalog.webhook(&to)? else {
        return Ok(if row.kind.is_notice() {
            Ready::Fail(format!(
                "the recruiter has no webhook endpoint: tell it by other means ({})",
                row.kind.as_str()
            ))
        } else {
            Ready::Cancel("the recruiter has no webhook endpoint".into())
        });
    };
    // The interview a `*.ready` delivery is about; `None` once it is gone.
    let interview = row
        .interview
        .map(|id| app.catalog.interview(&id))
        .transpose()?
        .flatten();
    const GONE: &str = "the interview is gone";
    let body = match row.kind {
        OutboxKind::RecordingReady => {
            let Some(i) = interview else {
                return Ok(Ready::Cancel(GONE.into()));
            };
            match decision::decide(&app.catalog, &app.audit, &to, &i, decision::Recording)? {
                Err(refusal) => return Ok(Ready::Cancel(refusal.code().into())),
                Ok(proof) => {
                    let (url, expires_at) = download_link(app, &row.id, &to, &i)?;
                    let mut body = ready_body(row, &i);
                    body["consent_event_id"] = json!(proof.basis().consent_event_id());
                    body["download"] = json!({"url": url, "expires_at": expires_at});
                    body
                }
            }
        }
        OutboxKind::AnalysisReady => {
            let Some(i) = interview else {
                return Ok(Ready::Cancel(GONE.into()));
            };
            match decision::decide(&app.catalog, &app.audit, &to, &i, decision::Analysis)? {
                Err(crate::consent::Refusal::NotEnded) => return Ok(Ready::Later),
                Err(refusal) => return Ok(Ready::Cancel(refusal.code().into())),
                Ok(_) => {
                    let base = app.config.release.public_url.trim_end_matches('/');
                    let mut body = ready_body(row, &i);
                    // Fetched with the recruiter's API key; decided and recorded then.
                    body["analysis_url"] =
                        json!(format!("{base}/v1/recruiter/interviews/{}/analysis", i.id));
                    body
                }
            }
        }
        OutboxKind::CandidateErased => {
            let mut body = notice_body(app, row, &to)?;
            body["instruction"] = json!(
                "The candidate's data was erased at their request. Delete everything you received of it (APPI Art. 35, GDPR Art. 17 and 19)."
            );
            body
        }
        OutboxKind::ConsentWithdrawn => {
            let mut body = notice_body(app, row, &to)?;
            body["scope"] = json!(row.scope.to_string());
            body["instruction"] = json!(
                "The candidate withdrew this consent. Stop using what you received under it and delete it (APPI Art. 35, GDPR Art. 17 and 19)."
            );
            body
        }
    };
    Ok(Ready::Send {
        url: hook.url,
        secret: hook.secret,
        body: body.to_string(),
    })
}

/// What every notice (of a withdrawal, an erasure) says: itself, the candidate, and the
/// interviews of theirs that were run for this recipient.
fn notice_body(
    app: &Kiroku,
    row: &OutboxRow,
    to: &RecruiterHandle,
) -> Result<serde_json::Value, BoxError> {
    let interviews: Vec<String> = app
        .catalog
        .interviews_of_candidate(&row.candidate)?
        .into_iter()
        .filter(|i| i.recruiter == *to)
        .map(|i| i.id.to_string())
        .collect();
    Ok(json!({
        "id": row.id,
        "type": row.kind,
        "created_at": row.created_at,
        "candidate_id": row.candidate,
        "interview_ids": interviews,
    }))
}

/// What every `*.ready` notification says of itself and its interview.
fn ready_body(row: &OutboxRow, i: &InterviewRow) -> serde_json::Value {
    json!({
        "id": row.id,
        "type": row.kind,
        "created_at": row.created_at,
        "interview_id": i.id,
        "candidate_id": i.candidate,
        "job_ref": i.job_ref,
    })
}

/// A short-lived link to the recording, opened with the recruiter's key; its use is decided
/// and recorded like a pull. It is the same on every attempt of one delivery (its lifetime
/// renewed): derived from the delivery's id with the operator's signing key (Ed25519
/// signatures are deterministic), so nobody without that key can guess it and no retry
/// leaves another live link behind.
fn download_link(
    app: &Kiroku,
    delivery: &str,
    to: &RecruiterHandle,
    i: &InterviewRow,
) -> Result<(String, i64), BoxError> {
    let sig = app
        .signer
        .sign_json("kiroku-download-link/v1", &json!({"delivery": delivery}));
    let token = crate::util::secret::sha256_hex(sig.as_bytes());
    let expires_at = crate::util::now_unix() + app.config.release.download_link_ttl_seconds as i64;
    app.catalog
        // Stored hashed, like every bearer secret.
        .insert_download_link(
            &crate::util::secret::token_hash(&token),
            to,
            &i.id,
            expires_at,
        )?;
    let base = app.config.release.public_url.trim_end_matches('/');
    Ok((format!("{base}/v1/links/{token}"), expires_at))
}

async fn settle(
    app: &Arc<Kiroku>,
    row: &OutboxRow,
    state: OutboxState,
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
            match before {
                Some(OutboxState::Pending) => {}
                // Cancelled by a withdrawal while the request was on its way, and it arrived:
                // it is recorded as delivered, and the recipient is told of the withdrawal.
                Some(OutboxState::Cancelled) if state == OutboxState::Delivered => {
                    if let Some(e) = app2.catalog.last_withdrawal(&row2.candidate, &row2.scope)? {
                        outbox::on_consent_changed(&app2, &e)?;
                    }
                }
                _ => return Ok(()), // cancelled meanwhile: nothing was sent
            }
            let attempt = DeliveryAttempt {
                delivery: row2.id.clone(),
                kind: row2.kind,
                recipient: row2.recruiter.clone(),
                candidate: row2.candidate,
                interview: row2.interview,
                attempts,
                error,
            };
            let event = match state {
                OutboxState::Delivered => Event::DeliveryDelivered(attempt),
                OutboxState::Cancelled => Event::DeliveryCancelled(attempt),
                OutboxState::Failed => Event::DeliveryFailed(attempt),
                OutboxState::Pending => Event::DeliveryRetrying(attempt),
            };
            app2.audit.record(event, &Actor::System)?;
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
