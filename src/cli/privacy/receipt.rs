//! `kiroku receipt verify|public-key`: checking a signed consent receipt offline.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Subcommand;

use crate::app::Kiroku;
use crate::cli::{Res, emit};

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
