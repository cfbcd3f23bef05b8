//! kiroku's own remuxer for Matroska/WebM input: a browser's recording re-clustered in Rust,
//! with no GStreamer in the path, for the profiles that ask for it (`direct = true`).
//!
//! Why: under load, a GStreamer remux per stream (a streaming thread per element and a queue
//! thread per track, each woken for every frame) costs most of a node's CPU in context
//! switches, although it only copies blocks into new clusters. This does the same copy: the
//! EBML header, Info and Tracks pass through (the Segment becomes of unknown size, as a live
//! stream's), every block is copied as it is with its 16-bit timecode rewritten against the
//! cluster it lands in, and clusters are cut as the muxer would cut them, on a video keyframe
//! at least `MIN_CLUSTER_NS` after the cluster's start and at least every `MAX_CLUSTER_NS`;
//! and on every keyframe that falls in a cluster that did not start on one, so a finished
//! recording's Cues (which point at clusters that start on a keyframe) reach every keyframe.
//! Clusters are of unknown size, as MediaRecorder writes them, so each block goes out as it
//! comes. SeekHead,
//! Cues, Tags and Void are dropped (their offsets would be wrong). The output goes into the
//! same [`super::Cutter`] as the muxer's. Pure byte logic, unit tested on its own.
//!
//! Codecs are checked from Tracks against the profile's allowed list (as caps names, the same
//! names the GStreamer path checks), so a refused stream is refused before any media.
//!
//! [`direct_feed`] runs a remuxer in the thread that pushes the front-end's bytes and hands
//! its output to the segmenter's thread through a bounded channel (which back-pressures the
//! front-end as a full `appsrc` does): one wake-up per message, not per frame.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::ebml::{
    ID_BLOCK, ID_BLOCK_GROUP, ID_CLUSTER, ID_CLUSTER_TIMECODE, ID_EBML, ID_INFO,
    ID_REFERENCE_BLOCK, ID_SEGMENT, ID_SIMPLE_BLOCK, ID_TIMECODE_SCALE, ID_TRACK_ENTRY,
    ID_TRACK_NUMBER, ID_TRACKS, LEVEL1,
};
use super::{Profile, SegmentError, codec_of_caps};
use crate::vocab::Codec;

/// Remuxed output waiting for the segmenter, in messages; past it a push waits.
const OUTPUT_QUEUE: usize = 64;

/// What the pushing side hands the segmenter's side.
pub enum Fed {
    Bytes(Vec<u8>),
    End,
    Failed(SegmentError),
}

/// The pushing side of a direct segmenter.
pub struct DirectFeed {
    remuxer: Mutex<Option<Remuxer>>,
    tx: SyncSender<Fed>,
    codecs: Arc<Mutex<Vec<Codec>>>,
    stopped: Arc<AtomicBool>,
}

/// The segmenter's side: the remuxed bytes, in order.
pub struct DirectOutput {
    rx: Receiver<Fed>,
    stopped: Arc<AtomicBool>,
}

/// A remuxer for `profile` between a feed and an output; the codecs read from Tracks go into
/// `codecs`.
pub fn direct_feed(
    profile: &Profile,
    codecs: Arc<Mutex<Vec<Codec>>>,
) -> (Arc<DirectFeed>, DirectOutput) {
    let (tx, rx) = sync_channel(OUTPUT_QUEUE);
    let stopped = Arc::new(AtomicBool::new(false));
    let feed = DirectFeed {
        remuxer: Mutex::new(Some(Remuxer::new(&profile.name, &profile.allowed_codecs))),
        tx,
        codecs,
        stopped: stopped.clone(),
    };
    (Arc::new(feed), DirectOutput { rx, stopped })
}

