//! Finished recordings: what a player needs to know a recording's duration and to seek in it
//! without reading it whole, written once capture has ended.
//!
//! A live recording is cut as it streams, so its header cannot know how long it will be:
//! Matroska's Segment is of unknown size with no Duration, SeekHead or Cues; MP4's `moov` has no
//! `mehd` and there is no `sidx`. When capture ends, kiroku knows everything: the live header
//! (segment 0), each media segment's length, and where each cluster or fragment starts with its
//! time and keyframe fact (the cutters' [`ClusterMark`]s, kept in the catalog). From those alone,
//! without opening the media again, [`finish`] writes a finished header that stands in for the
//! live one and, for Matroska, a trailer (Cues) that follows the last segment:
//!
//! ```text
//! finished header | media segment 1 | … | media segment n | trailer (Matroska Cues)
//! ```
//!
//! The media segments are the sealed segments as stored, byte for byte; only the ends change.
//! Pure byte logic, unit tested on its own.

use super::cut::Container;
use super::piece::ClusterMark;
use super::{ebml, mkv_finish, mp4, mp4_finish};

/// One media segment as the finished layout sees it: its length and its clusters.
#[derive(Debug, Clone, Copy)]
pub struct MediaSpan<'a> {
    pub len: u64,
    pub clusters: &'a [ClusterMark],
    /// Its first video frame is a keyframe (or it has no video).
    pub starts_on_keyframe: bool,
}

#[cfg(test)]
impl MediaSpan<'static> {
    /// A segment of `len` bytes with one cluster, at its start and on a keyframe.
    pub(super) fn one_keyframe_cluster(len: u64) -> MediaSpan<'static> {
        const AT_START: &[ClusterMark] = &[ClusterMark {
            offset: 0,
            time_ns: 0,
            keyframe: true,
        }];
        MediaSpan {
            len,
            clusters: AT_START,
            starts_on_keyframe: true,
        }
    }
}

/// The finished recording's ends: a header to serve instead of the live one, and what follows
/// the last segment (Matroska's Cues; nothing for MP4, whose `sidx` is in the header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedEnds {
    pub header: Vec<u8>,
    pub trailer: Option<Vec<u8>>,
    /// Seek points written (cue points, or `sidx` references).
    pub seek_points: usize,
}

/// Why a recording could not be finished (it is then served as recorded, live-style).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FinishError {
    #[error("the live header is not Matroska as kiroku writes it: {0}")]
    Ebml(#[from] ebml::EbmlError),
    #[error("the live header is not MP4 as kiroku writes it: {0}")]
    Mp4(#[from] mp4::Mp4Error),
    #[error("the live header lacks {0}")]
    Missing(&'static str),
    #[error("no cluster or fragment of the recording is indexed")]
    NoIndex,
    #[error("the recording is too large for its index ({0})")]
    TooLarge(&'static str),
}

/// Writes the finished ends of a recording in `container` from its live `header`, its media
/// segments in order, and its duration (the end of its last frame, in nanoseconds).
pub fn finish(
    container: Container,
    header: &[u8],
    media: &[MediaSpan],
    duration_ns: u64,
) -> Result<FinishedEnds, FinishError> {
    if media.iter().all(|m| m.clusters.is_empty()) {
        return Err(FinishError::NoIndex);
    }
    match container {
        Container::Matroska => mkv_finish::finish(header, media, duration_ns),
        Container::Mp4 => mp4_finish::finish(header, media, duration_ns),
    }
}

/// Each indexed cluster with its offset in the media (from the start of the first media
/// segment), in order.
pub(super) fn absolute_marks<'a>(
    media: &'a [MediaSpan],
) -> impl Iterator<Item = (u64, ClusterMark)> + 'a {
    media
        .iter()
        .scan(0u64, |at, m| {
            let base = *at;
            *at += m.len;
            Some(m.clusters.iter().map(move |c| (base + c.offset, *c)))
        })
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recording_without_a_cluster_index_is_not_finished() {
        // Segments stored before kiroku kept the index: served as recorded.
        let span = MediaSpan {
            len: 1_000,
            clusters: &[],
            starts_on_keyframe: true,
        };
        for container in [Container::Matroska, Container::Mp4] {
            assert_eq!(
                finish(container, b"anything", &[span, span], 4_000_000_000),
                Err(FinishError::NoIndex)
            );
        }
    }

    #[test]
    fn a_live_header_that_is_not_the_container_is_refused_by_name() {
        let span = MediaSpan::one_keyframe_cluster(10);
        let mkv = finish(Container::Matroska, b"GET / HTTP/1.1", &[span], 1);
        assert!(matches!(mkv, Err(FinishError::Ebml(_))), "{mkv:?}");
        let mp4 = finish(
            Container::Mp4,
            &[0, 0, 0, 8, b'f', b't', b'y', b'p'],
            &[span],
            1,
        );
        assert_eq!(mp4, Err(FinishError::Missing("a moov")));
        let empty = finish(Container::Matroska, &[], &[span], 1);
        assert!(matches!(empty, Err(FinishError::Ebml(_))), "{empty:?}");
    }
}
