//! Where the checked-in fixtures and pipeline descriptions are, and how to read them.

use std::path::{Path, PathBuf};

/// The project's folder (where `fixtures/` and `pipelines/` live).
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `fixtures/<name>`; `name` may name a subfolder (`analysis/tone-220hz.webm`).
pub fn path(name: &str) -> PathBuf {
    root().join("fixtures").join(name)
}

/// The bytes of `fixtures/<name>`.
pub fn read(name: &str) -> Vec<u8> {
    std::fs::read(path(name)).unwrap()
}

/// The pipeline descriptions every test config points at.
pub fn pipelines() -> PathBuf {
    root().join("pipelines")
}

/// The Chromium recording cut into the very chunks MediaRecorder produced.
pub fn browser_chunks() -> Vec<Vec<u8>> {
    recorded_chunks("chromium-mediarecorder.webm")
}

/// A browser recording `fixtures/<name>` cut into the very chunks MediaRecorder produced, as
/// listed in its `<stem>.chunks.json`.
pub fn recorded_chunks(name: &str) -> Vec<Vec<u8>> {
    let bytes = read(name);
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    let meta: serde_json::Value =
        serde_json::from_slice(&read(&format!("{stem}.chunks.json"))).unwrap();
    let mut at = 0;
    let chunks: Vec<Vec<u8>> = meta["chunk_lengths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let n = n.as_u64().unwrap() as usize;
            at += n;
            bytes[at - n..at].to_vec()
        })
        .collect();
    assert_eq!(at, bytes.len());
    chunks
}
