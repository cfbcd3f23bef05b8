//! Cuts the remuxed Matroska/WebM byte stream into pieces at cluster boundaries, by media time.
//!
//! Pure byte logic with no GStreamer in it, so it is unit tested on its own (the gst-plugins-rs
//! habit). The muxer starts a cluster on every video keyframe and at least every
//! `max-cluster-duration`, so cutting at the first cluster at or past the target duration keeps
//! every piece time-bounded whatever the keyframe pattern. The first piece is the recording's
//! header (EBML header, Segment start, Info, Tracks); every later piece is whole clusters.
//! Concatenating all pieces gives back the muxer's output byte for byte.

use super::piece::{Cuts, Piece, TrackSummary};

/// Why the byte stream is not Matroska as the muxer writes it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EbmlError {
    #[error("malformed EBML at byte {0}")]
    Malformed(u64),
    #[error("unexpected element {id:#x} of unknown size at byte {at}")]
    UnknownSize { id: u32, at: u64 },
}

pub(super) const ID_EBML: u32 = 0x1A45_DFA3;
pub(super) const ID_SEGMENT: u32 = 0x1853_8067;
pub(super) const ID_CLUSTER: u32 = 0x1F43_B675;
pub(super) const ID_INFO: u32 = 0x1549_A966;
pub(super) const ID_TRACKS: u32 = 0x1654_AE6B;
pub(super) const ID_TIMECODE_SCALE: u32 = 0x2A_D7B1;
pub(super) const ID_TRACK_ENTRY: u32 = 0xAE;
pub(super) const ID_TRACK_NUMBER: u32 = 0xD7;
const ID_TRACK_TYPE: u32 = 0x83;
const ID_DEFAULT_DURATION: u32 = 0x23_E383;
pub(super) const ID_CLUSTER_TIMECODE: u32 = 0xE7;
pub(super) const ID_SIMPLE_BLOCK: u32 = 0xA3;
pub(super) const ID_BLOCK_GROUP: u32 = 0xA0;
pub(super) const ID_BLOCK: u32 = 0xA1;
const ID_BLOCK_DURATION: u32 = 0x9B;
pub(super) const ID_REFERENCE_BLOCK: u32 = 0xFB;

/// Level-1 ids (children of Segment); seeing one ends a cluster of unknown size.
pub(super) const LEVEL1: [u32; 8] = [
    0x114D_9B74,
    ID_INFO,
    ID_TRACKS,
    ID_CLUSTER,
    0x1C53_BB6B,
    0x1254_C367,
    0x1941_A469,
    0x1043_A770,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Top,
    InSegment,
    InCluster { end: Option<u64> },
}

/// The incremental cutter: feed it the muxer's bytes, take finished pieces.
#[derive(Debug)]
pub struct Cutter {
    cuts: Cuts,
    pos: u64,
    level: Level,
    timecode_scale: u64,
    tracks: TrackSummary,
    default_durations: Vec<(u64, u64)>,
    cluster_start: u64,
    cluster_ns: Option<u64>,
}

impl Cutter {
    pub fn new(target_ns: u64) -> Cutter {
        Cutter {
            cuts: Cuts::new(target_ns),
            pos: 0,
            level: Level::Top,
            timecode_scale: 1_000_000,
            tracks: TrackSummary::default(),
            default_durations: Vec::new(),
            cluster_start: 0,
            cluster_ns: None,
        }
    }

    /// The tracks the header declared (known once the header piece is out).
    pub fn tracks(&self) -> &TrackSummary {
        &self.tracks
    }

    /// Muxed bytes not cut into a piece yet.
    pub fn pending_bytes(&self) -> usize {
        self.cuts.pending()
    }

