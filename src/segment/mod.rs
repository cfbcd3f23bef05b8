//! Segmenting: the only module that uses GStreamer. It loads the pipeline descriptions of
//! `pipelines/`, runs one pipeline per interview that remuxes the front-end's bytes without
//! decoding them, and cuts the muxed stream (Matroska/WebM at clusters, fragmented MP4 at
//! fragments) into time-bounded [`PlainSegment`]s.
//!
//! Plain segments live only in memory; the capture session hands each one to `seal` at once.

mod cut;
mod direct;
mod ebml;
mod finish;
mod mkv_finish;
mod mp4;
mod mp4_finish;
mod piece;
mod pipeline;
mod profile;
mod tap;
mod webrtc;
mod whip;
mod whip_publisher;

pub use cut::{Container, CutError, Cutter, InputScan};
pub use direct::Remuxer as DirectRemuxer;
pub use ebml::{EbmlError, segment_end};
pub use finish::{FinishError, FinishedEnds, MediaSpan, finish};
pub use mp4::Mp4Error;
pub use piece::{ClusterMark, Piece, PieceKind, TrackSummary};
pub use pipeline::{Segmenter, SegmenterEvent, SegmenterInput, remux_only};
pub use profile::{PipelineSource, Profile, Profiles, bare_content_type, sniff_content_type};
pub use tap::{AudioTap, TAP_RATE};
pub use webrtc::IceSettings;
pub use whip::{Answer, Session as WhipSession, WhipDescription, check_offer};
pub use whip_publisher::{Publisher as WhipPublisher, Source as WhipSource};

pub use crate::vocab::MediaKind;

/// A cut of the recording, still in plaintext. Only `seal` turns it into something storable.
#[derive(Debug)]
pub struct PlainSegment {
    pub index: u32,
    pub kind: MediaKind,
    pub bytes: Vec<u8>,
    pub start_ns: u64,
    pub end_ns: u64,
    pub starts_on_keyframe: bool,
    /// The last segment of the recording (the stream ended cleanly or was cut off).
    pub is_last: bool,
    /// Where each cluster or fragment in it starts (none in the header).
    pub clusters: Vec<ClusterMark>,
}

/// Why media could not be segmented.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("GStreamer could not start: {0}")]
    Init(String),
    #[error("pipeline description {file}: {why}")]
    Profile { file: String, why: String },
    #[error("content type `{0}` is not accepted by any ingest profile")]
    UnsupportedContentType(String),
    #[error("codec `{codec}` is not allowed by the `{profile}` profile (allowed: {allowed})")]
    CodecNotAllowed {
        codec: String,
        profile: String,
        allowed: String,
    },
    #[error(
        "a segment gathered more than {limit} bytes without reaching a cut: the stream's media \
         time does not advance as its bytes do"
    )]
    SegmentTooLarge { limit: u64 },
    #[error("the WHIP offer cannot be answered: {0}")]
    BadOffer(String),
    #[error("media could not be read: {0}")]
    Unreadable(String),
    #[error("the media pipeline stopped: {0}")]
    Pipeline(String),
}

/// The codec a caps name stands for (what profiles list), for the recording's status;
/// `audio/mpeg` is AAC here (GStreamer's MP3 and AAC share the name: `pipeline` tells them
/// apart by `mpegversion`).
fn codec_of_caps(name: &str) -> Option<crate::vocab::Codec> {
    use crate::vocab::Codec;
    Some(match name {
        "video/x-vp8" => Codec::Vp8,
        "video/x-vp9" => Codec::Vp9,
        "video/x-av1" => Codec::Av1,
        "video/x-h264" => Codec::H264,
        "video/x-h265" => Codec::H265,
        "audio/x-opus" => Codec::Opus,
        "audio/x-raw" => Codec::Pcm,
        "audio/mpeg" => Codec::Aac,
        _ => return None,
    })
}

fn init_gstreamer() -> Result<(), SegmentError> {
    gstreamer::init().map_err(|e| SegmentError::Init(e.to_string()))
}
