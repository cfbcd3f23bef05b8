//! Cuts the remuxed fragmented MP4 byte stream into pieces at fragment (`moof`) boundaries, by
//! media time, and watches a front-end's own MP4 bytes for the faults a live stream can carry.
//!
//! Pure byte logic with no GStreamer in it, like the Matroska cutter beside it. `mp4mux` in
//! fragmented mode starts a fragment on every video keyframe and at least every
//! `fragment-duration`, one track per fragment, so cutting at the first fragment at or past the
//! target duration keeps every piece time-bounded whatever the keyframe pattern (Safari sends
//! few keyframes). The first piece is the init segment (`ftyp`, `moov`); every later piece is
//! whole `moof` + `mdat` pairs. Concatenating all pieces gives back the muxer's output byte for
//! byte, a playable fragmented MP4, and a piece whose first video sample is a sync sample plays
//! alone behind the init segment (the muxer writes no absolute data offsets).

use super::piece::{Cuts, Piece, TrackSummary};

/// Why the byte stream is not fragmented MP4 as the muxer writes it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Mp4Error {
    #[error("malformed MP4 box at byte {0}")]
    Malformed(u64),
    #[error("the MP4 box at byte {0} claims to run to the end of the file, which a stream has not")]
    Unbounded(u64),
    #[error("an MP4 fragment at byte {at} names track {track}, which the moov does not declare")]
    UnknownTrack { track: u32, at: u64 },
    #[error("the stream's first box is `{0}`, not `ftyp`: not MP4")]
    NotMp4(String),
}

/// A box header: its type, total size (header included) and header length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BoxHeader {
    pub(super) kind: [u8; 4],
    /// `None` for a box that runs to the end of the file (size 0).
    pub(super) size: Option<u64>,
    pub(super) header: usize,
}

/// Reads a box header at the start of `b`. `None` when `b` is too short yet.
pub(super) fn read_box_header(b: &[u8], at: u64) -> Result<Option<BoxHeader>, Mp4Error> {
    if b.len() < 8 {
        return Ok(None);
    }
    let size32 = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64;
    let kind = [b[4], b[5], b[6], b[7]];
    let (size, header) = match size32 {
        0 => (None, 8),
        1 => {
            if b.len() < 16 {
                return Ok(None);
            }
            (Some(be_u64(&b[8..16])), 16)
        }
        n => (Some(n), 8),
    };
    if size.is_some_and(|s| s < header as u64) {
        return Err(Mp4Error::Malformed(at));
    }
    Ok(Some(BoxHeader { kind, size, header }))
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be_u64(b: &[u8]) -> u64 {
    u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// A child box: its type, its body, and the absolute offset of the body.
pub(super) type Child<'a> = ([u8; 4], &'a [u8], u64);

/// The child boxes of a box whose whole body is in `body`.
pub(super) fn children(body: &[u8], at: u64) -> Result<Vec<Child<'_>>, Mp4Error> {
    let mut out = Vec::new();
    let mut p = 0usize;
    while p < body.len() {
        let here = at + p as u64;
        let h = read_box_header(&body[p..], here)?.ok_or(Mp4Error::Malformed(here))?;
        let size = match h.size {
            Some(s) => usize::try_from(s).map_err(|_| Mp4Error::Malformed(here))?,
            None => body.len() - p,
        };
        let end = p
            .checked_add(size)
            .filter(|&e| e <= body.len())
            .ok_or(Mp4Error::Malformed(here))?;
        out.push((h.kind, &body[p + h.header..end], here + h.header as u64));
        p = end;
    }
    Ok(out)
}

pub(super) fn child<'a>(boxes: &[Child<'a>], kind: &[u8; 4]) -> Option<(&'a [u8], u64)> {
    boxes
        .iter()
        .find(|(k, ..)| k == kind)
        .map(|(_, b, at)| (*b, *at))
}