    /// Appends muxer output and returns the pieces it completed.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Piece>, EbmlError> {
        self.cuts.extend(bytes);
        while self.step()? {}
        Ok(self.cuts.take_ready())
    }

    /// Ends the stream: whatever remains becomes the last piece. Returns the pieces completed.
    pub fn finish(self) -> Result<Vec<Piece>, EbmlError> {
        let has_video = !self.tracks.video_tracks.is_empty();
        Ok(self.cuts.finish(has_video))
    }

    /// Parses one element header (and body where needed). Returns false when more bytes are
    /// needed.
    fn step(&mut self) -> Result<bool, EbmlError> {
        if let Level::InCluster { end: Some(end) } = self.level
            && self.pos >= end
        {
            self.level = Level::InSegment;
        }
        if self.pos >= self.cuts.end() {
            // A skipped element's body has not fully arrived yet.
            return Ok(false);
        }
        let Some((id, size, hdr)) = read_element_header(self.cuts.from(self.pos), self.pos)? else {
            return Ok(false);
        };
        let body_at = self.pos + hdr as u64;
        match self.level {
            Level::Top => match id {
                ID_SEGMENT => {
                    self.level = Level::InSegment;
                    self.pos = body_at;
                }
                _ => {
                    let size = size.ok_or(EbmlError::UnknownSize { id, at: self.pos })?;
                    if id != ID_EBML && self.pos == 0 {
                        return Err(EbmlError::Malformed(0));
                    }
                    self.pos = body_at + size;
                }
            },
            Level::InSegment => {
                if id == ID_CLUSTER {
                    self.cluster_start = self.pos;
                    self.cluster_ns = None;
                    self.level = Level::InCluster {
                        end: size.map(|s| body_at + s),
                    };
                    self.pos = body_at;
                } else {
                    let size = size.ok_or(EbmlError::UnknownSize { id, at: self.pos })?;
                    if id == ID_INFO || id == ID_TRACKS {
                        if self.cuts.end() < body_at + size {
                            return Ok(false);
                        }
                        let body = self.cuts.from(body_at)[..size as usize].to_vec();
                        if id == ID_INFO {
                            self.parse_info(&body, body_at)?;
                        } else {
                            self.parse_tracks(&body, body_at)?;
                        }
                    }
                    self.pos = body_at + size;
                }
            }
            Level::InCluster { .. } => {
                if LEVEL1.contains(&id) {
                    self.level = Level::InSegment;
                    return Ok(true);
                }
                let size = size.ok_or(EbmlError::UnknownSize { id, at: self.pos })?;
                if self.cuts.end() < body_at + size {
                    return Ok(false);
                }
                let body = self.cuts.from(body_at)[..size as usize].to_vec();
                match id {
                    // Saturating: a stream's numbers are the sender's, and an absurd timecode
                    // must end as a time past every limit, not as a wrapped one.
                    ID_CLUSTER_TIMECODE => {
                        // One per cluster (Matroska's maxOccurs 1): a second would start the
                        // same cluster again, and could cut an empty piece at it.
                        if self.cluster_ns.is_some() {
                            return Err(EbmlError::Malformed(self.pos));
                        }
                        self.on_cluster_time(read_uint(&body).saturating_mul(self.timecode_scale))
                    }
                    ID_SIMPLE_BLOCK => {
                        let (track, rel, flags) = block_head(&body, body_at)?;
                        self.on_block(track, rel, flags & 0x80 != 0, None)?;
                    }
                    ID_BLOCK_GROUP => self.on_block_group(&body, body_at)?,
                    _ => {}
                }
                self.pos = body_at + size;
            }
        }
        Ok(true)
    }

    fn on_cluster_time(&mut self, ns: u64) {
        self.cluster_ns = Some(ns);
        let has_video = !self.tracks.video_tracks.is_empty();
        self.cuts.boundary(self.cluster_start, ns, has_video);
    }

    fn on_block(
        &mut self,
        track: u64,
        rel: i16,
        key: bool,
        duration: Option<u64>,
    ) -> Result<(), EbmlError> {
        let cluster_ns = self.cluster_ns.ok_or(EbmlError::Malformed(self.pos))?;
        let ts = (cluster_ns as i128 + rel as i128 * self.timecode_scale as i128)
            .clamp(0, u64::MAX as i128) as u64;
        let dur = duration
            .map(|d| d.saturating_mul(self.timecode_scale))
            .or_else(|| {
                self.default_durations
                    .iter()
                    .find(|(t, _)| *t == track)
                    .map(|(_, d)| *d)
            })
            .unwrap_or(0);
        let is_video = self.tracks.video_tracks.contains(&track);
        self.cuts
            .frame(ts.saturating_add(dur), is_video.then_some(key));
        Ok(())
    }

    fn on_block_group(&mut self, body: &[u8], at: u64) -> Result<(), EbmlError> {
        let mut block = None;
        let mut duration = None;
        let mut referenced = false;
        for (id, child, child_at) in children(body, at)? {
            match id {
                ID_BLOCK => block = Some(block_head(child, child_at)?),
                ID_BLOCK_DURATION => duration = Some(read_uint(child)),
                ID_REFERENCE_BLOCK => referenced = true,
                _ => {}
            }
        }
        let (track, rel, _) = block.ok_or(EbmlError::Malformed(at))?;
        self.on_block(track, rel, !referenced, duration)
    }

    fn parse_info(&mut self, body: &[u8], at: u64) -> Result<(), EbmlError> {
        for (id, child, _) in children(body, at)? {
            if id == ID_TIMECODE_SCALE {
                self.timecode_scale = read_uint(child).max(1);
            }
        }
        Ok(())
    }

    fn parse_tracks(&mut self, body: &[u8], at: u64) -> Result<(), EbmlError> {
        for (id, entry, entry_at) in children(body, at)? {
            if id != ID_TRACK_ENTRY {
                continue;
            }
            let (mut number, mut kind, mut default) = (0, 0, None);
            for (cid, c, _) in children(entry, entry_at)? {
                match cid {
                    ID_TRACK_NUMBER => number = read_uint(c),
                    ID_TRACK_TYPE => kind = read_uint(c),
                    ID_DEFAULT_DURATION => default = Some(read_uint(c)),
                    _ => {}
                }
            }
            match kind {
                1 => self.tracks.video_tracks.push(number),
                2 => self.tracks.audio_tracks.push(number),
                _ => {}
            }
            if let Some(d) = default {
                self.default_durations.push((number, d));
            }
        }
        Ok(())
    }
}

