//! The command line's privacy commands: notices, consents, recruiters, receipts, the audit log
//! and legal-exception releases. They mirror the API and go through the same modules.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Subcommand;

use super::{Res, emit};
use crate::app::Kiroku;
use crate::audit::Actor;
use crate::consent::{
    Circumstances, GrantRequest, LegalBasis, Method, Scope, WithdrawRequest, Withdrawal, decision,
};
use crate::ids::{CandidateId, InterviewId, RecruiterHandle};

#[derive(Subcommand)]
pub enum NoticeCmd {
    /// Register a privacy-notice version; prints its id.
    Add {
        #[arg(long)]
        id: String,
        /// BCP 47 language of the text, e.g. ja.
        #[arg(long)]
        language: String,
        /// Where candidates read it.
        #[arg(long)]
        url: String,
        /// The notice text; its SHA-256 is recorded.
        #[arg(long, conflicts_with = "sha256")]
        text: Option<PathBuf>,
        /// The SHA-256 of the text, when the file is not at hand.
        #[arg(long)]
        sha256: Option<String>,
    },
    /// List the registered notice versions.
    List,
}

#[derive(clap::Args)]
pub struct ConsentArgs {
    #[arg(long)]
    candidate: String,
    /// record, analyze, share.recording, share.analysis, transfer, improve.
    #[arg(long)]
    scope: Option<String>,
    /// Recruiter handle, for share.* scopes.
    #[arg(long)]
    recipient: Option<String>,
    /// ISO country code, for transfer.
    #[arg(long)]
    country: Option<String>,
    /// Notice version the grant was given under (default: the newest registered).
    #[arg(long)]
    notice: Option<String>,
    /// For withdraw: the grant's consent id instead of --scope.
    #[arg(long = "consent")]
    consent_id: Option<String>,
    /// web_form, api or paper.
    #[arg(long, default_value = "paper")]
    method: String,
    /// Who reports the event.
    #[arg(long, default_value = "kiroku-cli")]
    origin: String,
    /// BCP 47 language the candidate was addressed in (default: the notice's).
    #[arg(long)]
    language: Option<String>,
    /// Zone offset to record the time in (default: the controller's).
    #[arg(long)]
    time_zone: Option<String>,
    /// For grant: write the signed receipt to this file.
    #[arg(long)]
    receipt_out: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum ConsentCmd {
    /// Record a grant; prints the consent id.
    Grant(ConsentArgs),
    /// Record a withdrawal (by --scope or --consent); prints the withdrawal's id.
    Withdraw(ConsentArgs),
    /// A candidate's consent history and what stands now.
    Show {
        #[arg(long)]
        candidate: String,
    },
}

#[derive(Subcommand)]
pub enum RecruiterCmd {
    /// Register a recruiting company; prints its API key once, alone on the last line.
    Add { handle: String },
    /// Replace every key of a recruiter with a new one; prints the new key on the last line.
    Rotate { handle: String },
    /// Revoke every key of a recruiter.
    Revoke { handle: String },
    /// List recruiters and their live keys.
    List,
}

#[derive(Subcommand)]
pub enum ReceiptCmd {
    /// Check a signed consent receipt offline.
    Verify {
        file: PathBuf,
        /// The operator's public key (hex). Default: this data dir's.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Print the operator's public key (hex), to publish to candidates.
    PublicKey,
}

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Check the chain and the signed checkpoints; names the first bad entry.
    Verify {
        /// The operator's public key (hex). Default: this data dir's.
        #[arg(long)]
        public_key: Option<String>,
    },
}

#[derive(clap::Args)]
pub struct ReleaseArgs {
    /// required_by_law, life_body_property, public_health_or_children, government_cooperation.
    #[arg(long)]
    legal_basis: String,
    /// Case number, request letter or other reference of the legal request.
    #[arg(long)]
    reference: String,
    #[arg(long)]
    interview: String,
    /// The receiving body.
    #[arg(long)]
    recipient: String,
    #[arg(long)]
    out: PathBuf,
}

fn how(a: &ConsentArgs) -> Result<Circumstances, Box<dyn std::error::Error>> {
    Ok(Circumstances {
        method: Method::parse(&a.method)?,
        origin: a.origin.clone(),
        language: a.language.clone(),
        time_zone: a.time_zone.clone(),
    })
}

pub fn notice(app: &Arc<Kiroku>, json: bool, cmd: &NoticeCmd) -> Res {
    match cmd {
        NoticeCmd::Add {
            id,
            language,
            url,
            text,
            sha256,
        } => {
            let hash = match (text, sha256) {
                (Some(p), _) => {
                    let t = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
                    hex::encode(ring::digest::digest(&ring::digest::SHA256, &t))
                }
                (None, Some(h)) => h.clone(),
                (None, None) => return Err("give --text FILE or --sha256 HEX".into()),
            };
            let n = app.clerk().register_notice(id, language, url, &hash)?;
            emit(
                json,
                serde_json::to_value(&n)?,
                &[format!(
                    "registered notice {} ({}, sha256 {})",
                    n.id, n.language, n.text_sha256
                )],
                Some(&n.id),
            );
        }
        NoticeCmd::List => {
            let list = app.catalog.notices()?;
            let lines = list
                .iter()
                .map(|n| format!("{} {} {} {}", n.id, n.language, n.url, n.registered_at))
                .collect::<Vec<_>>();
            emit(json, serde_json::to_value(&list)?, &lines, None);
        }
    }
    Ok(())
}

pub fn consent(app: &Arc<Kiroku>, json: bool, cmd: &ConsentCmd) -> Res {
    let ledger = app.clerk();
    match cmd {
        ConsentCmd::Grant(a) => {
            let c = CandidateId::parse(&a.candidate)?;
            let scope = Scope::parse(
                a.scope.as_deref().ok_or("--scope is required")?,
                a.recipient.as_deref(),
                a.country.as_deref(),
            )?;
            let g = ledger.grant(
                &c,
                &GrantRequest {
                    scope: scope.clone(),
                    notice: a.notice.clone(),
                    how: how(a)?,
                },
                &Actor::Operator,
            )?;
            if let Some(p) = &a.receipt_out {
                crate::util::write_atomic(p, serde_json::to_string_pretty(&g.receipt)?.as_bytes())
                    .map_err(|e| format!("{}: {e}", p.display()))?;
            }
            emit(
                json,
                serde_json::json!({"consent_id": g.event.id, "scope": scope.to_string(), "receipt": g.receipt}),
                &[format!(
                    "granted {scope} under notice {}",
                    g.event.notice_id.as_deref().unwrap_or("-")
                )],
                Some(&g.event.id),
            );
            // A late `analyze` grant analyses the interviews already captured; this process
            // does that work before it exits.
            app.background.wait();
        }
        ConsentCmd::Withdraw(a) => {
            let c = CandidateId::parse(&a.candidate)?;
            let target = match (&a.consent_id, &a.scope) {
                (Some(id), None) => Withdrawal::Grant(id.clone()),
                (None, Some(s)) => Withdrawal::Scope(Scope::parse(
                    s,
                    a.recipient.as_deref(),
                    a.country.as_deref(),
                )?),
                _ => return Err("give exactly one of --scope or --consent".into()),
            };
            let e = ledger.withdraw(
                &c,
                &WithdrawRequest {
                    target,
                    how: how(a)?,
                },
                &Actor::Operator,
            )?;
            emit(
                json,
                serde_json::to_value(&e)?,
                &[format!(
                    "withdrew {}{} (grant {})",
                    e.scope,
                    e.recipient
                        .as_deref()
                        .or(e.country.as_deref())
                        .map(|r| format!(":{r}"))
                        .unwrap_or_default(),
                    e.withdraws.as_deref().unwrap_or("-")
                )],
                Some(&e.id),
            );
        }
        ConsentCmd::Show { candidate } => {
            let c = CandidateId::parse(candidate)?;
            let history = app.ledger().history(&c)?;
            let current = app.ledger().current(&c)?;
            let mut lines: Vec<String> = history
                .iter()
                .map(|e| {
                    format!(
                        "{} {:<8} {}{} notice={} method={} origin={} id={}",
                        e.at,
                        e.action,
                        e.scope,
                        e.recipient
                            .as_deref()
                            .or(e.country.as_deref())
                            .map(|r| format!(":{r}"))
                            .unwrap_or_default(),
                        e.notice_id.as_deref().unwrap_or("-"),
                        e.method.as_deref().unwrap_or("-"),
                        e.origin.as_deref().unwrap_or("-"),
                        e.id
                    )
                })
                .collect();
            lines.push(format!(
                "standing now: {}",
                if current.is_empty() {
                    "nothing".to_string()
                } else {
                    current
                        .iter()
                        .map(|s| s.scope.clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ));
            emit(
                json,
                serde_json::json!({"history": history, "current": current}),
                &lines,
                None,
            );
        }
    }
    Ok(())
}

pub fn recruiter(app: &Arc<Kiroku>, json: bool, cmd: &RecruiterCmd) -> Res {
    match cmd {
        RecruiterCmd::Add { handle } | RecruiterCmd::Rotate { handle } => {
            let h = RecruiterHandle::parse(handle)?;
            let (key, what) = if matches!(cmd, RecruiterCmd::Add { .. }) {
                (crate::recruiter::add(app, &h)?, "registered")
            } else {
                (crate::recruiter::rotate(app, &h)?, "rotated the key of")
            };
            emit(
                json,
                serde_json::json!({"recruiter": h, "api_key": key}),
                &[format!("{what} recruiter {h}; its API key (shown once):")],
                Some(&key),
            );
        }
        RecruiterCmd::Revoke { handle } => {
            let h = RecruiterHandle::parse(handle)?;
            let n = crate::recruiter::revoke(app, &h)?;
            emit(
                json,
                serde_json::json!({"recruiter": h, "revoked": n}),
                &[format!("revoked {n} key(s) of {h}")],
                None,
            );
        }
        RecruiterCmd::List => {
            let list = app.catalog.recruiters()?;
            let lines = list
                .iter()
                .map(|(h, n)| format!("{h} ({n} live key(s))"))
                .collect::<Vec<_>>();
            let v: Vec<_> = list
                .iter()
                .map(|(h, n)| serde_json::json!({"recruiter": h, "live_keys": n}))
                .collect();
            emit(json, serde_json::json!(v), &lines, None);
        }
    }
    Ok(())
}

pub fn receipt(
    app: impl Fn() -> Result<Arc<Kiroku>, Box<dyn std::error::Error>>,
    json: bool,
    cmd: &ReceiptCmd,
) -> Res {
    match cmd {
        ReceiptCmd::Verify { file, public_key } => {
            let text = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
            let v: serde_json::Value = serde_json::from_slice(&text)
                .map_err(|e| format!("{}: not JSON: {e}", file.display()))?;
            let pk = match public_key {
                Some(k) => k.clone(),
                None => app()?.signer.public_key_hex(),
            };
            crate::consent::receipt::verify(&v, &pk)?;
            let r = &v["receipt"];
            emit(
                json,
                serde_json::json!({"valid": true, "consentReceiptID": r["consentReceiptID"], "scope": r["kiroku"]["scope"]}),
                &[format!(
                    "receipt {} is valid: {} granted {} under notice {}",
                    r["consentReceiptID"].as_str().unwrap_or("-"),
                    r["piiPrincipalId"].as_str().unwrap_or("-"),
                    r["kiroku"]["scope"].as_str().unwrap_or("-"),
                    r["kiroku"]["notice"]["id"].as_str().unwrap_or("-")
                )],
                None,
            );
        }
        ReceiptCmd::PublicKey => {
            let app = app()?;
            let pk = app.signer.public_key_hex();
            emit(
                json,
                serde_json::json!({"alg": "Ed25519", "kid": app.signer.kid(), "public_key": pk}),
                &[format!("Ed25519 kid {}", app.signer.kid())],
                Some(&pk),
            );
        }
    }
    Ok(())
}

pub fn audit(app: &Arc<Kiroku>, json: bool, cmd: &AuditCmd) -> Res {
    let AuditCmd::Verify { public_key } = cmd;
    let pk = public_key
        .clone()
        .unwrap_or_else(|| app.signer.public_key_hex());
    let report = crate::audit::verify(&app.data_dir().join("audit"), &pk)?;
    emit(
        json,
        serde_json::to_value(&report)?,
        &[format!(
            "audit log is intact: {} entries, {} signed checkpoints, {} entries after the last checkpoint",
            report.entries, report.checkpoints, report.unsigned_tail
        )],
        None,
    );
    Ok(())
}

/// `kiroku release --legal-basis ...`: an operator's legal-exception release of a recording.
pub fn release(app: &Arc<Kiroku>, json: bool, a: &ReleaseArgs) -> Res {
    let basis = LegalBasis::parse(&a.legal_basis).ok_or(
        "--legal-basis: one of required_by_law, life_body_property, public_health_or_children, government_cooperation",
    )?;
    let id = InterviewId::parse(&a.interview)?;
    let row = app.catalog.interview(&id)?.ok_or("unknown interview")?;
    if !row.state.is_ended() {
        return Err("the interview is still being captured".into());
    }
    let proof = decision::legal_exception(
        &app.audit,
        &row,
        &a.recipient,
        decision::Recording,
        basis,
        &a.reference,
    )?;
    let release = crate::release::prepare_recording(app, proof, None)?;
    let provision = release.provision_id.clone();
    let mut bytes = Vec::with_capacity(release.body_len() as usize);
    crate::release::stream_recording(app, release, |part| {
        bytes.extend_from_slice(&part);
        true
    })?;
    crate::util::write_atomic(&a.out, &bytes).map_err(|e| format!("{}: {e}", a.out.display()))?;
    emit(
        json,
        serde_json::json!({"provision_id": provision, "bytes": bytes.len(), "out": a.out}),
        &[format!(
            "released {} bytes under {} (reference recorded); provision record:",
            bytes.len(),
            basis.as_str()
        )],
        Some(&provision),
    );
    Ok(())
}
