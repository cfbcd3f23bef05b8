//! The finished ends of a Matroska/WebM recording: a header whose Segment has its size and
//! whose Info has a Duration, led by a SeekHead, and the Cues that follow the last cluster.
//!
//! The live header (EBML header, Segment of unknown size, Info, Tracks) is taken apart and put
//! together again: the EBML header and every level-1 element but SeekHead, Cues and Void are
//! kept as they are, Info gains its Duration. Every position (the SeekHead's, the Cues') is
//! written as an 8-byte integer, so sizes never depend on the positions they hold and the
//! layout is computed once, in order. One cue point per cluster that starts on a keyframe, on
//! the video track (the first audio track in audio-only recordings); Chromium, Firefox, FFmpeg
//! and GStreamer all seek by them.

use super::ebml::{
    Child, EbmlError, ID_CLUSTER, ID_EBML, ID_INFO, ID_SEGMENT, ID_TIMECODE_SCALE, ID_TRACK_ENTRY,
    ID_TRACK_NUMBER, ID_TRACKS, children, read_element_header, read_uint,
};
use super::finish::{FinishError, FinishedEnds, MediaSpan, absolute_marks};

const ID_SEEK_HEAD: u32 = 0x114D_9B74;
const ID_SEEK: u32 = 0x4DBB;
const ID_SEEK_ID: u32 = 0x53AB;
const ID_SEEK_POSITION: u32 = 0x53AC;
const ID_CUES: u32 = 0x1C53_BB6B;
const ID_CUE_POINT: u32 = 0xBB;
const ID_CUE_TIME: u32 = 0xB3;
const ID_CUE_TRACK_POSITIONS: u32 = 0xB7;
const ID_CUE_TRACK: u32 = 0xF7;
const ID_CUE_CLUSTER_POSITION: u32 = 0xF1;
const ID_DURATION: u32 = 0x4489;
const ID_TRACK_TYPE: u32 = 0x83;
const ID_VOID: u32 = 0xEC;
const ID_CRC32: u32 = 0xBF;
/// Largest size an 8-byte EBML size field holds (all ones means "unknown").
const MAX_SIZE: u64 = (1 << 56) - 2;

/// The live header taken apart.
struct LiveHeader<'a> {
    ebml: &'a [u8],
    info: Vec<Child<'a>>,
    tracks: &'a [u8],
    /// Level-1 elements kept as they are (Tags, Chapters, Attachments), whole.
    others: Vec<&'a [u8]>,
}

pub(super) fn finish(
    header: &[u8],
    media: &[MediaSpan],
    duration_ns: u64,
) -> Result<FinishedEnds, FinishError> {
    let live = take_apart(header)?;
    let scale = live
        .info
        .iter()
        .find(|(id, ..)| *id == ID_TIMECODE_SCALE)
        .map_or(1_000_000, |(_, b, _)| read_uint(b).max(1));
    let cue_track = cue_track(live.tracks)?;

    let mut info_body: Vec<u8> = Vec::new();
    for (id, body, _) in live.info.iter().filter(|(id, ..)| *id != ID_DURATION) {
        info_body.extend(element(*id, body));
    }
    info_body.extend(element(
        ID_DURATION,
        &(duration_ns as f64 / scale as f64).to_be_bytes(),
    ));
    let info = element(ID_INFO, &info_body);
    let tracks = element(ID_TRACKS, live.tracks);
    let others: Vec<u8> = live.others.concat();

    let media_len: u64 = media.iter().map(|m| m.len).sum();
    let has_cues = absolute_marks(media).any(|(_, m)| m.keyframe);
    let mut seeks = vec![(ID_INFO, 0), (ID_TRACKS, 0)];
    if has_cues {
        seeks.push((ID_CUES, 0));
    }
    // The SeekHead's size does not depend on the positions it holds (8 bytes each), so it is
    // sized with zeros first.
    let seek_head_len = seek_head(&seeks).len() as u64;
    let info_at = seek_head_len;
    let tracks_at = info_at + info.len() as u64;
    let clusters_at = tracks_at + tracks.len() as u64 + others.len() as u64;
    let cues_at = clusters_at + media_len;

    let mut cue_points: Vec<Vec<u8>> = Vec::new();
    for (at, mark) in absolute_marks(media).filter(|(_, m)| m.keyframe) {
        let positions = [
            element(ID_CUE_TRACK, &uint(cue_track)),
            element(ID_CUE_CLUSTER_POSITION, &(clusters_at + at).to_be_bytes()),
        ]
        .concat();
        let point = [
            element(ID_CUE_TIME, &uint(mark.time_ns / scale)),
            element(ID_CUE_TRACK_POSITIONS, &positions),
        ]
        .concat();
        cue_points.push(element(ID_CUE_POINT, &point));
    }
    let seek_points = cue_points.len();
    let cues = has_cues.then(|| element(ID_CUES, &cue_points.concat()));
    for (seek, at) in seeks.iter_mut().zip([info_at, tracks_at, cues_at]) {
        seek.1 = at;
    }
    let seek_head = seek_head(&seeks);
    debug_assert_eq!(seek_head.len() as u64, seek_head_len);

    let segment_len = cues_at + cues.as_ref().map_or(0, |c| c.len() as u64);
    if segment_len > MAX_SIZE {
        return Err(FinishError::TooLarge("Matroska Segment size"));
    }
    let mut out = live.ebml.to_vec();
    out.extend(id_bytes(ID_SEGMENT));
    out.push(0x01);
    out.extend(&segment_len.to_be_bytes()[1..]);
    out.extend(seek_head);
    out.extend(info);
    out.extend(tracks);
    out.extend(others);
    Ok(FinishedEnds {
        header: out,
        trailer: cues,
        seek_points,
    })
}

