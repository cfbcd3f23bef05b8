//! `kiroku notice add|list`: the privacy-notice versions grants are given under.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Subcommand;

use crate::app::Kiroku;
use crate::cli::{Res, emit};
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
                    crate::util::secret::sha256_hex(&t)
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
