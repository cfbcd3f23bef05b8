#!/usr/bin/env bash
# How many live interviews N kiroku nodes on one PostgreSQL catalog hold (issue 15's measure):
# `scripts/bench-nodes.sh NODES STREAMS [ARGS…]` starts a throwaway PostgreSQL cluster, NODES
# `kiroku serve` processes sharing it (each its own data dir, one keys folder, the first
# node's secrets), runs `kiroku bench streams` spreading STREAMS over them, and stops it all.
# Extra ARGS go to the bench (e.g. `--ramp-seconds 5`). Uses the release build.
#
# NODE_CPUS=0.5 gives each node that share of one core (a cgroup's CPU quota), PostgreSQL
# and the load generator unbounded: on one small machine, nodes of equal size whose sum
# fits beside the database, so what two nodes hold against one measures the shared
# catalog, not the machine's cores. `BENCH_PG_STATS=1` prints the catalog's statements by
# the time they took (pg_stat_statements).
set -euo pipefail
nodes=${1:?NODES}
streams=${2:?STREAMS}
shift 2
cd "$(dirname "$0")/.."
bin=./target/release/kiroku
[ -x "$bin" ] || cargo build --release --quiet
root=/tmp/kiroku-bench-nodes
pg=$root/pg
port=5441
pids=()
cgroups=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for g in "${cgroups[@]}"; do rmdir "$g" 2>/dev/null || true; done
  bash scripts/pg-cluster.sh stop "$pg"
}
trap cleanup EXIT
rm -rf "$root"
mkdir -p "$root"
[ -n "${BENCH_PG_STATS:-}" ] && export PG_CLUSTER_OPTS="-c shared_preload_libraries=pg_stat_statements"
bash scripts/pg-cluster.sh start "$pg" "$port"
psql() { runuser -u postgres -- psql -q -h 127.0.0.1 -p "$port" -U postgres "$@"; }
psql -c "CREATE DATABASE kiroku" -c "CREATE DATABASE kiroku_keys"
[ -n "${BENCH_PG_STATS:-}" ] && psql -d kiroku -c "CREATE EXTENSION pg_stat_statements"
export KIROKU_CATALOG=postgres://postgres@127.0.0.1:$port/kiroku
export KIROKU_KEYS__DATABASE=postgres://postgres@127.0.0.1:$port/kiroku_keys
export KIROKU_KEYS__DIR=$root/keys
export KIROKU_SERVICE_TOKEN=bench-service-token-0123456789abcdef
export KIROKU_OPERATOR_TOKEN=bench-operator-token-0123456789abcdef
export KIROKU_LIMITS__MAX_CONCURRENT_INTERVIEWS=$((streams + 16))
export KIROKU_LOG=${KIROKU_LOG:-kiroku=warn}
urls=()
for i in $(seq 1 "$nodes"); do
  data=$root/node$i
  mkdir -p "$data"
  if [ "$i" -gt 1 ]; then cp -r "$root/node1/secrets" "$data/secrets"; fi
  listen=127.0.0.1:$((18080 + i))
  if [ -n "${NODE_CPUS:-}" ]; then
    group=/sys/fs/cgroup/cpu/kiroku-bench-node$i
    mkdir -p "$group"
    cgroups+=("$group")
    # The kernel's default 100 ms period, as a container's CPU limit has.
    echo 100000 >"$group/cpu.cfs_period_us"
    awk -v c="$NODE_CPUS" 'BEGIN { printf "%d\n", c * 100000 }' >"$group/cpu.cfs_quota_us"
    # The node starts inside its group (and so does every thread it makes).
    sh -c 'echo $$ >"$1/cgroup.procs"; shift; exec "$@"' sh "$group" \
      "$bin" --data-dir "$data" serve --listen "$listen" >"$root/node$i.log" 2>&1 &
  else
    "$bin" --data-dir "$data" serve --listen "$listen" >"$root/node$i.log" 2>&1 &
  fi
  pids+=($!)
  for _ in $(seq 1 100); do
    curl -sf "http://$listen/healthz" >/dev/null 2>&1 && break
    sleep 0.2
  done
  curl -sf "http://$listen/healthz" >/dev/null || { echo "node $i did not start"; cat "$root/node$i.log"; exit 1; }
  urls+=("http://$listen")
done
"$bin" --data-dir "$root/bench" bench streams --streams "$streams" \
  --url "$(IFS=,; echo "${urls[*]}")" \
  --service-token "$KIROKU_SERVICE_TOKEN" --operator-token "$KIROKU_OPERATOR_TOKEN" \
  --media fixtures/chromium-mediarecorder.webm "$@"
if [ -n "${BENCH_PG_STATS:-}" ]; then
  # Where the catalog's time went: the statements by total time, lock waits included.
  psql -d kiroku -c "SELECT calls, round(total_exec_time) AS ms, round(mean_exec_time::numeric, 3) AS mean_ms,
    left(regexp_replace(query, '\\s+', ' ', 'g'), 90) AS query
    FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 25"
fi
