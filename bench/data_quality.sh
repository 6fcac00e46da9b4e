#!/usr/bin/env bash
# bench/data_quality.sh [FINETUNE] [SHARED] — wall time of `finetune data inspect` and `finetune data clean` on the
# whole of SST-2 train (+ dev as the validation file, so the overlap search runs too) and the Bitext
# customer-support CSV, each run 3 times (the best is printed), with the load average. Needs ../shared/data.
set -euo pipefail
bin="${1:-build/finetune}"
shared="${2:-../shared}"
sst="$shared/data/sst2"
bitext="$shared/data/bitext_customer_support/Bitext_Sample_Customer_Support_Training_Dataset.csv"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ft_dq_bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
best() {  # best of 3 wall times (seconds) of the command
  local b=""
  for _ in 1 2 3; do
    local t0 t1
    t0=$(date +%s.%N); "$@" > /dev/null 2>&1; t1=$(date +%s.%N)
    b=$(python3 -c "t=$t1-$t0; b='$b'; print(min(t, float(b)) if b else t)")
  done
  printf '%.2f' "$b"
}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-58s %8s\n' "command" "best s"
printf '%-58s %8s\n' "inspect sst2 train (60,614) --valid dev (6,735)" "$(best "$bin" data inspect "$sst/train.tsv" --valid "$sst/dev.tsv" --quiet --json "$tmp/r.json" --html "$tmp/r.html")"
printf '%-58s %8s\n' "clean sst2 train: lower,punct,space,stopwords,stem,neardup" "$(best "$bin" data clean "$sst/train.tsv" --out "$tmp/c.tsv" --steps lower,punct,space,stopwords,stem,neardup)"
printf '%-58s %8s\n' "inspect bitext (4,514 records, multi-line CSV) --label-column intent" "$(best "$bin" data inspect "$bitext" --label-column intent --quiet --json "$tmp/b.json")"
"$bin" data inspect "$sst/train.tsv" --valid "$sst/dev.tsv" --json "$tmp/r.json" 2>&1 | grep -E "duplicates|overlap|quality"
