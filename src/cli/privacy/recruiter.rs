//! `kiroku recruiter add|rotate|revoke|list`: recruiting companies and their API keys.

use std::sync::Arc;

use clap::Subcommand;

use crate::app::Kiroku;
use crate::cli::{Res, emit};
use crate::ids::{CountryCode, RecruiterHandle};

#[derive(Subcommand)]
pub enum RecruiterCmd {
    /// Register a recruiting company; prints its API key once, alone on the last line.
    Add {
        handle: String,
        /// Where it receives data (ISO 3166-1 alpha-2); default: the controller's
        /// jurisdiction. A release to another country than the candidate's needs `transfer`.
        #[arg(long)]
        country: Option<String>,
    },
    /// Replace every key of a recruiter with a new one; prints the new key on the last line.
    Rotate { handle: String },
    /// Revoke every key of a recruiter.
    Revoke { handle: String },
    /// List recruiters and their live keys.
    List,
}

pub fn recruiter(app: &Arc<Kiroku>, json: bool, cmd: &RecruiterCmd) -> Res {
    match cmd {
        RecruiterCmd::Add { handle, .. } | RecruiterCmd::Rotate { handle } => {
            let h = RecruiterHandle::parse(handle)?;
            let (key, what) = if let RecruiterCmd::Add { country, .. } = cmd {
                let country = country.as_deref().map(CountryCode::parse).transpose()?;
                (crate::recruiter::add(app, &h, country)?, "registered")
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