/// Where the Segment of a Matroska file that starts with `file` ends: its data's offset plus
/// its size. `None` when the file does not start with an EBML header and a Segment of known
/// size.
pub fn segment_end(file: &[u8]) -> Option<u64> {
    let (id, size, hdr) = read_element_header(file, 0).ok()??;
    let at = (hdr as u64).checked_add(size?).filter(|_| id == ID_EBML)?;
    let rest = file.get(usize::try_from(at).ok()?..)?;
    let (id, size, hdr) = read_element_header(rest, at).ok()??;
    (id == ID_SEGMENT).then_some(())?;
    (at + hdr as u64).checked_add(size?)
}

/// Reads an element id and size at the start of `b`. `None` when `b` is too short yet.
/// The size is `None` for "unknown size" (all ones).
pub(super) fn read_element_header(
    b: &[u8],
    at: u64,
) -> Result<Option<(u32, Option<u64>, usize)>, EbmlError> {
    let Some(&first) = b.first() else {
        return Ok(None);
    };
    let id_len = first.leading_zeros() as usize + 1;
    if id_len > 4 {
        return Err(EbmlError::Malformed(at));
    }
    if b.len() < id_len + 1 {
        return Ok(None);
    }
    let id = b[..id_len]
        .iter()
        .fold(0u32, |acc, &x| (acc << 8) | x as u32);
    let s0 = b[id_len];
    let size_len = s0.leading_zeros() as usize + 1;
    if size_len > 8 {
        return Err(EbmlError::Malformed(at));
    }
    if b.len() < id_len + size_len {
        return Ok(None);
    }
    let mask = if size_len == 8 { 0 } else { 0xFFu8 >> size_len };
    let mut v = (s0 & mask) as u64;
    for &x in &b[id_len + 1..id_len + size_len] {
        v = (v << 8) | x as u64;
    }
    let unknown = v == (1u64 << (7 * size_len)) - 1;
    Ok(Some((id, (!unknown).then_some(v), id_len + size_len)))
}

/// The children of a master element whose whole body is in `body`.
/// A child element: id, body, absolute offset of the body.
pub(super) type Child<'a> = (u32, &'a [u8], u64);

pub(super) fn children(body: &[u8], at: u64) -> Result<Vec<Child<'_>>, EbmlError> {
    let mut out = Vec::new();
    let mut p = 0usize;
    while p < body.len() {
        let here = at + p as u64;
        let (id, size, hdr) =
            read_element_header(&body[p..], here)?.ok_or(EbmlError::Malformed(here))?;
        let size = size.ok_or(EbmlError::UnknownSize { id, at: here })? as usize;
        let start = p + hdr;
        let end = start
            .checked_add(size)
            .filter(|&e| e <= body.len())
            .ok_or(EbmlError::Malformed(here))?;
        out.push((id, &body[start..end], at + start as u64));
        p = end;
    }
    Ok(out)
}

