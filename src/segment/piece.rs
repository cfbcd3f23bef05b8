//! What the cutters hand out: pieces of the muxer's output, each a header or whole clusters or
//! fragments of media, with the media times and keyframe fact that tags and acknowledgements
//! need, and where each cluster or fragment starts (the index a finished recording's Cues or
//! `sidx` is written from). Shared by the Matroska and MP4 cutters so the pipeline treats both
//! alike.

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
    /// Every cluster or fragment that starts in the piece, in order (none in the header).
    pub clusters: Vec<ClusterMark>,
}

/// Where one cluster (Matroska) or fragment (MP4) starts: its byte offset in its piece, its
/// media time, and whether its first video frame is a keyframe, so a player can start there
/// (always true for audio-only media). Kept in the catalog as a `[offset, time_ns, keyframe]`
/// triple per cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(from = "(u64, u64, bool)", into = "(u64, u64, bool)")]
pub struct ClusterMark {
    pub offset: u64,
    pub time_ns: u64,
    pub keyframe: bool,
}

impl From<(u64, u64, bool)> for ClusterMark {
    fn from((offset, time_ns, keyframe): (u64, u64, bool)) -> ClusterMark {
        ClusterMark {
            offset,
            time_ns,
            keyframe,
        }
    }
}

impl From<ClusterMark> for (u64, u64, bool) {
    fn from(m: ClusterMark) -> (u64, u64, bool) {
        (m.offset, m.time_ns, m.keyframe)
    }
}

/// A cluster or fragment of the open piece: its stream offset and time, and whether its first
/// video frame (once one came) is a keyframe.
#[derive(Debug)]
struct OpenCluster {
    at: u64,
    time_ns: u64,
    first_video_key: Option<bool>,
}

/// Tracks seen in the header: which are video, and their kinds for tags. Matroska track
/// numbers or MP4 track ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackSummary {
    pub video_tracks: Vec<u64>,
    pub audio_tracks: Vec<u64>,
}

/// A piece still open: where it starts and whether its first video frame is a keyframe.
#[derive(Debug)]
struct OpenPiece {
    start_ns: u64,
    first_video_key: Option<bool>,
}

/// What both cutters share: the muxer's bytes not cut yet (addressed by their offset in the
/// whole stream), the piece open, and the rule that cuts it: at the first cluster or fragment
/// at or past the target duration.
#[derive(Debug)]
pub(super) struct Cuts {
    buf: Vec<u8>,
    /// Offset of `buf[0]` in the stream.
    base: u64,
    ready: Vec<Piece>,
    target_ns: u64,
    header_done: bool,
    open: Option<OpenPiece>,
    /// The clusters or fragments of the open piece.
    clusters: Vec<OpenCluster>,
    /// The header declared a video track (known from the first cluster or fragment on).
    has_video: bool,
    media_end_ns: u64,
}

impl Cuts {
    pub(super) fn new(target_ns: u64) -> Cuts {
        Cuts {
            buf: Vec::new(),
            base: 0,
            ready: Vec::new(),
            target_ns,
            header_done: false,
            open: None,
            clusters: Vec::new(),
            has_video: false,
            media_end_ns: 0,
        }
    }

    pub(super) fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received and not cut into a piece yet.
    pub(super) fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The stream offset just past the last byte received.
    pub(super) fn end(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// The bytes received from stream offset `abs` on (not cut yet).
    pub(super) fn from(&self, abs: u64) -> &[u8] {
        &self.buf[(abs - self.base) as usize..]
    }

    /// A cluster or fragment starts at stream offset `at`, at media time `ns`. The first one
    /// ends the header; one at or past the target duration of the open piece ends that piece.
    pub(super) fn boundary(&mut self, at: u64, ns: u64, has_video: bool) {
        self.has_video = has_video;
        if !self.header_done {
            self.cut(Some(at), PieceKind::Header, 0, 0, false);
            self.header_done = true;
        }
        let opens_piece = match &self.open {
            Some(p) if ns.saturating_sub(p.start_ns) >= self.target_ns => {
                let (start, key) = (p.start_ns, Self::plays_alone(p, has_video));
                self.cut(Some(at), PieceKind::Media, start, ns, key);
                true
            }
            Some(_) => false,
            None => true,
        };
        if opens_piece {
            self.open = Some(OpenPiece {
                start_ns: ns,
                first_video_key: None,
            });
        }
        self.clusters.push(OpenCluster {
            at,
            time_ns: ns,
            first_video_key: None,
        });
    }

    /// A frame (or run of frames) of the open piece, ending at `end_ns`; `video_key` is
    /// whether it is a keyframe, for video.
    pub(super) fn frame(&mut self, end_ns: u64, video_key: Option<bool>) {
        self.media_end_ns = self.media_end_ns.max(end_ns);
        if let (Some(p), Some(key)) = (self.open.as_mut(), video_key)
            && p.first_video_key.is_none()
        {
            p.first_video_key = Some(key);
        }
        if let (Some(c), Some(key)) = (self.clusters.last_mut(), video_key)
            && c.first_video_key.is_none()
        {
            c.first_video_key = Some(key);
        }
    }

    /// The stream ended: whatever remains is the last piece (the header alone, if no cluster
    /// or fragment ever came). Returns the pieces not taken yet.
    pub(super) fn finish(mut self, has_video: bool) -> Vec<Piece> {
        if !self.header_done {
            if !self.buf.is_empty() {
                self.cut(None, PieceKind::Header, 0, 0, false);
            }
        } else if let Some(p) = self.open.take() {
            let key = Self::plays_alone(&p, has_video);
            let end = self.media_end_ns.max(p.start_ns);
            self.has_video = has_video;
            self.cut(None, PieceKind::Media, p.start_ns, end, key);
        }
        self.ready
    }

    /// The pieces cut since the last call.
    pub(super) fn take_ready(&mut self) -> Vec<Piece> {
        std::mem::take(&mut self.ready)
    }

    /// Whether a piece plays alone behind the header: its first video frame is a keyframe,
    /// or there is no video at all.
    fn plays_alone(p: &OpenPiece, has_video: bool) -> bool {
        p.first_video_key.unwrap_or(!has_video)
    }

    /// Moves the bytes before stream offset `upto` (all of them when `None`) into a piece.
    fn cut(
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
        let piece_at = self.base;
        self.base += len as u64;
        let has_video = self.has_video;
        let clusters = self
            .clusters
            .drain(..)
            .map(|c| ClusterMark {
                offset: c.at - piece_at,
                time_ns: c.time_ns,
                keyframe: c.first_video_key.unwrap_or(!has_video),
            })
            .collect();
        self.ready.push(Piece {
            kind,
            bytes,
            start_ns,
            end_ns,
            starts_on_keyframe,
            clusters,
        });
    }
}
