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
    let bytes = read("chromium-mediarecorder.webm");
    let meta: serde_json::Value =
        serde_json::from_slice(&read("chromium-mediarecorder.chunks.json")).unwrap();
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