/// Splits the live header into its EBML header and the Segment's level-1 elements.
fn take_apart(header: &[u8]) -> Result<LiveHeader<'_>, FinishError> {
    let (id, size, hdr) = read_element_header(header, 0)?.ok_or(EbmlError::Malformed(0))?;
    let ebml_end = size
        .map(|s| hdr as u64 + s)
        .filter(|&e| id == ID_EBML && e <= header.len() as u64)
        .ok_or(EbmlError::Malformed(0))? as usize;
    let at = ebml_end as u64;
    let (id, _, seg_hdr) =
        read_element_header(&header[ebml_end..], at)?.ok_or(EbmlError::Malformed(at))?;
    if id != ID_SEGMENT {
        return Err(FinishError::Missing("a Segment"));
    }
    let body_at = ebml_end + seg_hdr;
    let mut live = LiveHeader {
        ebml: &header[..ebml_end],
        info: Vec::new(),
        tracks: &[],
        others: Vec::new(),
    };
    let (mut has_info, mut has_tracks) = (false, false);
    let mut p = body_at;
    while p < header.len() {
        let here = p as u64;
        let (id, size, hdr) =
            read_element_header(&header[p..], here)?.ok_or(EbmlError::Malformed(here))?;
        if id == ID_CLUSTER {
            break;
        }
        let size = size.ok_or(EbmlError::UnknownSize { id, at: here })?;
        let end = (p as u64 + hdr as u64)
            .checked_add(size)
            .filter(|&e| e <= header.len() as u64)
            .ok_or(EbmlError::Malformed(here))? as usize;
        let body = &header[p + hdr..end];
        match id {
            ID_INFO => {
                live.info = children(body, (p + hdr) as u64)?;
                has_info = true;
            }
            ID_TRACKS => {
                live.tracks = body;
                has_tracks = true;
            }
            ID_SEEK_HEAD | ID_CUES | ID_VOID | ID_CRC32 => {}
            _ => live.others.push(&header[p..end]),
        }
        p = end;
    }
    match (has_info, has_tracks) {
        (false, _) => Err(FinishError::Missing("Info")),
        (_, false) => Err(FinishError::Missing("Tracks")),
        _ => Ok(live),
    }
}

/// The track cue points name: the first video track, else the first track.
fn cue_track(tracks: &[u8]) -> Result<u64, FinishError> {
    let mut first = None;
    for (id, entry, at) in children(tracks, 0)? {
        if id != ID_TRACK_ENTRY {
            continue;
        }
        let (mut number, mut kind) = (None, 0);
        for (cid, c, _) in children(entry, at)? {
            match cid {
                ID_TRACK_NUMBER => number = Some(read_uint(c)),
                ID_TRACK_TYPE => kind = read_uint(c),
                _ => {}
            }
        }
        let Some(number) = number else { continue };
        if kind == 1 {
            return Ok(number);
        }
        first = first.or(Some(number));
    }
    first.ok_or(FinishError::Missing("a track"))
}

fn seek_head(entries: &[(u32, u64)]) -> Vec<u8> {
    let seeks: Vec<u8> = entries
        .iter()
        .flat_map(|&(id, at)| {
            let body = [
                element(ID_SEEK_ID, &id_bytes(id)),
                element(ID_SEEK_POSITION, &at.to_be_bytes()),
            ]
            .concat();
            element(ID_SEEK, &body)
        })
        .collect();
    element(ID_SEEK_HEAD, &seeks)
}

/// An element: its id, its size (as short a vint as holds it), its body.
fn element(id: u32, body: &[u8]) -> Vec<u8> {
    let mut out = id_bytes(id);
    let len = body.len() as u64;
    let width = (1..=8).find(|w| len < (1u64 << (7 * w)) - 1).unwrap_or(8);
    let marked = len | (1u64 << (7 * width));
    out.extend(&marked.to_be_bytes()[8 - width..]);
    out.extend_from_slice(body);
    out
}

/// An element id's bytes (ids carry their own length marker).
fn id_bytes(id: u32) -> Vec<u8> {
    let b = id.to_be_bytes();
    let skip = b.iter().take_while(|&&x| x == 0).count().min(3);
    b[skip..].to_vec()
}

