#!/usr/bin/env bash
# Issue 18, multi-task heads: one MiniLM (models/all-MiniLM-L6-v2) with two heads — sentiment (SST-2 sample) and
# topic (AG News sample) — against two single-task models, same data, same split (stratified 80/20, seed 18; the
# multi-task run splits each file exactly as a single-task run does), same settings: mean pooling, 48 tokens,
# batches of 32, 2 epochs, lr 1e-4, warmup 6%. The multi-task run sees every example of both tasks once per epoch
# (--task-mix proportional: one task per batch, drawn in proportion to size), so its compute equals the two single
# runs together. Prints each run's validation accuracy per task, its training time and peak RSS.
# Data: bench/experiments/make_multitask_data.py (N = 1,000 SST-2 phrases, 1,000 AG News articles; 800 train / 200 validation).
# usage: bench/experiments/multitask_sst2_agnews.sh [OUT_DIR] [extra train flags]     (OUT_DIR default runs/mt)
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$here/runs/mt}"; shift || true
bin="${FINETUNE_BIN:-$here/build/finetune}"
model="$here/models/all-MiniLM-L6-v2"
data="$out/data"
mkdir -p "$out"
[ -f "$data/dd_sentiment.tsv" ] || python3 "$here/bench/experiments/make_multitask_data.py" "$data"
common=(--model "$model" --pooling mean --seq-len 48 --batch-size 32 --epochs 2 --lr 1e-4 --warmup-ratio 0.06 --val-split 0.2
        --seed 18 --keep 1 --eval-every 0 --no-db)
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
run() {   # name, then train flags
  local name="$1"; shift
  rm -rf "$out/$name"
  local t0=$(date +%s.%N)
  "$bin" train "${common[@]}" "$@" --out "$out/$name" "${extra[@]}" > "$out/$name.stdout" 2> "$out/$name.log" || { cat "$out/$name.log" >&2; exit 1; }
  local t1=$(date +%s.%N)
  echo "$name: wall $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }') s; $(grep -o 'training time [0-9.]* s ([0-9.]* examples/s)' "$out/$name.log"); $(grep -o 'peak RSS: [0-9.]* MiB' "$out/$name.log")"
}
extra=("$@")
run sst2 --task classify --data "$data/sst2.tsv" --text-column sentence
run agnews --task classify --data "$data/agnews.tsv" --text-column text
run multi --task multi --tasks "sentiment=$data/sst2.tsv:sentence,topic=$data/agnews.tsv:text"
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
def last_eval(run):
    ev = [json.loads(l) for l in open(f"{out}/{run}/metrics.jsonl") if '"type": "eval"' in l or '"type":"eval"' in l]
    return ev[-1]
s, a, m = last_eval("sst2"), last_eval("agnews"), last_eval("multi")
print(f"{'model':<26}{'SST-2 acc':>10}{'AG News acc':>13}{'macro':>8}")
print(f"{'single-task SST-2':<26}{s['accuracy']:>10.4f}{'':>13}")
print(f"{'single-task AG News':<26}{'':>10}{a['accuracy']:>13.4f}")
print(f"{'two single-task (macro)':<26}{s['accuracy']:>10.4f}{a['accuracy']:>13.4f}{(s['accuracy'] + a['accuracy']) / 2:>8.4f}")
t = m["tasks"]
print(f"{'multi-task (2 heads)':<26}{t['sentiment']['accuracy']:>10.4f}{t['topic']['accuracy']:>13.4f}{m['accuracy']:>8.4f}")
PY
