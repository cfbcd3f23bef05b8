//! `kiroku audit verify`: the audit log's chain and signed checkpoints.

use std::sync::Arc;

use clap::Subcommand;

use crate::app::Kiroku;
use crate::cli::{Res, emit};

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Check the chain and the signed checkpoints; names the first bad entry.
    Verify {
        /// The operator's public key (hex). Default: `[audit] public_key`, else this data
        /// dir's.
        #[arg(long)]
        public_key: Option<String>,
        /// The folder checkpoints are published to. Default: `[audit] publish_dir`. The
        /// `[audit.s3]` bucket, when configured, is always compared too.
        #[arg(long)]
        published: Option<std::path::PathBuf>,
    },
}

pub fn audit(app: &Arc<Kiroku>, json: bool, cmd: &AuditCmd) -> Res {
    let AuditCmd::Verify {
        public_key,
        published,
    } = cmd;
    let pk = public_key
        .clone()
        .or_else(|| app.config.audit.public_key.clone())
        .unwrap_or_else(|| app.signer.public_key_hex());
    let mut copies = match published
        .as_deref()
        .or(app.config.audit.publish_dir.as_deref())
    {
        Some(folder) => crate::audit::read_published_dir(folder)?,
        None => Vec::new(),
    };
    if let Some(anchor) = &app.anchor {
        copies.extend(anchor.read_published()?);
    }
    let report = app.audit.verify(&pk, &copies)?;
    emit(
        json,
        serde_json::to_value(&report)?,
        &[format!(
            "audit log is intact: {} entries, {} signed checkpoints, {} entries after the last checkpoint; {} published checkpoints compared",
            report.entries, report.checkpoints, report.unsigned_tail, report.published_compared
        )],
        None,
    );
    Ok(())
}
