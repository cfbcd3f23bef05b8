//! The tags stored with every segment, in the catalog and beside the object.

use serde_json::{Value, json};

use crate::catalog::InterviewRow;
use crate::consent::Scope;
use crate::segment::PlainSegment;

/// Tags of one segment: consent scopes in force at capture, region, key version, media kind,
/// index and media time range. Pseudonymous ids only.
pub fn segment_tags(interview: &InterviewRow, seg: &PlainSegment, scopes: &[Scope]) -> Value {
    let mut scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    scopes.sort();
    json!({
        "kiroku": 1,
        "candidate": interview.candidate.to_string(),
        "interview": interview.id.to_string(),
        "index": seg.index,
        "region": interview.region.as_str(),
        "key_version": interview.key_version,
        "media_kind": seg.kind.as_str(),
        "start_ms": seg.start_ns / 1_000_000,
        "end_ms": seg.end_ns / 1_000_000,
        "starts_on_keyframe": seg.starts_on_keyframe,
        "final": seg.is_last,
        "consent_scopes": scopes,
    })
}
