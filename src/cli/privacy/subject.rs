//! `kiroku subject export|erase|suspend|correct`: a candidate's rights, carried out by the
//! operator.

use std::sync::Arc;

use clap::Subcommand;

use crate::app::Kiroku;
use crate::cli::{Res, emit};
use crate::ids::CandidateId;

#[derive(Subcommand)]
pub enum SubjectCmd {
    /// Erase a candidate: destroy their keys in every region, delete their objects, cancel
    /// their releases and tell every recipient that received their data. Prints a report;
    /// running it again finishes an erasure a failing store cut short.
    Erase { candidate: String },
    /// Suspend use (`record`, `analyze`, `improve`) and/or provision (every `share.*`) at
    /// the candidate's request: every standing grant of that kind is withdrawn, so capture
    /// and analysis stop at their next boundary and recipients that received data are told.
    /// Export everything kept of a candidate into one tar archive (disclosure, portability):
    /// profile, consents with receipts, provision records, interviews with their segments,
    /// tags and storage places, opened recordings and analysis outputs. Encrypted to the
    /// requester with `--age-recipient` or `--passphrase-env`; otherwise written in the clear.
    Export {
        candidate: String,
        #[arg(long)]
        out: std::path::PathBuf,
        /// The requester's age X25519 recipient (`age1…`).
        #[arg(long, conflicts_with = "passphrase_env")]
        age_recipient: Option<String>,
        /// The name of an environment variable holding the requester's passphrase (never on
        /// the command line, where other users could read it).
        #[arg(long)]
        passphrase_env: Option<String>,
    },
    /// Correct a candidate's profile (external reference, home country, language); the
    /// audit log names the fields, never the values. Lists interviews that a new home country
    /// leaves abroad without a `transfer` consent (nothing is moved).
    Correct {
        candidate: String,
        #[arg(long = "ref")]
        external_ref: Option<String>,
        #[arg(long)]
        home_country: Option<String>,
        /// `ja` or `en`.
        #[arg(long)]
        language: Option<String>,
    },
    Suspend {
        candidate: String,
        #[arg(long = "use")]
        use_: bool,
        #[arg(long)]
        provision: bool,
        /// The request's reference (a ticket or letter number), recorded with each withdrawal.
        #[arg(long)]
        reference: Option<String>,
    },
}

pub fn subject(app: &Arc<Kiroku>, json: bool, cmd: &SubjectCmd) -> Res {
    match cmd {
        SubjectCmd::Erase { candidate } => erase(app, json, candidate),
        SubjectCmd::Export {
            candidate,
            out,
            age_recipient,
            passphrase_env,
        } => {
            let sealing = match (age_recipient, passphrase_env) {
                (Some(r), _) => crate::subject::Sealing::recipient(r)?,
                (None, Some(var)) => {
                    let p = std::env::var(var)
                        .map_err(|_| format!("--passphrase-env: `{var}` is not set"))?;
                    crate::subject::Sealing::Passphrase(p.into())
                }
                (None, None) => crate::subject::Sealing::None,
            };
            export(app, json, candidate, out, &sealing)
        }
        SubjectCmd::Correct {
            candidate,
            external_ref,
            home_country,
            language,
        } => {
            let c = CandidateId::parse(candidate)?;
            let correction = crate::subject::Correction {
                external_ref: external_ref.clone(),
                home_country: home_country
                    .as_deref()
                    .map(crate::ids::CountryCode::parse)
                    .transpose()?,
                language: language
                    .as_deref()
                    .map(|l| crate::vocab::Language::parse(l).ok_or("--language: `ja` or `en`"))
                    .transpose()?,
            };
            let r = crate::subject::correct(app, &c, &correction, &crate::audit::Actor::Operator)?;
            let lines: Vec<String> = std::iter::once(format!(
                "corrected {}: {}",
                r.candidate,
                r.corrected.join(", ")
            ))
            .chain(r.needs_transfer_consent.iter().map(|a| {
                format!(
                    "  interview {} sits in {} ({}) without a transfer:{} consent",
                    a.interview, a.region, a.country, a.country
                )
            }))
            .collect();
            emit(json, serde_json::to_value(&r)?, &lines, None);
            Ok(())
        }
        SubjectCmd::Suspend {
            candidate,
            use_,
            provision,
            reference,
        } => {
            if !use_ && !provision {
                return Err("say what to suspend: --use, --provision or both".into());
            }
            let c = CandidateId::parse(candidate)?;
            let how = crate::consent::Circumstances {
                method: crate::consent::Method::Paper,
                origin: crate::subject::request_origin("suspension", reference.as_deref()),
                language: None,
                time_zone: None,
            };
            let what = crate::subject::Suspension {
                use_: *use_,
                provision: *provision,
            };
            let r = crate::subject::suspend(app, &c, what, &how, &crate::audit::Actor::Operator)?;
            let lines: Vec<String> = std::iter::once(format!(
                "suspended for {}: {} consent(s) withdrawn",
                r.candidate,
                r.withdrawn.len()
            ))
            .chain(r.withdrawn.iter().map(|(s, id)| format!("  {s}: {id}")))
            .collect();
            emit(json, serde_json::to_value(&r)?, &lines, None);
            Ok(())
        }
    }
}

