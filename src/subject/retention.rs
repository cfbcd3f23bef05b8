//! Retention: kiroku keeps personal data only as long as its purposes need (APPI Art. 22,
//! GDPR Art. 5(1)(e)). `[retention]` sets, per kind, how many days after it was made an item
//! is kept (0: until the candidate is erased): recordings (counted from the interview's end),
//! analysis reports, and the WAV renditions made for analyzers. A sweep deletes what expired,
//! objects and rows, and records it; a dry run lists the same items and changes nothing.
//! Provision records have their own keeping time (`[release] provision_retention_days`), and
//! the audit log is kept whole: its chain is its proof, and it holds no personal data.

use std::sync::Arc;

use super::SubjectError;
use crate::app::Kiroku;
use crate::audit::{Actor, Event};
use crate::ids::InterviewId;
use crate::store::ObjectKey;
use crate::vocab::OutputFormat;

/// One item a sweep deletes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Expired {
    /// An interview's recording: its segments and manifest.
    Recording { interview: InterviewId },
    /// An analysis report (JSON) of an analyzer, for one segment or the whole interview.
    Analysis {
        interview: InterviewId,
        analyzer: String,
        segment: Option<u32>,
    },
    /// A WAV rendition made for an analyzer.
    Rendition {
        interview: InterviewId,
        analyzer: String,
        segment: Option<u32>,
    },
}

/// What a sweep found, and whether it deleted it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SweepReport {
    pub dry_run: bool,
    pub expired: Vec<Expired>,
    pub objects_deleted: usize,
}

const DAY: i64 = 86_400;

/// Finds what expired by `now` (unix seconds) and, unless `dry_run`, deletes it.
pub fn sweep(app: &Arc<Kiroku>, now: i64, dry_run: bool) -> Result<SweepReport, SubjectError> {
    let r = &app.config.retention;
    let mut expired = Vec::new();
    let mut recordings = Vec::new();
    if r.recordings_days > 0 {
        let limit = now - r.recordings_days as i64 * DAY;
        for (interview, ended_at) in app.catalog.recordings_kept()? {
            if unix(&ended_at).is_some_and(|t| t < limit) {
                expired.push(Expired::Recording { interview });
                recordings.push(interview);
            }
        }
    }
    let mut outputs = Vec::new();
    for o in app.catalog.analysis_outputs_kept()? {
        let days = match o.kind {
            OutputFormat::Json => r.analysis_days,
            OutputFormat::Wav => r.renditions_days,
        };
        let past = unix(&o.created_at).is_some_and(|t| t < now - days as i64 * DAY);
        if days == 0 || !past {
            continue;
        }
        let (interview, analyzer, segment) = (o.interview, o.analyzer.clone(), o.segment);
        expired.push(match o.kind {
            OutputFormat::Json => Expired::Analysis {
                interview,
                analyzer,
                segment,
            },
            OutputFormat::Wav => Expired::Rendition {
                interview,
                analyzer,
                segment,
            },
        });
        outputs.push(o);
    }
    let mut objects_deleted = 0;
    if !dry_run {
        for interview in &recordings {
            objects_deleted += expire_recording(app, interview)?;
        }
        for o in &outputs {
            if let Some(key) = &o.object_key {
                objects_deleted += delete(app, &o.interview, key)?;
            }
            app.catalog.delete_analysis_output(o)?;
        }
        if !expired.is_empty() {
            app.audit.record(
                Event::RetentionSwept {
                    recordings: recordings.clone(),
                    analysis_outputs: outputs.len(),
                    objects_deleted,
                },
                &Actor::System,
            )?;
        }
    }
    Ok(SweepReport {
        dry_run,
        expired,
        objects_deleted,
    })
}

/// Deletes an interview's segments and manifest, then marks its recording expired (so every
/// read path says so rather than finding it incomplete).
fn expire_recording(app: &Kiroku, interview: &InterviewId) -> Result<usize, SubjectError> {
    let Some(row) = app.catalog.interview(interview)? else {
        return Ok(0);
    };
    let mut keys: Vec<ObjectKey> = app
        .catalog
        .segments(interview)?
        .into_iter()
        .map(|s| s.object_key)
        .collect();
    keys.push(ObjectKey::manifest(&row.candidate, interview));
    // A finished header and trailer exist only for recordings finished when capture ended
    // (their tags say so); counted only when there.
    let store = app.region(&row.region).map(|r| &r.store);
    keys.extend(
        [
            ObjectKey::finished_header(&row.candidate, interview),
            ObjectKey::finished_trailer(&row.candidate, interview),
        ]
        .into_iter()
        .filter(|k| store.is_some_and(|s| s.get_tags(k).is_ok())),
    );
    // Marked first: a release under way stops at its next segment, none starts.
    app.catalog
        .expire_recording(interview, &crate::util::now_rfc3339())?;
    let mut n = 0;
    for key in &keys {
        n += delete(app, interview, key)?;
    }
    Ok(n)
}

fn delete(app: &Kiroku, interview: &InterviewId, key: &ObjectKey) -> Result<usize, SubjectError> {
    let Some(row) = app.catalog.interview(interview)? else {
        return Ok(0);
    };
    let Some(region) = app.region(&row.region) else {
        return Ok(0);
    };
    region
        .store
        .delete(key)
        .map_err(|source| SubjectError::Store {
            region: row.region.to_string(),
            source,
        })?;
    Ok(1)
}

fn unix(rfc3339: &str) -> Option<i64> {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}