/// What a `trak` says of its track: its id (`tkhd`), timescale (`mdhd`) and handler (`hdlr`:
/// `vide`, `soun`…).
pub(super) struct TrakInfo {
    pub(super) id: u32,
    pub(super) timescale: u32,
    pub(super) handler: [u8; 4],
}

pub(super) fn read_trak(trak: &[u8], at: u64) -> Result<TrakInfo, Mp4Error> {
    let parts = children(trak, at)?;
    let (tkhd, tkhd_at) = child(&parts, b"tkhd").ok_or(Mp4Error::Malformed(at))?;
    let mut r = Reader::new(tkhd, tkhd_at);
    let (version, _) = r.version_flags()?;
    r.take(if version == 1 { 16 } else { 8 })?; // creation and modification times
    let id = r.u32()?;
    let (mdia, mdia_at) = child(&parts, b"mdia").ok_or(Mp4Error::Malformed(at))?;
    let mdia = children(mdia, mdia_at)?;
    let (mdhd, mdhd_at) = child(&mdia, b"mdhd").ok_or(Mp4Error::Malformed(mdia_at))?;
    let mut r = Reader::new(mdhd, mdhd_at);
    let (version, _) = r.version_flags()?;
    r.take(if version == 1 { 16 } else { 8 })?;
    let timescale = r.u32()?.max(1);
    let (hdlr, hdlr_at) = child(&mdia, b"hdlr").ok_or(Mp4Error::Malformed(mdia_at))?;
    let mut r = Reader::new(hdlr, hdlr_at);
    r.version_flags()?;
    r.take(4)?; // pre_defined
    let handler = r.take(4)?.try_into().expect("4 bytes");
    Ok(TrakInfo {
        id,
        timescale,
        handler,
    })
}

/// A bounds-checked reader over a full box's body.
pub(super) struct Reader<'a> {
    b: &'a [u8],
    p: usize,
    at: u64,
}

impl<'a> Reader<'a> {
    pub(super) fn new(b: &'a [u8], at: u64) -> Reader<'a> {
        Reader { b, p: 0, at }
    }
    /// How far into the body the reader is: where the next field starts.
    pub(super) fn offset(&self) -> usize {
        self.p
    }
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], Mp4Error> {
        let end = self
            .p
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or(Mp4Error::Malformed(self.at + self.p as u64))?;
        let s = &self.b[self.p..end];
        self.p = end;
        Ok(s)
    }
    pub(super) fn u32(&mut self) -> Result<u32, Mp4Error> {
        self.take(4).map(be_u32)
    }
    pub(super) fn u64(&mut self) -> Result<u64, Mp4Error> {
        self.take(8).map(be_u64)
    }
    /// A full box's version and flags.
    pub(super) fn version_flags(&mut self) -> Result<(u8, u32), Mp4Error> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00FF_FFFF))
    }
}

/// What the `moov` says about one track.
#[derive(Debug, Clone, Copy)]
struct Track {
    id: u32,
    timescale: u32,
    video: bool,
    /// From `trex`: used where a fragment gives no duration or flags of its own.
    default_duration: u32,
    default_flags: u32,
}

/// `sample_is_non_sync_sample` in ISO/IEC 14496-12 sample flags.
const NON_SYNC: u32 = 0x0001_0000;

/// One track's run of samples in a fragment.
#[derive(Debug, Clone, Copy)]
struct TrackRun {
    track: u32,
    start_ns: u64,
    end_ns: u64,
    first_is_sync: bool,
}

/// The incremental cutter: feed it the muxer's bytes, take finished pieces.
#[derive(Debug)]
pub struct Cutter {
    cuts: Cuts,
    /// Absolute offset of the next box header.
    pos: u64,
    tracks: Vec<Track>,
    summary: TrackSummary,
    /// Where each track's previous fragment ended, in its timescale, for a fragment without
    /// a `tfdt`.
    track_ends: Vec<(u32, u64)>,
}

