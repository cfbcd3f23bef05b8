//! `kiroku release`: an operator's legal-exception release of a recording to a body that
//! asked for it under law, decided and recorded like every other release.

use std::path::PathBuf;
use std::sync::Arc;

use crate::app::Kiroku;
use crate::cli::{Res, emit};
use crate::consent::{LegalBasis, decision};
use crate::ids::InterviewId;

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
