#!/usr/bin/env bash
# `kiroku bench` on one minute of media: makes a 60 s WebM (VP8 + Opus) and a 60 s fragmented
# MP4 (H.264 + AAC, one keyframe every 10 s, as Safari records) in a temporary folder, then
# runs the bench with both. The fixtures' 8-10 s files are dominated by what every interview
# costs once (its key, catalog rows, audit entries, final manifest); a minute shows the cost
# per media minute that the target is about.
#   bash scripts/bench-media.sh [ROUNDS] [WHIP_ROUNDS]   (each WHIP round replays the minute twice)
# Needs a release build (cargo build --release) and gstreamer1.0-libav (avenc_aac).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-20}"
WHIP_ROUNDS="${2:-1}"
W=$(mktemp -d /tmp/kiroku-bench-media.XXXXXX)
trap 'rm -rf "$W"' EXIT
video() { echo "videotestsrc num-buffers=1800 pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1"; }
gst-launch-1.0 -q $(video) ! vp8enc target-bitrate=200000 keyframe-max-dist=60 deadline=1 cpu-used=4 \
  ! queue ! webmmux name=m ! filesink location="$W/minute.webm" \
  audiotestsrc num-buffers=3000 samplesperbuffer=960 ! audio/x-raw,rate=48000,channels=1 \
  ! opusenc ! queue ! m. >/dev/null
gst-launch-1.0 -q $(video) ! openh264enc gop-size=300 bitrate=200000 ! h264parse \
  ! queue ! mp4mux name=m fragment-duration=1000 ! filesink location="$W/minute.mp4" \
  audiotestsrc num-buffers=2813 samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=1 \
  ! avenc_aac ! aacparse ! queue ! m. >/dev/null 2>&1
./target/release/kiroku --data-dir "$W/data" bench --rounds "$ROUNDS" --whip-rounds "$WHIP_ROUNDS" \
  --media "$W/minute.webm" --media "$W/minute.mp4" 2>/dev/null