impl Cutter {
    pub fn new(target_ns: u64) -> Cutter {
        Cutter {
            cuts: Cuts::new(target_ns),
            pos: 0,
            tracks: Vec::new(),
            summary: TrackSummary::default(),
            track_ends: Vec::new(),
        }
    }

    /// The tracks the `moov` declared (known once the header piece is out).
    pub fn tracks(&self) -> &TrackSummary {
        &self.summary
    }

    /// Muxed bytes not cut into a piece yet.
    pub fn pending_bytes(&self) -> usize {
        self.cuts.pending()
    }

    /// Appends muxer output and returns the pieces it completed.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Piece>, Mp4Error> {
        self.cuts.extend(bytes);
        while self.step()? {}
        Ok(self.cuts.take_ready())
    }

    /// Ends the stream: whatever remains becomes the last piece. Returns the pieces completed.
    pub fn finish(self) -> Result<Vec<Piece>, Mp4Error> {
        let has_video = !self.summary.video_tracks.is_empty();
        Ok(self.cuts.finish(has_video))
    }

    /// Reads one top-level box (its whole body for `moov` and `moof`). False when more bytes
    /// are needed.
    fn step(&mut self) -> Result<bool, Mp4Error> {
        if self.pos >= self.cuts.end() {
            return Ok(false);
        }
        let Some(h) = read_box_header(self.cuts.from(self.pos), self.pos)? else {
            return Ok(false);
        };
        if self.pos == 0 && &h.kind != b"ftyp" {
            return Err(Mp4Error::NotMp4(String::from_utf8_lossy(&h.kind).into()));
        }
        let size = h.size.ok_or(Mp4Error::Unbounded(self.pos))?;
        let body_at = self.pos + h.header as u64;
        let end = self
            .pos
            .checked_add(size)
            .ok_or(Mp4Error::Malformed(self.pos))?;
        match &h.kind {
            b"moov" | b"moof" => {
                if self.cuts.end() < end {
                    return Ok(false);
                }
                let body = self.cuts.from(body_at)[..(end - body_at) as usize].to_vec();
                if &h.kind == b"moov" {
                    self.parse_moov(&body, body_at)?;
                } else {
                    let start = self.pos;
                    let runs = self.parse_moof(&body, body_at)?;
                    self.on_fragment(start, &runs);
                }
            }
            _ => {}
        }
        self.pos = end;
        Ok(true)
    }

    fn on_fragment(&mut self, at: u64, runs: &[TrackRun]) {
        let Some(start_ns) = runs.iter().map(|r| r.start_ns).min() else {
            return;
        };
        let video = &self.summary.video_tracks;
        self.cuts.boundary(at, start_ns, !video.is_empty());
        for r in runs {
            let is_video = video.contains(&(r.track as u64));
            self.cuts
                .frame(r.end_ns, is_video.then_some(r.first_is_sync));
        }
    }

    fn parse_moov(&mut self, body: &[u8], at: u64) -> Result<(), Mp4Error> {
        let boxes = children(body, at)?;
        for (kind, trak, trak_at) in &boxes {
            if kind != b"trak" {
                continue;
            }
            let TrakInfo {
                id,
                timescale,
                handler,
            } = read_trak(trak, *trak_at)?;
            let video = &handler == b"vide";
            match &handler {
                b"vide" => self.summary.video_tracks.push(id as u64),
                b"soun" => self.summary.audio_tracks.push(id as u64),
                _ => {}
            }
            self.tracks.push(Track {
                id,
                timescale,
                video,
                default_duration: 0,
                default_flags: 0,
            });
        }
        if let Some((mvex, mvex_at)) = child(&boxes, b"mvex") {
            for (kind, trex, trex_at) in children(mvex, mvex_at)? {
                if &kind != b"trex" {
                    continue;
                }
                let mut r = Reader::new(trex, trex_at);
                r.version_flags()?;
                let id = r.u32()?;
                r.u32()?; // default_sample_description_index
                let duration = r.u32()?;
                r.u32()?; // default_sample_size
                let flags = r.u32()?;
                if let Some(t) = self.tracks.iter_mut().find(|t| t.id == id) {
                    t.default_duration = duration;
                    t.default_flags = flags;
                }
            }
        }
        Ok(())
    }

    fn parse_moof(&mut self, body: &[u8], at: u64) -> Result<Vec<TrackRun>, Mp4Error> {
        let mut runs = Vec::new();
        for (kind, traf, traf_at) in children(body, at)? {
            if &kind == b"traf" {
                runs.push(self.parse_traf(traf, traf_at)?);
            }
        }
        Ok(runs)
    }

    fn parse_traf(&mut self, traf: &[u8], at: u64) -> Result<TrackRun, Mp4Error> {
        let parts = children(traf, at)?;
        let (tfhd, tfhd_at) = child(&parts, b"tfhd").ok_or(Mp4Error::Malformed(at))?;
        let mut r = Reader::new(tfhd, tfhd_at);
        let (_, flags) = r.version_flags()?;
        let id = r.u32()?;
        let track = *self
            .tracks
            .iter()
            .find(|t| t.id == id)
            .ok_or(Mp4Error::UnknownTrack { track: id, at })?;
        if flags & 0x01 != 0 {
            r.u64()?; // base_data_offset
        }
        if flags & 0x02 != 0 {
            r.u32()?; // sample_description_index
        }
        let default_duration = if flags & 0x08 != 0 {
            r.u32()?
        } else {
            track.default_duration
        };
        if flags & 0x10 != 0 {
            r.u32()?; // default_sample_size
        }
        let default_flags = if flags & 0x20 != 0 {
            r.u32()?
        } else {
            track.default_flags
        };
        let previous_end = self
            .track_ends
            .iter()
            .find(|(t, _)| *t == id)
            .map(|(_, e)| *e)
            .unwrap_or(0);
        let start = match child(&parts, b"tfdt") {
            Some((tfdt, tfdt_at)) => {
                let mut r = Reader::new(tfdt, tfdt_at);
                let (version, _) = r.version_flags()?;
                if version == 1 {
                    r.u64()?
                } else {
                    r.u32()? as u64
                }
            }
            None => previous_end,
        };
        let mut duration = 0u64;
        let mut first_flags = None;
        for (kind, trun, trun_at) in &parts {
            if kind != b"trun" {
                continue;
            }
            let mut r = Reader::new(trun, *trun_at);
            let (_, tr_flags) = r.version_flags()?;
            let count = r.u32()?;
            if tr_flags & 0x001 != 0 {
                r.u32()?; // data_offset
            }
            let first_sample_flags = if tr_flags & 0x004 != 0 {
                Some(r.u32()?)
            } else {
                None
            };
            // Each sample's record is the fields its flags name, 4 bytes each.
            let record = [0x100, 0x200, 0x400, 0x800]
                .iter()
                .filter(|&&f| tr_flags & f != 0)
                .count()
                * 4;
            let needed = (count as usize)
                .checked_mul(record)
                .ok_or(Mp4Error::Malformed(*trun_at))?;
            let samples = r.take(needed)?;
            if record == 0 {
                // No per-sample fields: every sample has the defaults, however many the count
                // claims (up to 2^32 - 1 in a few bytes), so they are counted, not walked.
                if count > 0 && first_flags.is_none() {
                    first_flags = Some(first_sample_flags.unwrap_or(default_flags));
                }
                duration = duration.saturating_add(u64::from(count) * u64::from(default_duration));
                continue;
            }
            for i in 0..count as usize {
                let mut s = Reader::new(&samples[i * record..(i + 1) * record], *trun_at);
                let d = if tr_flags & 0x100 != 0 {
                    s.u32()?
                } else {
                    default_duration
                };
                if tr_flags & 0x200 != 0 {
                    s.u32()?;
                }
                let f = if tr_flags & 0x400 != 0 {
                    Some(s.u32()?)
                } else {
                    None
                };
                if first_flags.is_none() {
                    first_flags = Some(if i == 0 {
                        first_sample_flags.or(f).unwrap_or(default_flags)
                    } else {
                        f.unwrap_or(default_flags)
                    });
                }
                duration = duration.saturating_add(d as u64);
            }
        }
        let end = start.saturating_add(duration);
        match self.track_ends.iter_mut().find(|(t, _)| *t == id) {
            Some(e) => e.1 = end,
            None => self.track_ends.push((id, end)),
        }
        let ns = |t: u64| {
            (t as u128 * 1_000_000_000 / track.timescale as u128).min(u64::MAX as u128) as u64
        };
        Ok(TrackRun {
            track: id,
            start_ns: ns(start),
            end_ns: ns(end),
            // An empty run (no samples) does not decide whether a piece starts on a keyframe.
            first_is_sync: first_flags.is_none_or(|f| f & NON_SYNC == 0) || !track.video,
        })
    }
}