impl DirectFeed {
    /// Remuxes the next bytes and passes the output on; waits while the segmenter is behind.
    /// Fails once the segmenter has stopped or the stream was refused (the segmenter reports
    /// why).
    pub fn push(&self, bytes: &[u8]) -> Result<(), SegmentError> {
        let stopped = || SegmentError::Pipeline("input refused: the segmenter has stopped".into());
        if self.stopped.load(Ordering::SeqCst) {
            return Err(stopped());
        }
        let mut slot = self.remuxer.lock().unwrap_or_else(|p| p.into_inner());
        let remuxer = slot.as_mut().ok_or_else(stopped)?;
        match remuxer.push(bytes) {
            Ok(out) => {
                let mut codecs = self.codecs.lock().unwrap_or_else(|p| p.into_inner());
                if codecs.is_empty() && !remuxer.codecs().is_empty() {
                    *codecs = remuxer.codecs().to_vec();
                }
                drop(codecs);
                if !out.is_empty() {
                    self.tx.send(Fed::Bytes(out)).map_err(|_| stopped())?;
                }
                Ok(())
            }
            Err(e) => {
                *slot = None;
                let _ = self.tx.send(Fed::Failed(e));
                Err(stopped())
            }
        }
    }

    /// The end of the stream, passed on.
    pub fn end(&self) {
        let taken = self
            .remuxer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        // Every block went out as it came; an element left unfinished is not an error here
        // (the capture's input scan reports a truncated stream).
        if taken.is_some() {
            let _ = self.tx.send(Fed::End);
        }
    }
}

impl DirectOutput {
    /// The next output, waiting at most `wait`; `None` when nothing came. A feed dropped
    /// without an end is an end: no byte can come any more.
    pub fn recv(&self, wait: Duration) -> Option<Fed> {
        match self.rx.recv_timeout(wait) {
            Ok(fed) => Some(fed),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Fed::End),
        }
    }

    /// Stops taking input: later pushes fail.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }
}

const ID_CODEC_ID: u32 = 0x86;
const ID_AUDIO: u32 = 0xE1;
/// The largest element buffered whole (a block, Tracks, a skipped Cues): a frame of a
/// browser's recording is far smaller; anything larger is not such a recording.
const MAX_ELEMENT: u64 = 16 << 20;
/// Clusters start on a video keyframe at least this long after the cluster's start…
const MIN_CLUSTER_NS: u64 = 500_000_000;
/// …and at least this often, whatever the keyframes.
const MAX_CLUSTER_NS: u64 = 1_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Top,
    Segment,
    Cluster { end: Option<u64> },
}

/// The incremental remuxer: feed it the front-end's bytes, take the remuxed bytes.
pub struct Remuxer {
    profile: String,
    allowed: Vec<String>,
    /// Input not yet parsed, starting at input offset `at`.
    buf: Vec<u8>,
    at: u64,
    level: Level,
    /// Nanoseconds per timecode tick (Info's TimecodeScale).
    scale: u64,
    video_tracks: Vec<u64>,
    codecs: Vec<Codec>,
    seen_tracks: bool,
    /// The input cluster's timecode, in ticks.
    in_cluster: i64,
    /// The timecode, in ticks, of the output cluster being written.
    out_cluster: Option<i64>,
    /// Whether that cluster's first video frame is a keyframe (`None` before one comes): a
    /// finished recording's Cues point at clusters whose first video frame is one.
    out_cluster_key: Option<bool>,
}

impl Remuxer {
    /// A remuxer for `profile`, accepting streams whose caps names are in `allowed`.
    pub fn new(profile: &str, allowed: &[String]) -> Remuxer {
        Remuxer {
            profile: profile.to_string(),
            allowed: allowed.to_vec(),
            buf: Vec::new(),
            at: 0,
            level: Level::Top,
            scale: 1_000_000,
            video_tracks: Vec::new(),
            codecs: Vec::new(),
            seen_tracks: false,
            in_cluster: 0,
            out_cluster: None,
            out_cluster_key: None,
        }
    }

    /// The codecs of the tracks, once Tracks has been read.
    pub fn codecs(&self) -> &[Codec] {
        &self.codecs
    }

