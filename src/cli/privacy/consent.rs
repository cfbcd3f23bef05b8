//! `kiroku consent grant|withdraw|show`: a candidate's consents, recorded by the operator
//! (paper forms, say) through the same ledger as the API.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Subcommand;

use crate::app::Kiroku;
use crate::audit::Actor;
use crate::cli::{Res, emit};
use crate::consent::{Circumstances, GrantRequest, Method, Scope, WithdrawRequest, Withdrawal};
use crate::ids::CandidateId;

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
    /// The signed paper form's reference (its number in the operator's files). Required for
    /// `share.*` and `transfer`, which an operator records only from a paper form; the
    /// event's origin is then `paper:<reference>`.
    #[arg(long, conflicts_with = "origin")]
    reference: Option<String>,
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

fn how(a: &ConsentArgs) -> Result<Circumstances, Box<dyn std::error::Error>> {
    Ok(Circumstances {
        method: Method::parse(&a.method).ok_or("--method: one of web_form, api, paper")?,
        origin: match &a.reference {
            Some(r) => format!("{}{r}", crate::consent::PAPER_ORIGIN),
            None => a.origin.clone(),
        },
        language: a.language.clone(),
        time_zone: a.time_zone.clone(),
    })
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
                    "withdrew {} (grant {})",
                    e.scope,
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
                        "{} {:<8} {} notice={} method={} origin={} id={}",
                        e.at,
                        e.action,
                        e.scope,
                        e.notice_id.as_deref().unwrap_or("-"),
                        e.method.map(|m| m.as_str()).unwrap_or("-"),
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