/// An unsigned integer's body: as few bytes as hold it, at least one.
fn uint(v: u64) -> Vec<u8> {
    let b = v.to_be_bytes();
    let skip = b.iter().take_while(|&&x| x == 0).count().min(7);
    b[skip..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::ClusterMark;
    use crate::segment::cut::Cutter;
    use crate::segment::piece::PieceKind;

    #[test]
    fn elements_have_the_lengths_they_claim() {
        for len in [0usize, 1, 126, 127, 16_382, 16_383, 70_000] {
            let e = element(ID_CUES, &vec![0; len]);
            let (id, size, hdr) = read_element_header(&e, 0).unwrap().unwrap();
            assert_eq!((id, size), (ID_CUES, Some(len as u64)));
            assert_eq!(hdr + len, e.len());
        }
        assert_eq!(id_bytes(0xEC), vec![0xEC]);
        assert_eq!(id_bytes(ID_SEGMENT).len(), 4);
        assert_eq!(uint(0), vec![0]);
        assert_eq!(uint(300), vec![1, 44]);
    }

    /// A media piece's bytes and cluster marks.
    type MediaPiece = (Vec<u8>, Vec<ClusterMark>);

    /// The fixture as kiroku's own remuxer and cutter make it: live header and media pieces.
    fn cut_fixture(name: &str) -> (Vec<u8>, Vec<MediaPiece>) {
        let input =
            std::fs::read(format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let mut remux = crate::segment::direct::Remuxer::new(
            "webm",
            &[
                "video/x-vp8".into(),
                "audio/x-opus".into(),
                "video/x-vp9".into(),
            ],
        );
        let out = remux.push(&input).unwrap();
        let mut cutter = Cutter::new(crate::segment::Container::Matroska, 2_000_000_000);
        let mut pieces = cutter.push(&out).unwrap();
        pieces.extend(cutter.finish().unwrap());
        assert_eq!(pieces[0].kind, PieceKind::Header);
        let header = pieces[0].bytes.clone();
        let media = pieces[1..]
            .iter()
            .map(|p| (p.bytes.clone(), p.clusters.clone()))
            .collect();
        (header, media)
    }

    #[test]
    fn the_finished_header_declares_the_segment_and_the_cues_point_at_keyframe_clusters() {
        let (header, media) = cut_fixture("interview-vp8-opus.webm");
        let spans: Vec<MediaSpan> = media
            .iter()
            .map(|(b, c)| MediaSpan {
                len: b.len() as u64,
                clusters: c,
                starts_on_keyframe: c.first().is_some_and(|c| c.keyframe),
            })
            .collect();
        let ends = finish(&header, &spans, 10_000_000_000).unwrap();
        let cues = ends.trailer.clone().unwrap();
        let file: Vec<u8> = [
            ends.header.clone(),
            media.iter().flat_map(|(b, _)| b.clone()).collect(),
            cues.clone(),
        ]
        .concat();
        // The Segment's size runs exactly to the end of the file.
        let (_, ebml_size, ebml_hdr) = read_element_header(&file, 0).unwrap().unwrap();
        let seg_at = ebml_hdr + ebml_size.unwrap() as usize;
        let (id, size, hdr) = read_element_header(&file[seg_at..], 0).unwrap().unwrap();
        assert_eq!(id, ID_SEGMENT);
        let data_at = seg_at + hdr;
        assert_eq!(data_at as u64 + size.unwrap(), file.len() as u64);
        // Every cue point names a cluster that starts where it says.
        let (_, cues_size, cues_hdr) = read_element_header(&cues, 0).unwrap().unwrap();
        let body = &cues[cues_hdr..cues_hdr + cues_size.unwrap() as usize];
        let mut n = 0;
        for (id, point, at) in children(body, 0).unwrap() {
            assert_eq!(id, ID_CUE_POINT);
            let parts = children(point, at).unwrap();
            let (_, tp, tp_at) = parts
                .iter()
                .find(|(i, ..)| *i == ID_CUE_TRACK_POSITIONS)
                .unwrap();
            let pos = children(tp, *tp_at).unwrap();
            let (_, p, _) = pos
                .iter()
                .find(|(i, ..)| *i == ID_CUE_CLUSTER_POSITION)
                .unwrap();
            let cluster_at = data_at + read_uint(p) as usize;
            let (cid, ..) = read_element_header(&file[cluster_at..], 0)
                .unwrap()
                .unwrap();
            assert_eq!(cid, ID_CLUSTER, "cue point {n} names a cluster");
            n += 1;
        }
        assert_eq!(n, ends.seek_points);
        // One per keyframe cluster: every segment but the audio tail starts on one.
        let keyframes = media
            .iter()
            .flat_map(|(_, c)| c)
            .filter(|c| c.keyframe)
            .count();
        assert_eq!(n, keyframes);
        let led = media
            .iter()
            .filter(|(_, c)| c.first().is_some_and(|c| c.keyframe))
            .count();
        assert!(
            led + 1 >= media.len() && led >= 4,
            "{led} of {} segments",
            media.len()
        );
    }
}