pub(super) fn read_uint(b: &[u8]) -> u64 {
    b.iter().take(8).fold(0u64, |acc, &x| (acc << 8) | x as u64)
}

/// Track number (a vint), relative timecode and flags of a (Simple)Block.
fn block_head(b: &[u8], at: u64) -> Result<(u64, i16, u8), EbmlError> {
    let first = *b.first().ok_or(EbmlError::Malformed(at))?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 || b.len() < len + 3 {
        return Err(EbmlError::Malformed(at));
    }
    let mask = if len == 8 { 0 } else { 0xFFu8 >> len };
    let track = b[1..len]
        .iter()
        .fold((first & mask) as u64, |acc, &x| (acc << 8) | x as u64);
    let rel = i16::from_be_bytes([b[len], b[len + 1]]);
    Ok((track, rel, b[len + 2]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::PieceKind;

    /// A tiny hand-built stream: header with one video track, clusters every second, only the
    /// first block of the whole stream a keyframe.
    fn element(id: &[u8], body: &[u8]) -> Vec<u8> {
        let mut v = id.to_vec();
        v.push(0x01); // an 8-byte size: marker byte, then 7 bytes of length
        v.extend_from_slice(&(body.len() as u64).to_be_bytes()[1..]);
        v.extend_from_slice(body);
        v
    }

    fn stream(clusters: u64, key_every: u64) -> Vec<u8> {
        let mut s = element(
            &[0x1A, 0x45, 0xDF, 0xA3],
            &[0x42, 0x82, 0x84, b'w', b'e', b'b', b'm'],
        );
        s.extend_from_slice(&[
            0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        let entry = [
            element(&[0xD7], &[1]),
            element(&[0x83], &[1]),
            element(&[0x86], b"V_VP8"),
        ]
        .concat();
        s.extend(element(
            &[0x16, 0x54, 0xAE, 0x6B],
            &element(&[0xAE], &entry),
        ));
        for c in 0..clusters {
            s.extend_from_slice(&[
                0x1F, 0x43, 0xB6, 0x75, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
            ]);
            s.extend(element(&[0xE7], &(c * 1000).to_be_bytes()));
            for f in 0..10u16 {
                let key = key_every > 0 && (c * 10 + f as u64).is_multiple_of(key_every);
                let mut block = vec![0x81];
                block.extend_from_slice(&(f * 100).to_be_bytes());
                block.push(if key { 0x80 } else { 0 });
                block.extend_from_slice(&[0xAB; 50]);
                s.extend(element(&[0xA3], &block));
            }
        }
        s
    }

    fn cut_all(bytes: &[u8], step: usize, target_s: u64) -> Vec<Piece> {
        let mut c = Cutter::new(target_s * 1_000_000_000);
        let mut out = Vec::new();
        for chunk in bytes.chunks(step) {
            out.extend(c.push(chunk).unwrap());
        }
        out.extend(c.finish().unwrap());
        out
    }

    #[test]
    fn every_cluster_is_marked_where_it_starts_with_its_time_and_keyframe() {
        // Ten 1 s clusters, a keyframe every 30 frames: clusters 0, 3, 6 and 9 start on one.
        for step in [1usize, 333, 100_000] {
            let pieces = cut_all(&stream(10, 30), step, 4);
            assert!(pieces[0].clusters.is_empty(), "the header has no cluster");
            let mut seen = Vec::new();
            for p in &pieces[1..] {
                assert_eq!(p.clusters.first().map(|c| c.offset), Some(0));
                for c in &p.clusters {
                    let at = c.offset as usize;
                    assert_eq!(
                        &p.bytes[at..at + 4],
                        &[0x1F, 0x43, 0xB6, 0x75],
                        "step {step}"
                    );
                    seen.push((c.time_ns / 1_000_000_000, c.keyframe));
                }
            }
            let expected: Vec<(u64, bool)> = (0..10).map(|c| (c, c % 3 == 0)).collect();
            assert_eq!(seen, expected, "step {step}");
        }
    }

    #[test]
    fn pieces_rejoin_to_the_input_byte_for_byte() {
        let s = stream(10, 30);
        for step in [1, 7, 4096, s.len()] {
            let pieces = cut_all(&s, step, 4);
            assert_eq!(
                pieces
                    .iter()
                    .flat_map(|p| p.bytes.clone())
                    .collect::<Vec<_>>(),
                s,
                "step {step}"
            );
        }
    }

    #[test]
    fn pieces_are_time_bounded_when_only_the_first_frame_is_a_keyframe() {
        let pieces = cut_all(&stream(10, 1_000), 333, 4);
        assert_eq!(pieces[0].kind, PieceKind::Header);
        let media: Vec<_> = pieces[1..]
            .iter()
            .map(|p| (p.start_ns / 1_000_000, p.end_ns / 1_000_000))
            .collect();
        assert_eq!(media, vec![(0, 4000), (4000, 8000), (8000, 9900)]);
        let keys: Vec<bool> = pieces[1..].iter().map(|p| p.starts_on_keyframe).collect();
        assert_eq!(keys, vec![true, false, false]);
    }

    #[test]
    fn a_stream_with_no_cluster_yields_only_its_header() {
        let s = stream(0, 1);
        let pieces = cut_all(&s, 5, 4);
        assert_eq!(pieces.len(), 1);
        assert_eq!(pieces[0].kind, PieceKind::Header);
    }

    #[test]
    fn bytes_that_are_not_ebml_are_refused() {
        let mut c = Cutter::new(4_000_000_000);
        assert_eq!(
            c.push(b"GET / HTTP/1.1\r\n\r\n").unwrap_err(),
            EbmlError::Malformed(0)
        );
        let mut c = Cutter::new(4_000_000_000);
        assert_eq!(c.push(&[0u8; 64]).unwrap_err(), EbmlError::Malformed(0));
    }
}

/// Watches the front-end's own Matroska/WebM bytes (before the pipeline) to tell, when the
/// stream ends, whether it ended on an element boundary. A file cut in the middle of a block
/// demuxes "cleanly" up to the cut, so without this a truncated upload would pass for whole.
#[derive(Debug, Default)]
pub struct InputScan {
    carry: Vec<u8>,
    skip: u64,
    at: u64,
    gave_up: bool,
}

impl InputScan {
    pub fn push(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && !self.gave_up {
            if self.skip > 0 {
                let n = (self.skip.min(bytes.len() as u64)) as usize;
                self.skip -= n as u64;
                self.at += n as u64;
                bytes = &bytes[n..];
                continue;
            }
            let take = bytes.len().min(12 - self.carry.len().min(12));
            self.carry.extend_from_slice(&bytes[..take]);
            match read_element_header(&self.carry, self.at) {
                Ok(Some((id, size, hdr))) => {
                    // Only the header bytes are consumed from what was just added.
                    let used_from_new = hdr - (self.carry.len() - take);
                    bytes = &bytes[used_from_new..];
                    self.at += hdr as u64;
                    self.carry.clear();
                    match (id, size) {
                        (ID_SEGMENT | ID_CLUSTER, _) => {}
                        (_, Some(size)) => self.skip = size,
                        (_, None) => self.gave_up = true,
                    }
                }
                Ok(None) => bytes = &bytes[take..],
                Err(_) => self.gave_up = true,
            }
        }
    }

    /// `Some(why)` when the bytes so far end inside an element.
    pub fn incomplete(&self) -> Option<String> {
        if self.gave_up {
            return None;
        }
        if self.skip > 0 {
            return Some(format!(
                "the stream ends {} bytes short of the end of the element it was in",
                self.skip
            ));
        }
        if !self.carry.is_empty() {
            return Some("the stream ends inside an element header".into());
        }
        None
    }
}

#[cfg(test)]
mod scan_tests {
    use super::*;

    #[test]
    fn a_whole_stream_scans_complete_and_a_cut_one_does_not() {
        let whole = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/interview-vp8-opus.webm"
        ))
        .unwrap();
        for step in [1usize, 13, 4096] {
            let mut s = InputScan::default();
            whole.chunks(step).for_each(|c| s.push(c));
            assert_eq!(s.incomplete(), None, "step {step}");
        }
        let cut = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/truncated-mid-cluster.webm"
        ))
        .unwrap();
        let mut s = InputScan::default();
        cut.chunks(1000).for_each(|c| s.push(c));
        assert!(s.incomplete().is_some());
    }
}
