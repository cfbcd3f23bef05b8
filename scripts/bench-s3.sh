#!/usr/bin/env bash
# `kiroku bench --s3-region` against Garage on loopback: starts a one-node Garage with a
# generated config under a temporary folder, makes a bucket and a key, and runs the S3 figures
# on a release build. Garage comes from `cargo install garage --locked` (scripts/test.sh does it).
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-10}
W=$(mktemp -d /tmp/kiroku-bench-s3.XXXXXX)
G="garage -c $W/garage.toml"
cat > "$W/garage.toml" <<TOML
metadata_dir = "$W/meta"
data_dir = "$W/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:39911"
rpc_public_addr = "127.0.0.1:39911"
rpc_secret = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:39910"
root_domain = ".s3.garage.localhost"
TOML
$G server > "$W/garage.log" 2>&1 &
GARAGE=$!
trap 'kill $GARAGE 2>/dev/null || true' EXIT
for _ in $(seq 100); do $G status >/dev/null 2>&1 && break; sleep 0.2; done
$G layout assign -z dc1 -c 1G "$($G node id -q | cut -d@ -f1)" >/dev/null
$G layout apply --version 1 >/dev/null
for _ in $(seq 50); do $G bucket create kiroku-bench >/dev/null 2>&1 && break; sleep 0.3; done
KEY=GK00000000000000000000beef
SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
$G key import --yes "$KEY" "$SECRET" >/dev/null
$G bucket allow --read --write kiroku-bench --key "$KEY" >/dev/null
cat > "$W/kiroku.toml" <<TOML
default_region = "bench"
[regions.bench]
country = "JP"
backend = "s3"
master_key_file = "keys/bench.key"
[regions.bench.s3]
bucket = "kiroku-bench"
region = "garage"
endpoint = "http://127.0.0.1:39910"
path_style = true
access_key_id = "$KEY"
secret_access_key = "$SECRET"
TOML
cargo build --release --quiet
KIROKU_LOG=warn ./target/release/kiroku --config "$W/kiroku.toml" --data-dir "$W/kiroku" \
  bench --s3-region bench --rounds "$ROUNDS"
