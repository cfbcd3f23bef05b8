//! Ingest profiles: the GStreamer pipeline descriptions, loaded at start and chosen by the
//! content type a front-end declares. The descriptions of the checkout's `pipelines/` folder
//! are shipped in the binary, so kiroku runs from any folder; an operator who sets
//! `pipelines_dir` has every description read from that folder instead.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Container, SegmentError};

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
    /// Content type of the rebuilt recording; it names the container the muxer writes.
    pub output_content_type: String,
    /// The container of `output_content_type`, which decides how the output is cut; set by
    /// the loader.
    #[serde(skip)]
    pub container: Container,
    /// The pipeline, in `gst-launch` syntax, with elements named `src`, `demux`, `mux`, `sink`.
    pub pipeline: String,
    /// The branch put between each accepted stream of `demux` and `mux`.
    pub stream: String,
    /// Branches used instead of `stream` for some codecs (caps name → branch), e.g. a parser
    /// that rewrites H.264's framing for the muxer. Parsers only: nothing is decoded.
    #[serde(default)]
    pub stream_by_codec: std::collections::BTreeMap<String, String>,
    /// Matroska/WebM input is re-clustered by kiroku's own remuxer (`segment/direct.rs`)
    /// instead of this pipeline, unless the operator turns it off (`[segment] direct_remux`).
    /// Only for profiles that take and write Matroska; the pipeline still describes the same
    /// remux and serves the bench baseline.
    #[serde(default)]
    pub direct: bool,
}

impl Profile {
    /// The branch put between a stream of `codec` and `mux`.
    pub fn stream_for(&self, codec: &str) -> &str {
        self.stream_by_codec.get(codec).unwrap_or(&self.stream)
    }
}

/// The descriptions shipped in the binary: `pipelines/*.toml`, by file name.
const BUILTIN_PROFILES: [(&str, &str); 4] = [
    ("audio.toml", include_str!("../../pipelines/audio.toml")),
    (
        "matroska.toml",
        include_str!("../../pipelines/matroska.toml"),
    ),
    ("mp4.toml", include_str!("../../pipelines/mp4.toml")),
    ("webm.toml", include_str!("../../pipelines/webm.toml")),
];
/// The audio tap shipped in the binary: `pipelines/analysis/audio-tap.toml`.
const BUILTIN_TAP: &str = include_str!("../../pipelines/analysis/audio-tap.toml");
/// Where the audio tap lives, relative to a pipelines folder.
const TAP_FILE: &str = "analysis/audio-tap.toml";

/// Where the pipeline descriptions come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipelineSource {
    /// The descriptions shipped in the binary (no `pipelines_dir` configured).
    Builtin,
    /// An operator's folder (`pipelines_dir`), read instead of the built-in descriptions.
    Dir(PathBuf),
}

/// One description's text and the name errors give it: its path, or `built-in pipelines/…`.
struct Description {
    origin: String,
    stem: String,
    text: String,
}

impl PipelineSource {
    /// The configured folder, else the built-in descriptions.
    pub fn new(configured: Option<&Path>) -> PipelineSource {
        match configured {
            Some(dir) => PipelineSource::Dir(dir.to_path_buf()),
            None => PipelineSource::Builtin,
        }
    }

    /// Every ingest profile description, sorted by file name.
    fn profiles(&self) -> Result<Vec<Description>, SegmentError> {
        let dir = match self {
            PipelineSource::Builtin => {
                return Ok(BUILTIN_PROFILES
                    .iter()
                    .map(|(file, text)| Description {
                        origin: format!("built-in pipelines/{file}"),
                        stem: file.trim_end_matches(".toml").to_string(),
                        text: text.to_string(),
                    })
                    .collect());
            }
            PipelineSource::Dir(dir) => dir,
        };
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
        if paths.is_empty() {
            return Err(bad(dir, "no *.toml pipeline descriptions found".into()));
        }
        paths
            .into_iter()
            .map(|path| {
                let text = std::fs::read_to_string(&path).map_err(|e| bad(&path, e.to_string()))?;
                Ok(Description {
                    origin: path.display().to_string(),
                    stem: path
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .unwrap_or("profile")
                        .to_string(),
                    text,
                })
            })
            .collect()
    }

