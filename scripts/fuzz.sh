#!/usr/bin/env bash
# Fuzzes every parser of untrusted bytes (fuzz/, cargo fuzz with libFuzzer), each target for
# SECONDS (default 1800) or MAX_RUNS executions (default 10 million), whichever comes first,
# two at a time (one per core). Installs cargo-fuzz when missing. Seeds each corpus from the
# fixtures (fuzz/seeds.sh), then prints one line per target: executions, seconds, corpus size,
# and what this run found (crashes and slow units, saved in fuzz/artifacts/<target>/). Exits
# non-zero when anything was found or a target did not run to its end. A crash found becomes a regression: copy
# it to fuzz/regressions/<target>/<fault-name> and tests/fuzz_corpus.rs runs it in the suite.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
cd "$(dirname "$0")/.."
seconds=${1:-1800}
shift || true
max_runs=${MAX_RUNS:-10000000}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(ebml_cutter mp4_cutter input_scan webm_remuxer sealed_object manifest byte_range
           finished_header whip_offer receipt audit_log)
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  cargo install cargo-fuzz --locked --quiet
fi
# libFuzzer's instrumentation needs nightly's -Z flags; the machines have a nightly toolchain
# beside stable. Where there is none, stable is told to accept them.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  fuzz=(cargo +nightly fuzz)
else
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
fi
bash fuzz/seeds.sh
# Media targets read whole streams: longer inputs than libFuzzer's default 4 KiB.
max_len() {
  case "$1" in
    ebml_cutter|mp4_cutter|input_scan|webm_remuxer) echo 65536 ;;
    # Three 64 KiB chunks and a part: the sealed seeds are two chunks long.
    sealed_object) echo 200000 ;;
    *) echo 8192 ;;
  esac
}
dict() {
  case "$1" in
    ebml_cutter|webm_remuxer|finished_header) echo "-dict=fuzz/dicts/ebml.dict" ;;
    mp4_cutter) echo "-dict=fuzz/dicts/mp4.dict" ;;
    whip_offer) echo "-dict=fuzz/dicts/sdp.dict" ;;
    byte_range) echo "-dict=fuzz/dicts/range.dict" ;;
    *) echo "" ;;
  esac
}
# Optimised, with debug assertions and overflow checks on: an overflow is a finding too.
"${fuzz[@]}" build --fuzz-dir fuzz --sanitizer none --debug-assertions --codegen-units 16
mkdir -p fuzz/logs
rm -f fuzz/logs/*.found fuzz/logs/*.failed
run() {
  local t=$1
  local log=fuzz/logs/$t.log
  mkdir -p "fuzz/artifacts/$t"
  local began=$SECONDS status=0 before
  # Earlier runs' findings stay in fuzz/artifacts/ until someone files them away.
  before=$(find "fuzz/artifacts/$t" -type f | wc -l)
  # shellcheck disable=SC2046
  "${fuzz[@]}" run --fuzz-dir fuzz --sanitizer none --debug-assertions --codegen-units 16 "$t" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -runs="$max_runs" -max_len="$(max_len "$t")" $(dict "$t") \
    -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1 >"$log" 2>&1 || status=$?
  local runs secs found corpus
  secs=$((SECONDS - began))
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  # Crashes, timeouts and slow units (over 10 s, a denial of service) alike.
  found=$(( $(find "fuzz/artifacts/$t" -type f | wc -l) - before ))
  corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
  printf '%-16s %12s executions %6ss  corpus %5s  findings %s\n' "$t" "${runs:-0}" "$secs" "$corpus" "$found"
  if [ "$found" -gt 0 ]; then
    touch "fuzz/logs/$t.found"
  elif [ "$status" -ne 0 ]; then
    echo "fuzz: $t stopped with exit $status and left no finding: see $log" >&2
    touch "fuzz/logs/$t.failed"
  fi
}
# Two at a time, one per core: the next target starts as soon as either ends.
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge 2 ]; then
    wait -n || true
    running=$((running - 1))
  fi
  run "$t" &
  running=$((running + 1))
done
wait
shopt -s nullglob
found=(fuzz/logs/*.found)
failed=(fuzz/logs/*.failed)
if [ ${#found[@]} -gt 0 ]; then
  echo "fuzz: findings for ${#found[@]} target(s) in fuzz/artifacts/ (logs in fuzz/logs/)" >&2
fi
if [ ${#found[@]} -gt 0 ] || [ ${#failed[@]} -gt 0 ]; then
  exit 1
fi
