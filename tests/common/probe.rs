//! What players' own tools say about a recording file: `ffprobe` (FFmpeg, what Chromium's
//! demuxers are built on) and `gst-discoverer-1.0` (GStreamer). Both must be installed
//! (`scripts/test.sh` installs Debian's `ffmpeg` and `gstreamer1.0-plugins-base-apps`); a test
//! that cannot run them fails.

use std::path::Path;
use std::process::Command;

/// The duration `ffprobe` reads from the container, in seconds.
pub fn ffprobe_seconds(path: &Path) -> f64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration"])
        .args(["-of", "default=noprint_wrappers=1:nokey=1"])
        .arg(path)
        .output()
        .expect("ffprobe runs (Debian's ffmpeg)");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    text.parse()
        .unwrap_or_else(|_| panic!("ffprobe finds no duration in {}: {text:?}", path.display()))
}

/// The duration `gst-discoverer-1.0` reports, in seconds.
pub fn discoverer_seconds(path: &Path) -> f64 {
    let out = Command::new("gst-discoverer-1.0")
        .arg(path)
        .output()
        .expect("gst-discoverer-1.0 runs (Debian's gstreamer1.0-plugins-base-apps)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "gst-discoverer-1.0 {}: {text}",
        path.display()
    );
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Duration: "))
        .unwrap_or_else(|| panic!("gst-discoverer-1.0 reports no duration: {text}"));
    // H:MM:SS.nnnnnnnnn
    let mut parts = line.trim().split(':');
    let mut seconds = 0.0;
    for _ in 0..3 {
        let p: f64 = parts
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unreadable duration {line:?}"));
        seconds = seconds * 60.0 + p;
    }
    seconds
}

/// Both tools report `expected` seconds, within half a second.
pub fn assert_duration(path: &Path, expected: f64) {
    for (tool, got) in [
        ("ffprobe", ffprobe_seconds(path)),
        ("gst-discoverer-1.0", discoverer_seconds(path)),
    ] {
        assert!(
            (got - expected).abs() <= 0.5,
            "{tool} reports {got} s for {}, the media lasts {expected} s",
            path.display()
        );
    }
}