    /// The analysis audio tap's description and the name errors give it.
    pub(super) fn tap(&self) -> Result<(String, String), SegmentError> {
        match self {
            PipelineSource::Builtin => Ok((
                format!("built-in pipelines/{TAP_FILE}"),
                BUILTIN_TAP.to_string(),
            )),
            PipelineSource::Dir(dir) => {
                let file = dir.join(TAP_FILE);
                let text = std::fs::read_to_string(&file).map_err(|e| SegmentError::Profile {
                    file: file.display().to_string(),
                    why: e.to_string(),
                })?;
                Ok((file.display().to_string(), text))
            }
        }
    }
}

/// All profiles, loaded once, and where they came from.
#[derive(Debug, Clone)]
pub struct Profiles {
    list: Vec<Profile>,
    source: PipelineSource,
}

impl Profiles {
    /// Loads every profile description of `source` and checks that each parses as a GStreamer
    /// pipeline with the elements kiroku needs, so a broken description fails at start, not
    /// mid-interview. Errors name the file.
    pub fn load(source: &PipelineSource) -> Result<Profiles, SegmentError> {
        super::init_gstreamer()?;
        let mut list = Vec::new();
        for d in source.profiles()? {
            let bad = |why: String| SegmentError::Profile {
                file: d.origin.clone(),
                why,
            };
            let mut p: Profile = toml::from_str(&d.text).map_err(|e| bad(e.to_string()))?;
            p.name = d.stem.clone();
            p.container = Container::of(&p.output_content_type).ok_or_else(|| {
                bad(format!(
                    "output_content_type `{}` is not a container kiroku can cut \
                     (WebM, Matroska or MP4)",
                    p.output_content_type
                ))
            })?;
            super::pipeline::check_description(&p).map_err(bad)?;
            list.push(p);
        }
        super::tap::check_description(source)?;
        Ok(Profiles {
            list,
            source: source.clone(),
        })
    }

    /// Where the descriptions came from (the audio tap is read from there too).
    pub fn source(&self) -> &PipelineSource {
        &self.source
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
        // H.264 cannot be in WebM: Chrome's H.264 recordings are Matroska (DocType `matroska`).
        if window.windows(15).any(|w| w == b"V_MPEG4/ISO/AVC") {
            return Some("video/x-matroska");
        }
        let has_video = window
            .windows(5)
            .any(|w| w == b"V_VP8" || w == b"V_VP9" || w == b"V_AV1");
        return Some(if has_video || !window.windows(6).any(|w| w == b"A_OPUS") {
            "video/webm"
        } else {
            "audio/webm"
        });
    }
    // ISO BMFF (MP4, Safari's and Chrome's MediaRecorder MP4): a `ftyp` box comes first.
    if head.len() >= 8 && &head[4..8] == b"ftyp" {
        return Some("video/mp4");
    }
    if head.starts_with(b"OggS") {
        return Some("audio/ogg");
    }
    if head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WAVE" {
        return Some("audio/wav");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ebml_with(codec_id: &[u8]) -> Vec<u8> {
        let mut head = vec![0x1A, 0x45, 0xDF, 0xA3, 0x86];
        head.extend_from_slice(codec_id);
        head
    }

    #[test]
    fn sniffing_tells_chrome_h264_matroska_from_webm() {
        assert_eq!(
            sniff_content_type(&ebml_with(b"V_MPEG4/ISO/AVC")),
            Some("video/x-matroska")
        );
        assert_eq!(sniff_content_type(&ebml_with(b"V_AV1")), Some("video/webm"));
        assert_eq!(sniff_content_type(&ebml_with(b"V_VP8")), Some("video/webm"));
        assert_eq!(
            sniff_content_type(&ebml_with(b"A_OPUS")),
            Some("audio/webm")
        );
    }

    #[test]
    fn sniffing_knows_mp4_by_its_ftyp() {
        assert_eq!(
            sniff_content_type(b"\0\0\0\x20ftypmp42\0\0\0\0"),
            Some("video/mp4")
        );
        assert_eq!(sniff_content_type(b"\0\0\0\x20moov"), None);
        assert_eq!(sniff_content_type(b"ftyp"), None);
    }

    #[test]
    fn a_codec_without_its_own_branch_gets_the_common_one() {
        let p: Profile = toml::from_str(include_str!("../../pipelines/matroska.toml")).unwrap();
        assert!(p.stream_for("video/x-h264").contains("h264parse"));
        assert_eq!(p.stream_for("audio/x-opus"), p.stream);
    }
}
