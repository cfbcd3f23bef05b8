//! Which browsers may not play a recording as recorded. kiroku never transcodes, so a
//! recording of H.264 in Matroska (Chrome's hardware encoder) or of HEVC (an iPhone) is kept as
//! it came; the interview's status says where it may not play, so a recruiter is not left with
//! a blank player and an operator can ask the front-end for another format.
//!
//! The table is what the browsers' own documentation and release notes state for `<video>`
//! playback as of 2026, kept conservative: "may not play" where support depends on the
//! version, the operating system or a hardware decoder. The README carries the same table.

use serde::Serialize;

use crate::segment::Container;
use crate::vocab::Codec;

/// The browsers a recruiter opens recordings in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Browser {
    Chrome,
    Edge,
    Firefox,
    Safari,
}

/// One browser that may not play the recording, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MayNotPlay {
    pub browser: Browser,
    pub why: &'static str,
}

/// What the interview's status says about playing its recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Playback {
    pub content_type: String,
    pub codecs: Vec<Codec>,
    /// Empty when every browser in [`Browser`] plays it in current versions.
    pub may_not_play_in: Vec<MayNotPlay>,
}

const MATROSKA: &str = "Matroska is not a web format: only Chromium-based browsers play it";
const WEBM_SAFARI: &str = "Safari plays WebM only from macOS 11.3 and iOS 15 on";
const HEVC_FIREFOX: &str = "Firefox does not play HEVC (H.265) on most systems";
const HEVC_CHROMIUM: &str = "plays HEVC (H.265) only where the machine has a hardware decoder";
const AV1_SAFARI: &str = "Safari plays AV1 only on devices with an AV1 hardware decoder (iPhone 15 Pro, M3 Macs and later)";
const VP9_MP4_SAFARI: &str = "Safari does not play VP9 inside MP4";
const OPUS_MP4_SAFARI: &str = "Safari plays Opus inside MP4 only from Safari 17 on";

/// The browsers that may not play a recording of `content_type` (which names its container)
/// holding `codecs`.
pub fn playback(content_type: &str, codecs: &[Codec]) -> Playback {
    let container = Container::of(content_type).unwrap_or_default();
    use Browser::*;
    let mut may_not = Vec::new();
    let mut add = |browser, why| {
        if !may_not.iter().any(|m: &MayNotPlay| m.browser == browser) {
            may_not.push(MayNotPlay { browser, why });
        }
    };
    let webm = crate::segment::bare_content_type(content_type).ends_with("/webm");
    match container {
        Container::Matroska if !webm => {
            add(Firefox, MATROSKA);
            add(Safari, MATROSKA);
        }
        Container::Matroska => add(Safari, WEBM_SAFARI),
        Container::Mp4 => {}
    }
    for codec in codecs {
        match (codec, container) {
            (Codec::H265, _) => {
                add(Firefox, HEVC_FIREFOX);
                add(Chrome, HEVC_CHROMIUM);
                add(Edge, HEVC_CHROMIUM);
            }
            (Codec::Av1, _) => add(Safari, AV1_SAFARI),
            (Codec::Vp9, Container::Mp4) => add(Safari, VP9_MP4_SAFARI),
            (Codec::Opus, Container::Mp4) => add(Safari, OPUS_MP4_SAFARI),
            _ => {}
        }
    }
    Playback {
        content_type: content_type.to_string(),
        codecs: codecs.to_vec(),
        may_not_play_in: may_not,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn browsers(p: &Playback) -> Vec<Browser> {
        p.may_not_play_in.iter().map(|m| m.browser).collect()
    }

    #[test]
    fn safaris_h264_and_aac_in_mp4_play_everywhere() {
        let p = playback("video/mp4", &[Codec::H264, Codec::Aac]);
        assert!(p.may_not_play_in.is_empty(), "{p:?}");
    }

    #[test]
    fn chromes_h264_in_matroska_may_not_play_in_firefox_or_safari() {
        let p = playback("video/x-matroska", &[Codec::H264, Codec::Opus]);
        assert_eq!(browsers(&p), vec![Browser::Firefox, Browser::Safari]);
    }

    #[test]
    fn hevc_is_flagged_once_per_browser_and_av1_only_for_safari() {
        let p = playback("video/mp4", &[Codec::H265, Codec::Opus]);
        assert_eq!(
            browsers(&p),
            vec![
                Browser::Firefox,
                Browser::Chrome,
                Browser::Edge,
                Browser::Safari
            ]
        );
        let p = playback("video/webm", &[Codec::Av1, Codec::Opus]);
        assert_eq!(browsers(&p), vec![Browser::Safari]);
        assert_eq!(
            p.may_not_play_in[0].why, WEBM_SAFARI,
            "the first reason stands"
        );
    }
}
