#!/usr/bin/env bash
# Every test kiroku has, on a fresh Debian 12 machine as root: installs what is missing, then
# formatting, lints and the whole test suite.
set -euo pipefail
# rustup installs cargo under ~/.cargo/bin, which a non-login shell may not have on PATH.
export PATH="$HOME/.cargo/bin:$PATH"
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The WHIP and page tests run a real headless Chromium (its fake camera and microphone);
# the pages' Japanese needs a Japanese font to be read in their screenshots.
browser_packages=()
command -v chromium >/dev/null 2>&1 || browser_packages+=(chromium)
dpkg -s fonts-ipafont-gothic >/dev/null 2>&1 || browser_packages+=(fonts-ipafont-gothic)
if [ ${#browser_packages[@]} -gt 0 ]; then
  echo "test: installing ${browser_packages[*]} (for the browser tests)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${browser_packages[@]}"
fi
# The finished-recording tests ask players' own tools what a recording's duration is:
# ffprobe (Debian's ffmpeg) and gst-discoverer-1.0 (gstreamer1.0-plugins-base-apps).
probe_packages=()
command -v ffprobe >/dev/null 2>&1 || probe_packages+=(ffmpeg)
command -v gst-discoverer-1.0 >/dev/null 2>&1 || probe_packages+=(gstreamer1.0-plugins-base-apps)
if [ ${#probe_packages[@]} -gt 0 ]; then
  echo "test: installing ${probe_packages[*]} (for the finished-recording tests)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${probe_packages[@]}"
fi
# The PKCS#11 keyring tests keep epoch keys in a SoftHSM2 token (Debian's softhsm2).
if ! command -v softhsm2-util >/dev/null 2>&1; then
  echo "test: installing softhsm2 (for the PKCS#11 keyring tests)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends softhsm2
fi
# The S3 tests run Garage, a real S3-compatible store, on loopback. Built from crates.io once
# (about 10 minutes on two cores) and kept in ~/.cargo/bin.
if ! command -v garage >/dev/null 2>&1; then
  echo "test: installing garage (cargo install garage --locked); this takes a while, once"
  cargo install garage --locked --quiet
fi
# The PostgreSQL catalog's tests run on a throwaway cluster on loopback (Debian's postgresql,
# installed when missing), removed when this script ends.
pg_dir=/tmp/kiroku-test-postgres
pg_port=5439
bash scripts/pg-cluster.sh start "$pg_dir" "$pg_port"
trap 'bash scripts/pg-cluster.sh stop "$pg_dir"' EXIT
export TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
# The fuzz targets (fuzz/, a workspace of their own, locked to kiroku's Cargo.lock plus
# libfuzzer-sys) still compile against this kiroku: checked here, not built with libFuzzer's
# instrumentation, which takes 12 minutes on these machines (README: Fuzzing). Their saved
# inputs run through the same bodies in the suite (tests/fuzz_corpus.rs).
cargo check --quiet --manifest-path fuzz/Cargo.toml --target-dir target --bins
cargo test --quiet 2>&1
# The whole suite again, every test's catalog (and wrapped keys, and audit log) on PostgreSQL.
echo "test: the whole suite again on the PostgreSQL catalog"
TEST_CATALOG=postgres cargo test --quiet 2>&1
