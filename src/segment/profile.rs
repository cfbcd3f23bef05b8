//! Ingest profiles: the GStreamer pipeline descriptions in `pipelines/`, loaded at start and
//! chosen by the content type a front-end declares.

use std::path::Path;

use serde::Deserialize;

use super::SegmentError;

/// One `pipelines/*.toml` file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The file's stem (`webm`, `audio`); set by the loader.
    #[serde(skip)]
    pub name: String,
    /// One line for operators.
    pub description: String,
    /// Declared content types (without parameters) that select this profile.
    pub content_types: Vec<String>,
    /// Caps names of the elementary streams this profile accepts; any other stream is refused.
    pub allowed_codecs: Vec<String>,
    /// Content type of the rebuilt recording.
    pub output_content_type: String,
    /// The pipeline, in `gst-launch` syntax, with elements named `src`, `demux`, `mux`, `sink`.
    pub pipeline: String,
    /// The branch put between each accepted stream of `demux` and `mux`.
    pub stream: String,
}

/// All profiles, loaded once.
#[derive(Debug, Clone)]
pub struct Profiles {
    list: Vec<Profile>,
}

impl Profiles {
    /// Loads every `*.toml` in `dir` and checks that each parses as a GStreamer pipeline with the
    /// elements kiroku needs, so a broken description fails at start, not mid-interview.
    pub fn load(dir: &Path) -> Result<Profiles, SegmentError> {
        super::init_gstreamer()?;
        let bad = |file: &Path, why: String| SegmentError::Profile {
            file: file.display().to_string(),
            why,
        };
        let entries = std::fs::read_dir(dir).map_err(|e| bad(dir, e.to_string()))?;
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        let mut list = Vec::new();
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|e| bad(&path, e.to_string()))?;
            let mut p: Profile = toml::from_str(&text).map_err(|e| bad(&path, e.to_string()))?;
            p.name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("profile")
                .to_string();
            super::pipeline::check_description(&p).map_err(|why| bad(&path, why))?;
            list.push(p);
        }
        if list.is_empty() {
            return Err(bad(dir, "no *.toml pipeline descriptions found".into()));
        }
        Ok(Profiles { list })
    }

    /// The profile for a declared content type (parameters such as `;codecs=vp8` ignored).
    pub fn for_content_type(&self, content_type: &str) -> Result<&Profile, SegmentError> {
        let bare = bare_content_type(content_type);
        self.list
            .iter()
            .find(|p| p.content_types.contains(&bare))
            .ok_or_else(|| SegmentError::UnsupportedContentType(bare.chars().take(80).collect()))
    }

    pub fn by_name(&self, name: &str) -> Option<&Profile> {
        self.list.iter().find(|p| p.name == name)
    }
}

/// A content type without its parameters, lowercased: `Video/WebM; codecs=vp8` → `video/webm`.
pub fn bare_content_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Guesses a content type from a file's first bytes, for `kiroku ingest FILE`.
pub fn sniff_content_type(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        // WebM and Matroska share the magic; audio-only WebM is told apart by its tracks later.
        let window = &head[..head.len().min(4096)];
        let has_video = window.windows(5).any(|w| w == b"V_VP8" || w == b"V_VP9");
        return Some(if has_video || !window.windows(6).any(|w| w == b"A_OPUS") {
            "video/webm"
        } else {
            "audio/webm"
        });
    }
    if head.starts_with(b"OggS") {
        return Some("audio/ogg");
    }
    if head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WAVE" {
        return Some("audio/wav");
    }
    None
}
