#!/usr/bin/env bash
# fuzz/run.sh BUILD SECONDS NAME... — runs each libFuzzer target for SECONDS on its seeds (fuzz/corpus/NAME,
# read-only) plus what earlier runs found (BUILD/corpus/NAME); crashes, leaks, undefined behaviour (UBSan halts on
# the first report), timeouts (> FUZZ_INPUT_TIMEOUT, 10 s, per input) and out-of-memory inputs (> 2 GB) go to BUILD/crashes/NAME-*.
# A target that does not stop within SECONDS + FUZZ_GRACE (120) s (a hang outside an input, e.g. at exit) is killed
# and failed.
# Prints a line per target and exits 1 if any failed.
#   FUZZ_SCRATCH=1   new inputs go to an emptied BUILD/scratch/NAME instead of BUILD/corpus/NAME (the short
#                    run of `make test`: the same few seconds each time, whatever earlier campaigns found), the
#                    log to BUILD/scratch/NAME.log (BUILD/crashes/NAME.log otherwise)
set -uo pipefail
build="$1"; secs="$2"; shift 2
mkdir -p "$build/crashes"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
failed=0
for name in "$@"; do
  corpus="$build/corpus/$name"; log="$build/crashes/$name.log"
  if [ "${FUZZ_SCRATCH:-0}" = 1 ]; then corpus="$build/scratch/$name"; log="$build/scratch/$name.log"; rm -rf "$corpus"; fi
  mkdir -p "$corpus"
  start=$(date +%s)
  timeout -k 10 $((secs + ${FUZZ_GRACE:-120})) "$build/fuzz/$name" -max_total_time="$secs" -timeout="${FUZZ_INPUT_TIMEOUT:-10}" -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="$build/crashes/$name-" "$corpus" "fuzz/corpus/$name" > "$log" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  if [ $rc -eq 0 ]; then
    printf 'fuzz %-14s ok      %8s runs, %s, %d s\n' "$name" "${runs:-?}" "${cov:-?}" "$took"
  else
    failed=1
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then why="hung: killed after $took s"
    else why=$(grep -m1 -o -E 'ERROR: [A-Za-z]*: [A-Za-z-]*|runtime error: .*' "$log" || echo "exit $rc"); fi
    printf 'fuzz %-14s FAILED  %s (input: %s, log: %s)\n' "$name" "$why" \
      "$(ls -t "$build/crashes/$name-"* 2>/dev/null | head -1)" "$log"
  fi
done
exit $failed
