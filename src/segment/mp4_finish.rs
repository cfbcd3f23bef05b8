//! The finished header of a fragmented MP4 recording: the live init segment (`ftyp`, `moov`)
//! with the duration in `mvhd` and in a `mehd`, followed by a `sidx` that indexes the
//! fragments, so a player knows the length and seeks by fragment without reading the file.
//!
//! The `sidx` has one reference per run of fragments that starts on a video sync sample (the
//! muxer writes one track per fragment, so audio fragments join the video fragment before
//! them), timed on the reference track: the first video track, else the first track. MP4 needs
//! no trailer: the `sidx` sits right before the first fragment, where ISO/IEC 14496-12 puts it.

use super::finish::{FinishError, FinishedEnds, MediaSpan, absolute_marks};
use super::mp4::{Mp4Error, Reader, child, children, read_box_header, read_trak};

/// Most references one `sidx` holds (its count is 16 bits).
const MAX_REFERENCES: usize = u16::MAX as usize;

pub(super) fn finish(
    header: &[u8],
    media: &[MediaSpan],
    duration_ns: u64,
) -> Result<FinishedEnds, FinishError> {
    let mut boxes = Vec::new();
    let mut p = 0usize;
    while p < header.len() {
        let here = p as u64;
        let h = read_box_header(&header[p..], here)?.ok_or(Mp4Error::Malformed(here))?;
        let size = h.size.ok_or(Mp4Error::Unbounded(here))?;
        let end = usize::try_from(size)
            .ok()
            .and_then(|s| p.checked_add(s))
            .filter(|&e| e <= header.len())
            .ok_or(Mp4Error::Malformed(here))?;
        boxes.push((h.kind, &header[p + h.header..end], &header[p..end], here));
        p = end;
    }
    let (moov, moov_at) = boxes
        .iter()
        .find(|(k, ..)| k == b"moov")
        .map(|(_, body, _, at)| (*body, *at + 8))
        .ok_or(FinishError::Missing("a moov"))?;
    let (new_moov, reference) = finished_moov(moov, moov_at, duration_ns)?;
    let (sidx, seek_points) = sidx(media, duration_ns, reference)?;
    let mut out = Vec::with_capacity(header.len() + sidx.len() + 32);
    for (kind, _, whole, _) in &boxes {
        if kind == b"moov" {
            out.extend(&new_moov);
        } else {
            out.extend_from_slice(whole);
        }
    }
    out.extend(sidx);
    Ok(FinishedEnds {
        header: out,
        trailer: None,
        seek_points,
    })
}

/// The track a `sidx` is timed on: its id and timescale.
#[derive(Debug, Clone, Copy)]
struct Reference {
    track: u32,
    timescale: u32,
}

/// The `moov` with its duration written: `mvhd`'s duration field, and a `mehd` first in `mvex`.
fn finished_moov(
    moov: &[u8],
    at: u64,
    duration_ns: u64,
) -> Result<(Vec<u8>, Reference), FinishError> {
    let parts = children(moov, at)?;
    let (mvhd, mvhd_at) = child(&parts, b"mvhd").ok_or(FinishError::Missing("an mvhd"))?;
    let mut r = Reader::new(mvhd, mvhd_at);
    let (version, _) = r.version_flags()?;
    r.take(if version == 1 { 16 } else { 8 })?;
    let movie_scale = r.u32()?.max(1);
    let duration = in_scale(duration_ns, movie_scale);
    // Written where the reader finds the field, so an `mvhd` cut short before it is
    // malformed rather than indexed past.
    let field = r.offset();
    let written = if version == 1 {
        duration.to_be_bytes().to_vec()
    } else {
        // Version 0 holds 32 bits; all ones says "unknown", and `mehd` still tells.
        u32::try_from(duration)
            .unwrap_or(u32::MAX)
            .to_be_bytes()
            .to_vec()
    };
    r.take(written.len())?;
    let mut new_mvhd = mvhd.to_vec();
    new_mvhd[field..field + written.len()].copy_from_slice(&written);
    let reference = reference_track(&parts)?;
    let mut body = Vec::with_capacity(moov.len() + 20);
    let mut has_mvex = false;
    for (kind, b, b_at) in &parts {
        match kind {
            b"mvhd" => body.extend(mp4_box(b"mvhd", &new_mvhd)),
            b"mvex" => {
                has_mvex = true;
                let mut mvex = full_box(b"mehd", 1, &duration.to_be_bytes());
                for (k, c, _) in children(b, *b_at)? {
                    if &k != b"mehd" {
                        mvex.extend(mp4_box(&k, c));
                    }
                }
                body.extend(mp4_box(b"mvex", &mvex));
            }
            _ => body.extend(mp4_box(kind, b)),
        }
    }
    if !has_mvex {
        return Err(FinishError::Missing(
            "an mvex (the recording is not fragmented)",
        ));
    }
    Ok((mp4_box(b"moov", &body), reference))
}

/// The first video track, else the first track.
fn reference_track(parts: &[super::mp4::Child]) -> Result<Reference, FinishError> {
    let mut first = None;
    for (kind, trak, trak_at) in parts {
        if kind != b"trak" {
            continue;
        }
        let t = read_trak(trak, *trak_at)?;
        let found = Reference {
            track: t.id,
            timescale: t.timescale,
        };
        if &t.handler == b"vide" {
            return Ok(found);
        }
        first = first.or(Some(found));
    }
    first.ok_or(FinishError::Missing("a trak"))
}