/// Writes the archive beside `out` and renames it into place once whole: a failed export
/// leaves nothing behind. A progress bar on stderr when it is a terminal.
fn export(
    app: &Arc<Kiroku>,
    json: bool,
    candidate: &str,
    out: &std::path::Path,
    sealing: &crate::subject::Sealing,
) -> Res {
    use std::io::{IsTerminal, Write};
    let c = CandidateId::parse(candidate)?;
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(
        ".kiroku-subject-export-{}.tmp",
        uuid::Uuid::new_v4().simple()
    ));
    let bar = std::io::stderr().is_terminal();
    let mut progress = |p: crate::subject::ExportProgress| {
        if bar && p.interviews_total > 0 {
            let filled = 30 * p.interviews_done / p.interviews_total;
            eprint!(
                "\r[{}{}] {}/{} interviews",
                "#".repeat(filled),
                ".".repeat(30 - filled),
                p.interviews_done,
                p.interviews_total
            );
            if p.interviews_done == p.interviews_total {
                eprintln!();
            }
        }
    };
    let written = (|| -> Result<crate::subject::ExportReport, Box<dyn std::error::Error>> {
        let file = std::fs::File::create_new(&tmp)?;
        let mut w = std::io::BufWriter::new(file);
        let report = crate::subject::export(
            app,
            &c,
            &mut w,
            sealing,
            &mut progress,
            &crate::audit::Actor::Operator,
        )?;
        w.flush()?;
        w.into_inner()?.sync_all()?;
        std::fs::rename(&tmp, out)?;
        Ok(report)
    })();
    let report = match written {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    emit(
        json,
        serde_json::to_value(&report)?,
        &[format!(
            "exported {}: {} interview(s), {} recording(s), {} analysis output(s), {} consent event(s), {} provision record(s){}",
            report.candidate,
            report.interviews,
            report.recordings,
            report.analysis_outputs,
            report.consent_events,
            report.provisions,
            if report.encrypted { ", encrypted" } else { "" }
        )],
        None,
    );
    Ok(())
}

fn erase(app: &Arc<Kiroku>, json: bool, candidate: &str) -> Res {
    let c = CandidateId::parse(candidate)?;
    let r = crate::subject::erase(app, &c, &crate::audit::Actor::Operator)?;
    let mut lines = vec![format!(
        "erased {}: {} interview(s), {} key(s) destroyed, {} object(s) deleted, {} delivery(ies) cancelled",
        r.candidate, r.interviews, r.keys_destroyed, r.objects_deleted, r.deliveries_cancelled
    )];
    if !r.recipients_told.is_empty() {
        lines.push(format!(
            "recipients told (candidate.erased): {}",
            r.recipients_told.join(", ")
        ));
    }
    if !r.still_stopping.is_empty() {
        lines.push(format!(
            "still stopping: {} interview(s); run this again once they have stopped",
            r.still_stopping.len()
        ));
    }
    emit(json, serde_json::to_value(&r)?, &lines, None);
    Ok(())
}
