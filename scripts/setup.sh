#!/usr/bin/env bash
# Installs what kiroku needs on a fresh Debian 12 machine (as root), only when it is missing:
# GStreamer 1.22's development files and plugins, SQLite is bundled by rusqlite, a C compiler,
# pkg-config, and the Rust toolchain's components used by the checks.
set -euo pipefail
# rustup installs cargo under ~/.cargo/bin, which a non-login shell may not have on PATH.
export PATH="$HOME/.cargo/bin:$PATH"

packages=(
  pkg-config build-essential curl ca-certificates python3
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  # WHIP ingest: webrtcbin's library headers (gstreamer-webrtc-1.0) and its ICE agent (libnice)
  libgstreamer-plugins-bad1.0-dev gstreamer1.0-nice
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-tools
  # avdec_aac: the analysis of Safari's AAC audio (Debian's -good and -bad have no AAC decoder)
  gstreamer1.0-libav
)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is missing; kiroku needs the machine's Rust toolchain (rustup)" >&2
  exit 1
fi
for c in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c" || true
done