    /// Takes the next bytes of the stream; returns the remuxed bytes ready so far.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<u8>, SegmentError> {
        // Taken out of `self` while parsing, so blocks are copied from it straight into the
        // output, once.
        let mut buf = std::mem::take(&mut self.buf);
        buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut pos = 0;
        let parsed = self.parse(&buf, &mut pos, &mut out);
        buf.drain(..pos);
        self.buf = buf;
        self.at += pos as u64;
        parsed.map(|()| out)
    }

    fn malformed(&self, pos: usize, why: &str) -> SegmentError {
        SegmentError::Unreadable(format!(
            "not Matroska as browsers write it at byte {}: {why}",
            self.at + pos as u64
        ))
    }

    /// Parses every complete element in the buffer from `pos`, writing output to `out`.
    fn parse(
        &mut self,
        buf: &[u8],
        pos: &mut usize,
        out: &mut Vec<u8>,
    ) -> Result<(), SegmentError> {
        loop {
            if let Level::Cluster { end: Some(end) } = self.level
                && self.at + *pos as u64 >= end
            {
                self.level = Level::Segment;
            }
            let Some(Head {
                id,
                size,
                len: head,
            }) = element_head(&buf[*pos..]).map_err(|why| self.malformed(*pos, why))?
            else {
                return Ok(());
            };
            match self.level {
                Level::Top => match id {
                    ID_EBML => {
                        let Some(body) = self.whole(buf, *pos, head, size)? else {
                            return Ok(());
                        };
                        out.extend_from_slice(&buf[*pos..body.end]);
                        *pos = body.end;
                    }
                    ID_SEGMENT => {
                        out.extend_from_slice(&ID_SEGMENT.to_be_bytes());
                        out.extend_from_slice(&UNKNOWN_SIZE);
                        *pos += head;
                        self.level = Level::Segment;
                    }
                    0xEC => {
                        let Some(body) = self.whole(buf, *pos, head, size)? else {
                            return Ok(());
                        };
                        *pos = body.end;
                    }
                    _ => return Err(self.malformed(*pos, "no EBML header and Segment")),
                },
                Level::Segment => match id {
                    ID_CLUSTER => {
                        if !self.seen_tracks {
                            return Err(self.malformed(*pos, "a Cluster before Tracks"));
                        }
                        *pos += head;
                        let end = size.map(|s| self.at + *pos as u64 + s);
                        self.level = Level::Cluster { end };
                    }
                    ID_INFO | ID_TRACKS => {
                        let Some(body) = self.whole(buf, *pos, head, size)? else {
                            return Ok(());
                        };
                        let element = &buf[*pos..body.end];
                        if id == ID_INFO {
                            self.read_info(&element[head..])
                                .map_err(|why| self.malformed(*pos, why))?;
                        } else {
                            self.read_tracks(&element[head..], *pos)?;
                        }
                        out.extend_from_slice(element);
                        *pos = body.end;
                    }
                    _ => {
                        // SeekHead, Cues, Tags, Chapters, Attachments, Void, CRC-32: dropped.
                        let Some(body) = self.whole(buf, *pos, head, size)? else {
                            return Ok(());
                        };
                        *pos = body.end;
                    }
                },
                Level::Cluster { .. } if LEVEL1.contains(&id) => {
                    // The end of a cluster of unknown size.
                    self.level = Level::Segment;
                }
                Level::Cluster { .. } => {
                    let Some(body) = self.whole(buf, *pos, head, size)? else {
                        return Ok(());
                    };
                    let element = *pos..body.end;
                    match id {
                        ID_CLUSTER_TIMECODE => {
                            self.in_cluster = uint(&buf[body.clone()]) as i64;
                        }
                        ID_SIMPLE_BLOCK => {
                            let block = &buf[element.clone()];
                            self.block(block, head, out)
                                .map_err(|why| self.malformed(*pos, why))?;
                        }
                        ID_BLOCK_GROUP => {
                            let group = &buf[element.clone()];
                            self.block_group(group, head, out)
                                .map_err(|why| self.malformed(*pos, why))?;
                        }
                        _ => {} // Position, PrevSize, Void, CRC-32: dropped.
                    }
                    *pos = body.end;
                }
            }
        }
    }

    /// The body range of the element at `pos` when all of it is in the buffer; `None` while
    /// it is not. An element of unknown or excessive size cannot be taken whole.
    fn whole(
        &self,
        buf: &[u8],
        pos: usize,
        head: usize,
        size: Option<u64>,
    ) -> Result<Option<std::ops::Range<usize>>, SegmentError> {
        let size = match size {
            Some(s) if s <= MAX_ELEMENT => s as usize,
            Some(_) => {
                return Err(self.malformed(pos, "an element too large for a browser's stream"));
            }
            None => return Err(self.malformed(pos, "an element of unknown size here")),
        };
        let start = pos + head;
        if buf.len() < start + size {
            return Ok(None);
        }
        Ok(Some(start..start + size))
    }

    fn read_info(&mut self, body: &[u8]) -> Result<(), &'static str> {
        for child in children(body)? {
            if child.id == ID_TIMECODE_SCALE && !child.body.is_empty() {
                self.scale = uint(child.body).max(1);
            }
        }
        Ok(())
    }

    /// Notes each track's codec and refuses a codec the profile does not allow. `pos` is
    /// where Tracks starts, for the error.
    fn read_tracks(&mut self, body: &[u8], pos: usize) -> Result<(), SegmentError> {
        for entry in children(body).map_err(|why| self.malformed(pos, why))? {
            if entry.id != ID_TRACK_ENTRY {
                continue;
            }
            let mut number = None;
            let mut codec_id = String::new();
            let mut audio = false;
            for field in children(entry.body).map_err(|why| self.malformed(pos, why))? {
                let value = field.body;
                match field.id {
                    ID_TRACK_NUMBER => number = Some(uint(value)),
                    ID_CODEC_ID => {
                        codec_id = String::from_utf8_lossy(value).trim_end_matches('\0').into()
                    }
                    ID_AUDIO => audio = true,
                    _ => {}
                }
            }
            let caps = caps_name(&codec_id);
            if !self.allowed.iter().any(|a| a == caps) {
                return Err(SegmentError::CodecNotAllowed {
                    codec: caps.to_string(),
                    profile: self.profile.clone(),
                    allowed: self.allowed.join(", "),
                });
            }
            if caps.starts_with("video/") && !audio {
                self.video_tracks.extend(number);
            }
            if let Some(c) = codec_of_caps(caps) {
                self.codecs.push(c);
            }
        }
        self.codecs.sort();
        self.seen_tracks = true;
        Ok(())
    }

    /// A SimpleBlock element (`head` bytes of id and size, then the block).
    fn block(
        &mut self,
        element: &[u8],
        head: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), &'static str> {
        let (track, tlen) = vint(&element[head..]).ok_or("a block without a track number")?;
        let at = head + tlen;
        let flags = *element.get(at + 2).ok_or("a block cut short")?;
        let keyframe = flags & 0x80 != 0;
        self.place(element, at, track, keyframe, out)
    }

    /// A BlockGroup: its Block's timecode is rewritten in place; it is a keyframe when it
    /// references no other block.
    fn block_group(
        &mut self,
        element: &[u8],
        head: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), &'static str> {
        let mut block_at = None;
        let mut references = false;
        for child in children(&element[head..])? {
            match child.id {
                ID_BLOCK => block_at = Some(head + child.at),
                ID_REFERENCE_BLOCK => references = true,
                _ => {}
            }
        }
        let body = block_at.ok_or("a BlockGroup without a Block")?;
        let (track, tlen) = vint(&element[body..]).ok_or("a block without a track number")?;
        self.place(element, body + tlen, track, !references, out)
    }

    /// Puts one block (the whole `element`, whose 16-bit timecode is at `tc_at`) into the
    /// output cluster, starting a new cluster first where the muxer would.
    fn place(
        &mut self,
        element: &[u8],
        tc_at: usize,
        track: u64,
        keyframe: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), &'static str> {
        let rel = element.get(tc_at..tc_at + 2).ok_or("a block cut short")?;
        // Saturating: the timecodes are the sender's, and absurd ones are refused below as
        // out of range, never wrapped.
        let t = self
            .in_cluster
            .saturating_add(i16::from_be_bytes([rel[0], rel[1]]) as i64);
        let (min, max) = (
            (MIN_CLUSTER_NS / self.scale) as i64,
            (MAX_CLUSTER_NS / self.scale).max(1) as i64,
        );
        let video_key = keyframe && self.video_tracks.contains(&track);
        let start_new = match self.out_cluster {
            None => true,
            Some(start) => {
                let d = t.saturating_sub(start);
                // A keyframe in a cluster whose first video frame was not one starts its
                // own, however soon: players seek to clusters that start on a keyframe.
                (video_key && (d >= min || self.out_cluster_key == Some(false)))
                    || d >= max
                    || d < i16::MIN as i64
                    || d > i16::MAX as i64
            }
        };
        if start_new {
            let start = t.max(0);
            self.out_cluster = Some(start);
            self.out_cluster_key = None;
            // Of unknown size, so that it goes out as it fills: the cutter sees a cluster's
            // start (where it may cut) the moment its first block comes, not a cluster later.
            out.extend_from_slice(&ID_CLUSTER.to_be_bytes());
            out.extend_from_slice(&UNKNOWN_SIZE);
            out.extend_from_slice(&[ID_CLUSTER_TIMECODE as u8, 0x88]);
            out.extend_from_slice(&(start as u64).to_be_bytes());
        }
        if self.video_tracks.contains(&track) && self.out_cluster_key.is_none() {
            self.out_cluster_key = Some(keyframe);
        }
        let start = self.out_cluster.expect("a cluster is open");
        let d = t.saturating_sub(start);
        if d < i16::MIN as i64 || d > i16::MAX as i64 {
            return Err("a block timecode before the stream's start");
        }
        let from = out.len();
        out.extend_from_slice(element);
        out[from + tc_at..from + tc_at + 2].copy_from_slice(&(d as i16).to_be_bytes());
        Ok(())
    }
}

