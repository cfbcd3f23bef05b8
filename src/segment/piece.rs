//! What the cutters hand out: pieces of the muxer's output, each a header or whole clusters or
//! fragments of media, with the media times and keyframe fact that tags and acknowledgements
//! need. Shared by the Matroska and MP4 cutters so the pipeline treats both alike.

/// What a piece holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceKind {
    /// The recording's header data (Matroska's EBML header, Info and Tracks; MP4's ftyp and
    /// moov), needed in front of any piece to play it.
    Header,
    /// Whole clusters (Matroska) or whole fragments, moof and mdat (MP4), of media.
    Media,
}

/// One cut of the stream.
#[derive(Debug, Clone)]
pub struct Piece {
    pub kind: PieceKind,
    pub bytes: Vec<u8>,
    /// Media time of the first cluster or fragment, in nanoseconds (0 for the header).
    pub start_ns: u64,
    /// Media time where the next piece starts, or the end of the last frame.
    pub end_ns: u64,
    /// The first video frame is a keyframe (always true for audio-only media), so the piece
    /// plays alone behind the header.
    pub starts_on_keyframe: bool,
}

/// Tracks seen in the header: which are video, and their kinds for tags. Matroska track
/// numbers or MP4 track ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackSummary {
    pub video_tracks: Vec<u64>,
    pub audio_tracks: Vec<u64>,
}
