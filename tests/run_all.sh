#!/usr/bin/env bash
# Runs every test binary given, each with a time limit, and sums cmocka's counts.
# Ends with the line "N passed, N failed".
set -u
passed=0; failed=0; bad_bins=()
for t in "$@"; do
  echo "=== $(basename "$t")"
  out=$(timeout "${FT_TEST_TIMEOUT:-900}" "$t" 2>&1); rc=$?
  printf '%s\n' "$out"
  p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
  f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
  if [ $rc -ne 0 ]; then
    bad_bins+=("$(basename "$t") (exit $rc)")
    [ -z "$f" ] && failed=$((failed + 1))
  fi
done
echo
[ ${#bad_bins[@]} -gt 0 ] && echo "failing test programs: ${bad_bins[*]}"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ] && [ ${#bad_bins[@]} -eq 0 ]