/// The 8-byte EBML size meaning "unknown".
const UNKNOWN_SIZE: [u8; 8] = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];

/// The caps name the GStreamer path gives a Matroska CodecID (what profiles list).
fn caps_name(codec_id: &str) -> &str {
    match codec_id {
        "V_VP8" => "video/x-vp8",
        "V_VP9" => "video/x-vp9",
        "V_AV1" => "video/x-av1",
        "V_MPEG4/ISO/AVC" => "video/x-h264",
        "V_MPEGH/ISO/HEVC" => "video/x-h265",
        "A_OPUS" => "audio/x-opus",
        "A_VORBIS" => "audio/x-vorbis",
        id if id.starts_with("A_AAC") => "audio/mpeg",
        other => other,
    }
}

/// An element's header: its id, its size (`None`: unknown) and the header's length.
struct Head {
    id: u32,
    size: Option<u64>,
    len: usize,
}

/// The header of the element `b` starts with, or `None` when it is not all there yet.
fn element_head(b: &[u8]) -> Result<Option<Head>, &'static str> {
    let Some(&first) = b.first() else {
        return Ok(None);
    };
    let idlen = first.leading_zeros() as usize + 1;
    if idlen > 4 {
        return Err("an invalid element id");
    }
    if b.len() < idlen {
        return Ok(None);
    }
    let id = b[..idlen].iter().fold(0u32, |v, &x| (v << 8) | x as u32);
    let Some(&s0) = b.get(idlen) else {
        return Ok(None);
    };
    let slen = s0.leading_zeros() as usize + 1;
    if slen > 8 {
        return Err("an invalid element size");
    }
    if b.len() < idlen + slen {
        return Ok(None);
    }
    let mut size = (s0 as u64) & (0xFF >> slen);
    let mut all_ones = size == (0xFF >> slen) as u64;
    for &x in &b[idlen + 1..idlen + slen] {
        size = (size << 8) | x as u64;
        all_ones &= x == 0xFF;
    }
    Ok(Some(Head {
        id,
        size: (!all_ones).then_some(size),
        len: idlen + slen,
    }))
}

