//! `kiroku audit verify`: the audit log's chain and signed checkpoints.

use std::sync::Arc;

use clap::Subcommand;

use crate::app::Kiroku;
use crate::cli::{Res, emit};

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Check the chain and the signed checkpoints; names the first bad entry.
    Verify {
        /// The operator's public key (hex). Default: this data dir's.
        #[arg(long)]
        public_key: Option<String>,
    },
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
