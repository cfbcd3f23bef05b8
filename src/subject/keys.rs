//! Keys as the operator sees them: epoch rotation (on demand, or when `[keys] epoch_days`
//! have passed), a candidate's key rotation (new interviews on a new version), and status;
//! each rotation audited. The keyring does the work (`keyring`);
//! this records it.

use std::sync::Arc;

use super::SubjectError;
use crate::app::Kiroku;
use crate::audit::{Actor, Event};
use crate::ids::RegionId;
use crate::keyring::{EpochStatus, Rotation};

/// Rotates `region`'s epoch (every live candidate key rewrapped under a new epoch key, old
/// epoch keys past `[keys] keep_epochs` destroyed), audited.
pub fn rotate(
    app: &Arc<Kiroku>,
    region: &RegionId,
    actor: &Actor,
) -> Result<Rotation, SubjectError> {
    if app.region(region).is_none() {
        return Err(SubjectError::UnknownRegion(region.to_string()));
    }
    let r = app.keyring.rotate(region, app.config.keys.keep_epochs)?;
    record(app, &r, actor)?;
    Ok(r)
}

/// Rotates every region whose epoch is `[keys] epoch_days` old (`kiroku serve`, hourly).
pub fn rotate_due(app: &Arc<Kiroku>) -> Result<Vec<Rotation>, SubjectError> {
    let done = app.keyring.rotate_due(
        &regions(app),
        app.config.keys.epoch_days,
        app.config.keys.keep_epochs,
    )?;
    for r in &done {
        record(app, r, &Actor::System)?;
    }
    Ok(done)
}

/// Gives the candidate a new key version in every region where they have one: interviews
/// created from now on are sealed under it, earlier ones keep the version they were sealed
/// under. Returns the regions and their new versions.
pub fn rotate_candidate(
    app: &Arc<Kiroku>,
    candidate: &crate::ids::CandidateId,
    actor: &Actor,
) -> Result<Vec<(RegionId, u32)>, SubjectError> {
    super::not_erased(app, candidate)?;
    let mut done = Vec::new();
    for region in regions(app) {
        let Some(current) = app.keyring.newest(candidate, &region)? else {
            continue;
        };
        let next = crate::seal::CandidateKey::generate(current.version() + 1)
            .map_err(crate::keyring::KeyringError::from)?;
        if app.keyring.insert(candidate, &region, &next)? {
            done.push((region, next.version()));
        }
    }
    app.audit.record(
        Event::CandidateKeyRotated {
            candidate: *candidate,
            versions: done.iter().map(|(r, v)| (r.clone(), *v)).collect(),
        },
        actor,
    )?;
    Ok(done)
}

/// Every region's epochs and how many candidate keys each wraps.
pub fn status(app: &Kiroku) -> Result<Vec<EpochStatus>, SubjectError> {
    Ok(app.keyring.status(&regions(app))?)
}

fn regions(app: &Kiroku) -> Vec<RegionId> {
    app.regions.keys().cloned().collect()
}

fn record(app: &Kiroku, r: &Rotation, actor: &Actor) -> Result<(), SubjectError> {
    app.audit.record(
        Event::KeysRotated {
            region: r.region.clone(),
            from_epoch: r.from_epoch,
            to_epoch: r.to_epoch,
            rewrapped: r.rewrapped,
            destroyed_epochs: r.destroyed_epochs.clone(),
        },
        actor,
    )?;
    Ok(())
}
