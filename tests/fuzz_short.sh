#!/usr/bin/env bash
# tests/fuzz_short.sh [NAME...] — the short fuzz run of `make test`: builds the libFuzzer targets with clang in
# build-fuzz/ (as `make fuzz` does; incremental, so nothing is rebuilt when nothing changed) and runs each for
# FUZZ_TEST_SECONDS (3) on its seeds (fuzz/run.sh with FUZZ_SCRATCH=1). Each target is one test: a crash, leak,
# undefined behaviour, slow input, out-of-memory or hang fails it. Prints cmocka's summary lines, which
# tests/run_all.sh adds to the "N passed, N failed" count. Without clang or libFuzzer (scripts/setup.sh installs
# both) it prints a SKIP line and counts nothing.
#   env: MAKE (the make of the caller), FUZZ_BUILD (build-fuzz), FUZZ_OPT (the Makefile's), FUZZ_TEST_SECONDS
set -uo pipefail
build="${FUZZ_BUILD:-build-fuzz}"
secs="${FUZZ_TEST_SECONDS:-3}"
# the Makefile's FUZZ_OPT when run by hand
FUZZ_OPT="${FUZZ_OPT:--O1 -g -march=native -fno-omit-frame-pointer -fsanitize=address,undefined,fuzzer-no-link -Wno-unknown-warning-option}"
# no names: every target (fuzz/fuzz_<name>.c)
if [ $# -eq 0 ]; then set -- $(ls fuzz/fuzz_*.c | sed 's|fuzz/fuzz_\(.*\)\.c|\1|'); fi
n=$#

skip() { echo "SKIP fuzz: $1; the $n fuzz targets are not run (scripts/setup.sh installs clang and libclang-rt-dev)"; exit 0; }
command -v clang >/dev/null 2>&1 || skip "clang not found"
probe=$(mktemp -d "${TMPDIR:-/tmp}/ft_fuzzprobe.XXXXXX")
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }\n' > "$probe/p.c"
if ! clang -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" >/dev/null 2>&1; then
  rm -rf "$probe"; skip "clang cannot link -fsanitize=fuzzer,address,undefined (libFuzzer runtime missing)"
fi
rm -rf "$probe"

mkdir -p "$build"
blog="$build/make-fuzz-bins.log"
t0=$(date +%s)
if ! ${MAKE:-make} --no-print-directory BUILD="$build" CC=clang OPT="$FUZZ_OPT" fuzz-bins > "$blog" 2>&1; then
  tail -20 "$blog"
  echo "fuzz: building the targets with clang failed (log: $blog)"
  echo "[  FAILED  ] $n test(s), listed above:"
  exit 1
fi
echo "fuzz: targets built in $build/ ($(( $(date +%s) - t0 )) s); each runs $secs s"
out=$(FUZZ_SCRATCH=1 FUZZ_GRACE=60 FUZZ_INPUT_TIMEOUT=30 ./fuzz/run.sh "$build" "$secs" "$@")
printf '%s\n' "$out"
ok=$(printf '%s\n' "$out" | grep -c '^fuzz .* ok ')
bad=$((n - ok))
echo "[  PASSED  ] $ok test(s)."
if [ $bad -gt 0 ]; then echo "[  FAILED  ] $bad test(s), listed above:"; exit 1; fi
exit 0
