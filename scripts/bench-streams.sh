#!/usr/bin/env bash
# `kiroku bench streams` with a real browser recording: headless Chromium records a minute of
# its fake camera and microphone as VP9 + Opus WebM at about 1 Mbit/s (640x480), then the
# release build drives N concurrent real-time streams of it against a `kiroku serve` it starts.
#   bash scripts/bench-streams.sh [N] [MIME]     (N defaults to 1000)
# Needs a release build (cargo build --release) and chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-1000}"
MIME="${2:-video/webm;codecs=vp9,opus}"
W=$(mktemp -d /tmp/kiroku-bench-streams.XXXXXX)
trap 'rm -rf "$W"' EXIT
. fixtures/recorder/record-chromium.sh
(cd "$W" && RECORD_MS=60000 RECORD_QUERY="&vbps=1000000&w=640&h=480" record_chromium minute.webm "$MIME")
ulimit -n "$(ulimit -Hn)"
./target/release/kiroku bench streams --streams "$N" --media "$W/minute.webm" --ramp-seconds 20
