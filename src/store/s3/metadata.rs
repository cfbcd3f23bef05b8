//! Tags as S3 sees them: user metadata (`x-amz-meta-*`) on every object, and object tags
//! where the store implements tagging. Both within S3's size limits.

use std::collections::HashMap;

/// A segment's tags as S3 user metadata: `consent_scopes` → `x-amz-meta-consent-scopes`,
/// arrays joined by commas.
pub fn metadata(tags: &serde_json::Value) -> HashMap<String, String> {
    let mut out = HashMap::new();
    if let Some(o) = tags.as_object() {
        for (k, v) in o {
            let value = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| x.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            out.insert(k.replace('_', "-"), cap(value));
        }
    }
    out
}

/// S3 limits user metadata to 2 KB and tag values to 256 characters: a long list (a
/// candidate's many share scopes) is cut at a comma and marked, the full list staying in the
/// catalog and the sealed manifest.
fn cap(v: String) -> String {
    const MAX: usize = 240;
    if v.len() <= MAX {
        return v;
    }
    let cut = v[..MAX].rfind(',').unwrap_or(MAX);
    format!("{},...", &v[..cut])
}

/// At most ten S3 object tags (the service's limit), URL-encoded as PutObject wants them.
pub(super) fn object_tags(tags: &serde_json::Value) -> String {
    let mut m: Vec<(String, String)> = metadata(tags).into_iter().collect();
    m.sort();
    m.into_iter()
        .filter(|(k, _)| {
            [
                "kind",
                "candidate",
                "interview",
                "region",
                "key-version",
                "consent-scopes",
                "index",
                "media-kind",
            ]
            .contains(&k.as_str())
        })
        .take(10)
        .map(|(k, v)| {
            let v = v.replace(',', " ");
            format!("{}={}", url_encode(&k), url_encode(&v))
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_names_use_dashes_and_arrays_are_joined_by_commas() {
        let m = metadata(&serde_json::json!({
            "consent_scopes": ["record", "analyze"],
            "index": 3,
            "kind": "segment",
        }));
        assert_eq!(m["consent-scopes"], "record,analyze");
        assert_eq!(m["index"], "3");
        assert_eq!(m["kind"], "segment");
    }

    #[test]
    fn a_long_list_is_cut_at_a_comma_and_marked() {
        let scopes: Vec<String> = (0..100).map(|i| format!("share:recruiter{i}")).collect();
        let m = metadata(&serde_json::json!({ "consent_scopes": scopes }));
        let v = &m["consent-scopes"];
        assert!(v.len() <= 244, "{}", v.len());
        assert!(v.ends_with(",..."), "{v}");
        assert!(!v.trim_end_matches(",...").ends_with(','), "{v}");
    }

    #[test]
    fn object_tags_keep_only_the_known_keys_url_encoded() {
        let t = object_tags(&serde_json::json!({
            "kind": "segment",
            "consent_scopes": ["record", "analyze"],
            "secret_note": "never a tag",
        }));
        assert_eq!(t, "consent-scopes=record%20analyze&kind=segment");
    }
}
