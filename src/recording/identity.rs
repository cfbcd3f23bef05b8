//! The identities an interview's sealed objects are sealed under: what [`crate::seal`] binds
//! into each object's key, derived from the interview's catalog row. Capture, analysis, export
//! and release all take them from here, so writer and reader cannot disagree.

use crate::catalog::InterviewRow;
use crate::seal::{ObjectIdentity, ObjectKind};

/// Sealed-object index of an interview-wide analysis output.
const WHOLE: u32 = u32::MAX;

/// The identity of segment `index` of an interview.
pub fn segment_identity(row: &InterviewRow, index: u32) -> ObjectIdentity {
    ObjectIdentity {
        kind: ObjectKind::Segment,
        region: row.region.clone(),
        candidate: row.candidate,
        interview: row.id,
        index,
        key_version: row.key_version,
    }
}

/// The identity of a finished recording's header or trailer
/// ([`ObjectKind::FinishedHeader`], [`ObjectKind::FinishedTrailer`]).
pub fn finished_identity(row: &InterviewRow, kind: ObjectKind) -> ObjectIdentity {
    ObjectIdentity {
        kind,
        ..segment_identity(row, 0)
    }
}

/// The identity of an analysis object: its kind (a rendition, or one named analyzer's output)
/// and its segment, or the whole interview when `segment` is `None`.
pub fn output_identity(
    row: &InterviewRow,
    kind: ObjectKind,
    segment: Option<u32>,
) -> ObjectIdentity {
    ObjectIdentity {
        kind,
        index: segment.unwrap_or(WHOLE),
        ..segment_identity(row, 0)
    }
}