/// A variable-length integer (a track number), and its length.
fn vint(b: &[u8]) -> Option<(u64, usize)> {
    let first = *b.first()?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 || b.len() < len {
        return None;
    }
    let mut v = (first as u64) & (0xFF >> len);
    for &x in &b[1..len] {
        v = (v << 8) | x as u64;
    }
    Some((v, len))
}

fn uint(b: &[u8]) -> u64 {
    b.iter().take(8).fold(0, |v, &x| (v << 8) | x as u64)
}

/// A child element: its id, where its body starts in its parent's body, and the body.
struct Child<'a> {
    id: u32,
    at: usize,
    body: &'a [u8],
}

/// The children of a master element whose whole body is in `body` (Info, Tracks, a
/// TrackEntry, a BlockGroup), read as strictly as the cutter reads them: a child cut short,
/// of unknown size or longer than its parent is an error, so that what the remuxer passes on
/// always cuts.
fn children(body: &[u8]) -> Result<Vec<Child<'_>>, &'static str> {
    let mut out = Vec::new();
    let mut p = 0;
    while p < body.len() {
        let Head { id, size, len } =
            element_head(&body[p..])?.ok_or("an element header cut short inside its parent")?;
        let size = size.ok_or("an element of unknown size inside its parent")?;
        let end = usize::try_from(size)
            .ok()
            .and_then(|s| (p + len).checked_add(s))
            .filter(|&e| e <= body.len())
            .ok_or("an element longer than its parent")?;
        out.push(Child {
            id,
            at: p + len,
            body: &body[p + len..end],
        });
        p = end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` as an 8-byte EBML size.
    fn sized(n: usize) -> [u8; 8] {
        ((0x01u64 << 56) | n as u64).to_be_bytes()
    }

    fn el(id: u32, body: &[u8]) -> Vec<u8> {
        let mut v = id
            .to_be_bytes()
            .iter()
            .skip_while(|&&b| b == 0)
            .copied()
            .collect::<Vec<_>>();
        v.extend_from_slice(&sized(body.len()));
        v.extend_from_slice(body);
        v
    }

    fn simple_block(track: u8, rel: i16, key: bool) -> Vec<u8> {
        let mut b = vec![0x80 | track];
        b.extend_from_slice(&rel.to_be_bytes());
        b.push(if key { 0x80 } else { 0 });
        b.extend_from_slice(&[0xAB; 10]);
        el(ID_SIMPLE_BLOCK, &b)
    }

    /// A stream as MediaRecorder writes it: unknown-size Segment and Clusters, VP8 + Opus.
    fn browser_stream(blocks: &[(i64, u8, bool)]) -> Vec<u8> {
        let mut s = el(ID_EBML, &el(0x4282, b"webm"));
        s.extend_from_slice(&ID_SEGMENT.to_be_bytes());
        s.extend_from_slice(&UNKNOWN_SIZE);
        s.extend(el(ID_INFO, &el(ID_TIMECODE_SCALE, &[0x0F, 0x42, 0x40])));
        let video = [el(ID_TRACK_NUMBER, &[1]), el(ID_CODEC_ID, b"V_VP8")].concat();
        let audio = [
            el(ID_TRACK_NUMBER, &[2]),
            el(ID_CODEC_ID, b"A_OPUS"),
            el(ID_AUDIO, &[]),
        ]
        .concat();
        s.extend(el(
            ID_TRACKS,
            &[el(ID_TRACK_ENTRY, &video), el(ID_TRACK_ENTRY, &audio)].concat(),
        ));
        s.extend_from_slice(&ID_CLUSTER.to_be_bytes());
        s.extend_from_slice(&UNKNOWN_SIZE);
        s.extend(el(ID_CLUSTER_TIMECODE, &[0]));
        for &(t, track, key) in blocks {
            s.extend(simple_block(track, t as i16, key));
        }
        s
    }

    fn allowed() -> Vec<String> {
        ["video/x-vp8", "audio/x-opus"].map(String::from).to_vec()
    }

    /// The output's cluster timecodes, by feeding it to kiroku's own cutter.
    fn cluster_starts(out: &[u8]) -> Vec<u64> {
        let mut cutter = super::super::Cutter::new(super::super::Container::Matroska, 1);
        let mut pieces = cutter.push(out).unwrap();
        pieces.extend(cutter.finish().unwrap());
        pieces
            .iter()
            .filter(|p| p.kind == super::super::PieceKind::Media)
            .map(|p| p.start_ns / 1_000_000)
            .collect()
    }

    #[test]
    fn one_keyframe_clusters_are_cut_every_second_and_on_later_keyframes() {
        // Video every 100 ms, keyframes at 0, 1.3 s and 2.6 s; audio every 100 ms.
        let mut blocks = Vec::new();
        for i in 0..30 {
            blocks.push((i * 100, 1, i == 0 || i == 13 || i == 26));
            blocks.push((i * 100 + 50, 2, true));
        }
        // A browser's single cluster spans 3 s: its timecodes fit in 16 bits.
        let input = browser_stream(&blocks);
        let mut r = Remuxer::new("webm", &allowed());
        let out = r.push(&input).unwrap();
        // Every second (audio keyframes do not cut), and on each keyframe: the one at 1.3 s
        // comes soon after the cluster of 1 s, but that one's first video frame is a delta
        // frame; so is the cluster of 2.3 s's, before the keyframe at 2.6 s.
        assert_eq!(cluster_starts(&out), vec![0, 1000, 1300, 2300, 2600]);
    }

    #[test]
    fn the_output_is_the_same_whatever_the_input_is_split_into() {
        let blocks: Vec<_> = (0..40)
            .map(|i| (i * 50, 1 + (i % 2) as u8, i % 20 == 0))
            .collect();
        let input = browser_stream(&blocks);
        let whole = Remuxer::new("webm", &allowed()).push(&input).unwrap();
        for chunk in [1, 7, 64, input.len()] {
            let mut r = Remuxer::new("webm", &allowed());
            let mut out = Vec::new();
            for c in input.chunks(chunk) {
                out.extend(r.push(c).unwrap());
            }
            assert_eq!(out, whole, "chunks of {chunk}");
        }
    }

    #[test]
    fn a_codec_the_profile_does_not_allow_is_refused_from_tracks() {
        let input = browser_stream(&[(0, 1, true)]);
        let mut r = Remuxer::new("webm", &["audio/x-opus".to_string()]);
        match r.push(&input) {
            Err(SegmentError::CodecNotAllowed { codec, .. }) => assert_eq!(codec, "video/x-vp8"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bytes_that_are_not_matroska_are_unreadable() {
        let mut r = Remuxer::new("webm", &allowed());
        assert!(matches!(
            r.push(b"hello, this is not a recording at all"),
            Err(SegmentError::Unreadable(_))
        ));
    }

    #[test]
    fn a_block_group_whose_block_runs_past_the_group_is_unreadable() {
        let mut input = browser_stream(&[(0, 1, true)]);
        // A BlockGroup of 8 bytes whose Block claims 100: the block's head and timecode lie
        // inside the group, its claimed body past it.
        let block = [0xA1, 0xE4, 0x81, 0x00, 0x00, 0x80, 0xAB, 0xAB];
        input.extend(el(ID_BLOCK_GROUP, &block));
        let mut r = Remuxer::new("webm", &allowed());
        match r.push(&input) {
            Err(SegmentError::Unreadable(why)) => assert!(why.contains("longer than its parent")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_block_group_whose_block_fits_is_passed_on_and_cuts() {
        let mut input = browser_stream(&[(0, 1, true)]);
        let block = [0xA1, 0x86, 0x81, 0x00, 0x28, 0x80, 0xAB, 0xAB];
        input.extend(el(ID_BLOCK_GROUP, &block));
        let out = Remuxer::new("webm", &allowed()).push(&input).unwrap();
        assert_eq!(cluster_starts(&out), vec![0]);
    }

    #[test]
    fn the_codecs_are_read_from_tracks() {
        let input = browser_stream(&[(0, 1, true)]);
        let mut r = Remuxer::new("webm", &allowed());
        r.push(&input).unwrap();
        assert_eq!(r.codecs(), &[Codec::Vp8, Codec::Opus]);
    }
}