/// The `sidx` over every fragment, and how many references it holds.
fn sidx(
    media: &[MediaSpan],
    duration_ns: u64,
    reference: Reference,
) -> Result<(Vec<u8>, usize), FinishError> {
    let media_len: u64 = media.iter().map(|m| m.len).sum();
    let mut starts: Vec<(u64, u64, bool)> = Vec::new();
    for (at, mark) in absolute_marks(media) {
        if starts.is_empty() {
            // The first run starts with the first fragment, which may hold only audio: it
            // starts on a sync sample if the first video frame after it is one, as its
            // segment says.
            let first = media.iter().find(|m| !m.clusters.is_empty());
            let key = first.is_some_and(|m| m.starts_on_keyframe);
            starts.push((at, mark.time_ns, key));
        } else if mark.keyframe {
            starts.push((at, mark.time_ns, true));
        }
    }
    if starts.len() > MAX_REFERENCES {
        let every = starts.len().div_ceil(MAX_REFERENCES);
        starts = starts.into_iter().step_by(every).collect();
    }
    let (first_at, first_ns, _) = *starts.first().ok_or(FinishError::NoIndex)?;
    let scale = reference.timescale;
    let mut body = Vec::with_capacity(24 + 12 * starts.len());
    body.extend(reference.track.to_be_bytes());
    body.extend(scale.to_be_bytes());
    body.extend(in_scale(first_ns, scale).to_be_bytes());
    // first_offset: from the end of the sidx to the first byte it references.
    body.extend(first_at.to_be_bytes());
    body.extend(0u16.to_be_bytes());
    body.extend((starts.len() as u16).to_be_bytes());
    for (i, &(at, ns, key)) in starts.iter().enumerate() {
        let (next_at, next_ns) = starts
            .get(i + 1)
            .map_or((media_len, duration_ns.max(ns)), |&(a, n, _)| (a, n));
        let size = u32::try_from(next_at - at)
            .ok()
            .filter(|s| s >> 31 == 0)
            .ok_or(FinishError::TooLarge("a fragment run over 2 GiB"))?;
        let duration = in_scale(next_ns, scale).saturating_sub(in_scale(ns, scale));
        body.extend(size.to_be_bytes());
        body.extend(u32::try_from(duration).unwrap_or(u32::MAX).to_be_bytes());
        // starts_with_SAP and SAP type 1 (a sync sample) for runs that start on a keyframe.
        let sap: u32 = if key { 0x9000_0000 } else { 0 };
        body.extend(sap.to_be_bytes());
    }
    Ok((full_box(b"sidx", 1, &body), starts.len()))
}

fn in_scale(ns: u64, scale: u32) -> u64 {
    (ns as u128 * scale as u128 / 1_000_000_000) as u64
}

fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend(((body.len() + 8) as u32).to_be_bytes());
    out.extend(kind);
    out.extend_from_slice(body);
    out
}

fn full_box(kind: &[u8; 4], version: u8, body: &[u8]) -> Vec<u8> {
    let mut b = vec![version, 0, 0, 0];
    b.extend_from_slice(body);
    mp4_box(kind, &b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A live header whose `mvhd` has `mvhd_body` after its version and flags.
    fn header_with_mvhd(version: u8, mvhd_body: &[u8]) -> Vec<u8> {
        let mut tkhd = vec![0; 8];
        tkhd.extend(1u32.to_be_bytes());
        let mut mdhd = vec![0; 8];
        mdhd.extend(90_000u32.to_be_bytes());
        let mdia = [
            full_box(b"mdhd", 0, &mdhd),
            full_box(b"hdlr", 0, b"\0\0\0\0vide"),
        ]
        .concat();
        let trak = [full_box(b"tkhd", 0, &tkhd), mp4_box(b"mdia", &mdia)].concat();
        let mut moov = full_box(b"mvhd", version, mvhd_body);
        moov.extend(mp4_box(b"trak", &trak));
        moov.extend(mp4_box(b"mvex", &[]));
        let mut header = mp4_box(b"ftyp", b"isom");
        header.extend(mp4_box(b"moov", &moov));
        header
    }

    fn finish_one_fragment(header: &[u8]) -> Result<FinishedEnds, FinishError> {
        finish(
            header,
            &[MediaSpan::one_keyframe_cluster(100)],
            2_000_000_000,
        )
    }

    #[test]
    fn an_mvhd_cut_short_before_its_duration_is_malformed_in_either_version() {
        // Creation and modification times (8 bytes each in version 1, 4 in version 0) and
        // the timescale, but no duration.
        for (version, times) in [(1u8, 16usize), (0, 8)] {
            let mut body = vec![0; times];
            body.extend(1000u32.to_be_bytes());
            let got = finish_one_fragment(&header_with_mvhd(version, &body));
            assert!(
                matches!(got, Err(FinishError::Mp4(Mp4Error::Malformed(_)))),
                "version {version}: {got:?}"
            );
        }
    }

    #[test]
    fn an_mvhd_with_its_duration_gets_the_recordings_length_in_its_timescale() {
        // Version 1: 8-byte times and duration; version 0: 4-byte ones.
        for (version, times, width) in [(1u8, 16usize, 8usize), (0, 8, 4)] {
            let mut body = vec![0; times];
            body.extend(1000u32.to_be_bytes());
            body.extend(vec![0; width]);
            let ends = finish_one_fragment(&header_with_mvhd(version, &body)).unwrap();
            let at = ends
                .header
                .windows(4)
                .position(|w| w == b"mvhd")
                .expect("an mvhd");
            // Kind, version and flags, the two times, the timescale: then 2 s at 1000/s.
            let duration = &ends.header[at + 4 + 4 + times + 4..][..width];
            assert_eq!(
                duration,
                &2000u64.to_be_bytes()[8 - width..],
                "version {version}"
            );
        }
    }
}
