#!/usr/bin/env bash
# Every test kiroku has, on a fresh Debian 12 machine as root: installs what is missing, then
# formatting, lints and the whole test suite.
set -euo pipefail
# rustup installs cargo under ~/.cargo/bin, which a non-login shell may not have on PATH.
export PATH="$HOME/.cargo/bin:$PATH"
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --quiet 2>&1
