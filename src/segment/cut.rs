//! Which container a stream is in, and the cutter and input scan for it: one place that turns
//! a content type into Matroska or MP4 byte logic, so the pipeline and the capture session
//! treat every container alike.

use super::piece::{Piece, TrackSummary};
use super::{ebml, mp4};

/// The containers kiroku reads from front-ends and writes as recordings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Container {
    /// Matroska and its WebM subset, cut at clusters.
    #[default]
    Matroska,
    /// Fragmented MP4 (ISO BMFF, CMAF), cut at fragments.
    Mp4,
}

impl Container {
    /// The container of a content type (parameters ignored), if kiroku can cut or scan it.
    pub fn of(content_type: &str) -> Option<Container> {
        match super::bare_content_type(content_type).as_str() {
            "video/webm" | "audio/webm" | "video/x-matroska" | "audio/x-matroska" => {
                Some(Container::Matroska)
            }
            "video/mp4" | "audio/mp4" => Some(Container::Mp4),
            _ => None,
        }
    }

    /// The GStreamer demuxer that reads a recording in this container back.
    pub fn demuxer(self) -> &'static str {
        match self {
            Container::Matroska => "matroskademux",
            Container::Mp4 => "qtdemux",
        }
    }
}

/// Why the muxer's output could not be cut.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CutError {
    #[error(transparent)]
    Ebml(#[from] ebml::EbmlError),
    #[error(transparent)]
    Mp4(#[from] mp4::Mp4Error),
}

/// The cutter for the muxer's container.
#[derive(Debug)]
pub enum Cutter {
    Matroska(ebml::Cutter),
    Mp4(mp4::Cutter),
}

impl Cutter {
    pub fn new(container: Container, target_ns: u64) -> Cutter {
        match container {
            Container::Matroska => Cutter::Matroska(ebml::Cutter::new(target_ns)),
            Container::Mp4 => Cutter::Mp4(mp4::Cutter::new(target_ns)),
        }
    }

    /// Appends muxer output and returns the pieces it completed.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Piece>, CutError> {
        Ok(match self {
            Cutter::Matroska(c) => c.push(bytes)?,
            Cutter::Mp4(c) => c.push(bytes)?,
        })
    }

    /// Ends the stream: whatever remains becomes the last piece.
    pub fn finish(self) -> Result<Vec<Piece>, CutError> {
        Ok(match self {
            Cutter::Matroska(c) => c.finish()?,
            Cutter::Mp4(c) => c.finish()?,
        })
    }

    /// Muxed bytes not cut into a piece yet.
    pub fn pending_bytes(&self) -> usize {
        match self {
            Cutter::Matroska(c) => c.pending_bytes(),
            Cutter::Mp4(c) => c.pending_bytes(),
        }
    }

    /// The tracks the header declared (known once the header piece is out).
    pub fn tracks(&self) -> &TrackSummary {
        match self {
            Cutter::Matroska(c) => c.tracks(),
            Cutter::Mp4(c) => c.tracks(),
        }
    }
}

/// Watches a front-end's own bytes, before the pipeline, for what the demuxer does not report:
/// a stream that stops inside an element or box, and (MP4) a layout a live stream cannot have.
#[derive(Debug)]
pub enum InputScan {
    Matroska(ebml::InputScan),
    Mp4(mp4::InputScan),
}

impl InputScan {
    /// The scan for a declared content type, if kiroku knows its container.
    pub fn for_content_type(content_type: &str) -> Option<InputScan> {
        Container::of(content_type).map(|c| match c {
            Container::Matroska => InputScan::Matroska(ebml::InputScan::default()),
            Container::Mp4 => InputScan::Mp4(mp4::InputScan::default()),
        })
    }

    pub fn push(&mut self, bytes: &[u8]) {
        match self {
            InputScan::Matroska(s) => s.push(bytes),
            InputScan::Mp4(s) => s.push(bytes),
        }
    }

    /// `Some(why)` when the bytes so far end inside an element or box.
    pub fn incomplete(&self) -> Option<String> {
        match self {
            InputScan::Matroska(s) => s.incomplete(),
            InputScan::Mp4(s) => s.incomplete(),
        }
    }

    /// True once the bytes are known to be an MP4 that is not fragmented: its samples are
    /// indexed by a `moov` read whole, so it can be uploaded but not streamed live.
    pub fn is_unfragmented_mp4(&self) -> bool {
        matches!(self, InputScan::Mp4(s) if s.layout() == mp4::Layout::NotFragmented)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_name_their_container() {
        assert_eq!(
            Container::of("video/webm;codecs=vp8"),
            Some(Container::Matroska)
        );
        assert_eq!(Container::of("Video/X-Matroska"), Some(Container::Matroska));
        assert_eq!(
            Container::of("video/mp4; codecs=\"avc1.42E01E, mp4a.40.2\""),
            Some(Container::Mp4)
        );
        assert_eq!(Container::of("audio/mp4"), Some(Container::Mp4));
        assert_eq!(Container::of("audio/ogg"), None);
        assert_eq!(Container::of(""), None);
    }
}
