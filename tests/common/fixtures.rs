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

/// A fragmented MP4 `fixtures/<name>` cut as Safari's MediaRecorder sends it, one timeslice
/// per chunk: the init segment (everything before the first `moof`), then each `moof` with the
/// boxes up to the next `moof`.
pub fn mp4_timeslices(name: &str) -> Vec<Vec<u8>> {
    let bytes = read(name);
    let mut starts = vec![0];
    let mut at = 0usize;
    while at + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        assert!(size >= 8, "{name}: a box of size {size} at {at}");
        if &bytes[at + 4..at + 8] == b"moof" {
            starts.push(at);
        }
        at += size;
    }
    assert_eq!(at, bytes.len(), "{name} ends on a box boundary");
    starts.dedup();
    starts.push(bytes.len());
    let chunks: Vec<Vec<u8>> = starts
        .windows(2)
        .map(|w| bytes[w[0]..w[1]].to_vec())
        .collect();
    assert!(chunks.len() >= 3, "{name} is fragmented");
    chunks
}
