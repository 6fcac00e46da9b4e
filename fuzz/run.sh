#!/usr/bin/env bash
# fuzz/run.sh BUILD SECONDS NAME... — runs each libFuzzer target for SECONDS on its seeds (fuzz/corpus/NAME,
# read-only) plus what earlier runs found (BUILD/corpus/NAME); crashes, leaks, timeouts (> 10 s per input) and
# out-of-memory inputs (> 2 GB) go to BUILD/crashes/NAME-*. Prints a line per target and exits 1 if any failed.
set -uo pipefail
build="$1"; secs="$2"; shift 2
mkdir -p "$build/crashes"
failed=0
for name in "$@"; do
  mkdir -p "$build/corpus/$name"
  log="$build/crashes/$name.log"
  "$build/fuzz/$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="$build/crashes/$name-" "$build/corpus/$name" "fuzz/corpus/$name" > "$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  if [ $rc -eq 0 ]; then
    printf 'fuzz %-14s ok      %8s runs, %s\n' "$name" "${runs:-?}" "${cov:-?}"
  else
    failed=1
    printf 'fuzz %-14s FAILED  %s (input: %s)\n' "$name" "$(grep -m1 -o 'ERROR: [A-Za-z]*: [A-Za-z-]*' "$log")" \
      "$(ls -t "$build/crashes/$name-"* 2>/dev/null | head -1)"
  fi
done
exit $failed
