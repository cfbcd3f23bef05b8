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

/// The muxer's bytes not cut yet, addressed by their offset in the whole stream, and the
/// pieces cut so far: the bookkeeping both cutters share.
#[derive(Debug, Default)]
pub(super) struct Uncut {
    buf: Vec<u8>,
    /// Offset of `buf[0]` in the stream.
    base: u64,
    ready: Vec<Piece>,
}

impl Uncut {
    pub(super) fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The stream offset just past the last byte received.
    pub(super) fn end(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// The bytes received from stream offset `abs` on (not cut yet).
    pub(super) fn from(&self, abs: u64) -> &[u8] {
        &self.buf[(abs - self.base) as usize..]
    }

    /// Moves the bytes before stream offset `upto` (all of them when `None`) into a piece.
    pub(super) fn cut(
        &mut self,
        upto: Option<u64>,
        kind: PieceKind,
        start_ns: u64,
        end_ns: u64,
        starts_on_keyframe: bool,
    ) {
        let len = upto
            .map(|u| (u - self.base) as usize)
            .unwrap_or(self.buf.len());
        let bytes: Vec<u8> = self.buf.drain(..len).collect();
        self.base += len as u64;
        self.ready.push(Piece {
            kind,
            bytes,
            start_ns,
            end_ns,
            starts_on_keyframe,
        });
    }

    /// The pieces cut since the last call.
    pub(super) fn take_ready(&mut self) -> Vec<Piece> {
        std::mem::take(&mut self.ready)
    }
}