/// What a front-end's MP4 bytes turned out to be, as far as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Nothing decisive yet (`ftyp`, `moov`, `free`…).
    Undecided,
    /// A `moof` came before any `mdat`: fragmented, streamable as it arrives.
    Fragmented,
    /// An `mdat` came before any `moof`: a plain MP4 whose samples are indexed by a `moov`
    /// that is read whole (at the end, often), so it cannot be cut as it arrives.
    NotFragmented,
}

/// Watches the front-end's own MP4 bytes (before the pipeline): whether the stream ends on a
/// box boundary (a file cut inside a box demuxes "cleanly" up to the cut) and whether it is
/// fragmented, which a live stream must be.
#[derive(Debug, Default)]
pub struct InputScan {
    carry: Vec<u8>,
    skip: u64,
    at: u64,
    gave_up: bool,
    layout: Option<Layout>,
}

impl InputScan {
    pub fn push(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && !self.gave_up {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len() as u64) as usize;
                self.skip -= n as u64;
                self.at += n as u64;
                bytes = &bytes[n..];
                continue;
            }
            let take = bytes.len().min(16 - self.carry.len());
            self.carry.extend_from_slice(&bytes[..take]);
            match read_box_header(&self.carry, self.at) {
                Ok(Some(h)) => {
                    let used_from_new = h.header - (self.carry.len() - take);
                    bytes = &bytes[used_from_new..];
                    self.at += h.header as u64;
                    self.carry.clear();
                    self.note(&h.kind);
                    match h.size {
                        Some(size) => self.skip = size - h.header as u64,
                        None => self.gave_up = true,
                    }
                }
                Ok(None) => bytes = &bytes[take..],
                Err(_) => self.gave_up = true,
            }
        }
    }

    fn note(&mut self, kind: &[u8; 4]) {
        if self.layout.is_none() {
            self.layout = match kind {
                b"moof" => Some(Layout::Fragmented),
                b"mdat" => Some(Layout::NotFragmented),
                _ => None,
            };
        }
    }

    /// Whether the stream so far is fragmented.
    pub fn layout(&self) -> Layout {
        self.layout.unwrap_or(Layout::Undecided)
    }

    /// `Some(why)` when the bytes so far end inside a box.
    pub fn incomplete(&self) -> Option<String> {
        if self.gave_up {
            return None;
        }
        if self.skip > 0 {
            return Some(format!(
                "the stream ends {} bytes short of the end of the MP4 box it was in",
                self.skip
            ));
        }
        if !self.carry.is_empty() {
            return Some("the stream ends inside an MP4 box header".into());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::PieceKind;

    fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(body);
        b
    }

    fn full(kind: &[u8; 4], version: u8, flags: u32, body: &[u8]) -> Vec<u8> {
        let mut b = ((version as u32) << 24 | flags).to_be_bytes().to_vec();
        b.extend_from_slice(body);
        mp4_box(kind, &b)
    }

    fn trak(id: u32, timescale: u32, handler: &[u8; 4]) -> Vec<u8> {
        let mut tkhd = vec![0u8; 8];
        tkhd.extend_from_slice(&id.to_be_bytes());
        tkhd.extend_from_slice(&[0u8; 68]);
        let mut mdhd = vec![0u8; 8];
        mdhd.extend_from_slice(&timescale.to_be_bytes());
        mdhd.extend_from_slice(&[0u8; 8]);
        let mut hdlr = vec![0u8; 4];
        hdlr.extend_from_slice(handler);
        hdlr.extend_from_slice(&[0u8; 13]);
        let mdia = [full(b"mdhd", 0, 0, &mdhd), full(b"hdlr", 0, 0, &hdlr)].concat();
        mp4_box(
            b"trak",
            &[full(b"tkhd", 0, 3, &tkhd), mp4_box(b"mdia", &mdia)].concat(),
        )
    }

    fn trex(id: u32, duration: u32) -> Vec<u8> {
        let mut b = id.to_be_bytes().to_vec();
        for v in [1u32, duration, 0, NON_SYNC] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        full(b"trex", 0, 0, &b)
    }

    /// ftyp + moov with video track 1 (timescale 30) and audio track 2 (timescale 1000).
    fn init() -> Vec<u8> {
        let moov = [
            trak(1, 30, b"vide"),
            trak(2, 1000, b"soun"),
            mp4_box(b"mvex", &[trex(1, 1), trex(2, 20)].concat()),
        ]
        .concat();
        [mp4_box(b"ftyp", b"iso6\0\0\0\0"), mp4_box(b"moov", &moov)].concat()
    }

    /// One track's fragment: `count` samples from `start`, the first a keyframe if `key`.
    fn fragment(track: u32, start: u64, count: u32, key: bool) -> Vec<u8> {
        let tfhd = full(b"tfhd", 0, 0x02_0000, &track.to_be_bytes());
        let tfdt = full(b"tfdt", 1, 0, &start.to_be_bytes());
        let mut trun = count.to_be_bytes().to_vec();
        trun.extend_from_slice(&0u32.to_be_bytes()); // data offset
        let first = if key { 0x0200_0000 } else { NON_SYNC };
        trun.extend_from_slice(&first.to_be_bytes());
        for _ in 0..count {
            trun.extend_from_slice(&3u32.to_be_bytes()); // sample size
        }
        let traf = [tfhd, tfdt, full(b"trun", 0, 0x205, &trun)].concat();
        let mfhd = full(b"mfhd", 0, 0, &1u32.to_be_bytes());
        [
            mp4_box(b"moof", &[mfhd, mp4_box(b"traf", &traf)].concat()),
            mp4_box(b"mdat", &vec![0xAB; count as usize * 3]),
        ]
        .concat()
    }

    /// `seconds` of 1 s video fragments (30 samples) and audio fragments (50 × 20 ms), only
    /// the first video sample of all a keyframe.
    fn stream(seconds: u64) -> Vec<u8> {
        let mut s = init();
        for i in 0..seconds {
            s.extend(fragment(2, i * 1000, 50, true));
            s.extend(fragment(1, i * 30, 30, i == 0));
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
    fn pieces_rejoin_to_the_input_byte_for_byte() {
        let s = stream(9);
        for step in [1, 7, 4096, s.len()] {
            let pieces = cut_all(&s, step, 4);
            let joined: Vec<u8> = pieces.iter().flat_map(|p| p.bytes.clone()).collect();
            assert_eq!(joined, s, "step {step}");
            assert_eq!(pieces[0].kind, PieceKind::Header);
            assert_eq!(pieces[0].bytes, init(), "the init segment is ftyp + moov");
        }
    }

    #[test]
    fn pieces_are_time_bounded_when_only_the_first_frame_is_a_keyframe() {
        let pieces = cut_all(&stream(9), 1000, 4);
        let media: Vec<_> = pieces[1..].iter().map(|p| (p.start_ns, p.end_ns)).collect();
        let s = 1_000_000_000;
        assert_eq!(media, vec![(0, 4 * s), (4 * s, 8 * s), (8 * s, 9 * s)]);
        let keys: Vec<_> = pieces[1..].iter().map(|p| p.starts_on_keyframe).collect();
        assert_eq!(keys, vec![true, false, false]);
    }

    #[test]
    fn the_tracks_come_from_the_moov() {
        let mut c = Cutter::new(1);
        c.push(&stream(1)).unwrap();
        assert_eq!(c.tracks().video_tracks, vec![1]);
        assert_eq!(c.tracks().audio_tracks, vec![2]);
    }

    #[test]
    fn a_stream_with_no_fragment_yields_only_its_header() {
        let pieces = cut_all(&init(), 5, 4);
        assert_eq!(pieces.len(), 1);
        assert_eq!(pieces[0].kind, PieceKind::Header);
    }

    #[test]
    fn a_fragment_for_an_undeclared_track_is_refused() {
        let mut s = init();
        s.extend(fragment(9, 0, 1, true));
        let err = Cutter::new(1).push(&s).unwrap_err();
        assert!(
            matches!(err, Mp4Error::UnknownTrack { track: 9, .. }),
            "{err}"
        );
    }

    #[test]
    fn bytes_that_are_not_mp4_are_refused() {
        let err = Cutter::new(1)
            .push(b"\x1aE\xdf\xa3 not an mp4")
            .unwrap_err();
        assert!(matches!(err, Mp4Error::NotMp4(_)), "{err}");
    }

    #[test]
    fn a_box_shorter_than_its_header_is_malformed() {
        let mut s = mp4_box(b"ftyp", b"iso6");
        s.extend_from_slice(&[0, 0, 0, 4, b'f', b'r', b'e', b'e']);
        assert_eq!(
            Cutter::new(1).push(&s).unwrap_err(),
            Mp4Error::Malformed(12)
        );
    }

    #[test]
    fn a_trun_claiming_more_samples_than_it_holds_is_malformed_not_a_panic() {
        let mut s = init();
        let mut f = fragment(1, 0, 2, true);
        // The sample count sits after moof(8) mfhd(16) traf(8) tfhd(16) tfdt(20) trun header(12).
        let at = 8 + 16 + 8 + 16 + 20 + 12;
        f[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        s.extend(f);
        assert!(matches!(
            Cutter::new(1).push(&s).unwrap_err(),
            Mp4Error::Malformed(_)
        ));
    }

    #[test]
    fn the_scan_tells_fragmented_from_plain_and_whole_from_cut() {
        let s = stream(2);
        for step in [1usize, 13, s.len()] {
            let mut scan = InputScan::default();
            s.chunks(step).for_each(|c| scan.push(c));
            assert_eq!(scan.layout(), Layout::Fragmented, "step {step}");
            assert_eq!(scan.incomplete(), None, "step {step}");
        }
        let mut cut = InputScan::default();
        cut.push(&s[..s.len() - 5]);
        assert!(cut.incomplete().unwrap().contains("5 bytes short"));
        let mut header_only = InputScan::default();
        header_only.push(&init());
        assert_eq!(header_only.layout(), Layout::Undecided);
        let plain = [
            mp4_box(b"ftyp", b"isom"),
            mp4_box(b"mdat", &[1, 2, 3]),
            mp4_box(b"moov", &[]),
        ]
        .concat();
        let mut scan = InputScan::default();
        scan.push(&plain);
        assert_eq!(scan.layout(), Layout::NotFragmented);
    }
}
