#!/usr/bin/env bash
# Issue 18, continual learning: the SST-2 model of bench/experiments/multitask_sst2_agnews.sh (OUT_DIR/sst2/final:
# MiniLM fine-tuned on 800 SST-2 phrases) fine-tuned further on another sentiment set — DailyDialog utterances
# whose emotion annotation reads as sentiment (make_multitask_data.py: happiness -> positive; anger, disgust, fear,
# sadness -> negative; 600, balanced) — and the old task measured before and after on 300 SST-2 dev sentences it
# never trained on (--eval-old). Three runs, same settings (2 epochs, batches of 32, lr 1e-4, 48 tokens):
#   plain       fine-tuning on the new data only
#   replay      --replay sst2.tsv --replay-ratio $REPLAY_RATIO (default 0.25: 8 of every 32 rows rehearse old SST-2
#               training phrases)
#   l2sp        --l2-sp $L2SP (default 1: penalty λ/2 |θ - θ0|^2 towards the SST-2 model)
# RUNS picks some of them (default "plain replay l2sp").
# Prints, per run, the old-task accuracy before -> after (forgetting) and the new task's validation accuracy.
# usage: bench/experiments/continual_sst2_dailydialog.sh [OUT_DIR] [extra train flags]     (OUT_DIR default runs/mt)
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$here/runs/mt}"; shift || true
bin="${FINETUNE_BIN:-$here/build/finetune}"
data="$out/data"
base="$out/sst2/final"
[ -f "$base/config.json" ] || { echo "$base: no SST-2 model; run bench/experiments/multitask_sst2_agnews.sh first" >&2; exit 1; }
l2sp="${L2SP:-1}"; ratio="${REPLAY_RATIO:-0.25}"; runs="${RUNS:-plain replay l2sp}"; lr="${LR:-1e-4}"; epochs="${EPOCHS:-2}"; tag="${CL_TAG:-}"   # CL_TAG: a suffix of the run directories
common=(--task classify --model "$base" --data "$data/dd_sentiment.tsv" --text-column sentence --pooling mean --seq-len 48
        --batch-size 32 --epochs "$epochs" --lr "$lr" --warmup-ratio 0.06 --val-split 0.2 --seed 18 --keep 1 --eval-every 0 --no-db
        --eval-old "$data/sst2_old_eval.tsv")
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
run() {
  local name="$1"; shift
  rm -rf "$out/cl$tag-$name"
  "$bin" train "${common[@]}" "$@" --out "$out/cl$tag-$name" > "$out/cl$tag-$name.stdout" 2> "$out/cl$tag-$name.log" || { cat "$out/cl$tag-$name.log" >&2; exit 1; }
  echo "$name: $(grep -o 'training time [0-9.]* s ([0-9.]* examples/s)' "$out/cl$tag-$name.log")"
}
for r in $runs; do
  case "$r" in
    plain) run plain "$@" ;;
    replay) run replay --replay "$data/sst2.tsv" --replay-ratio "$ratio" "$@" ;;
    l2sp) run l2sp --l2-sp "$l2sp" "$@" ;;
  esac
done
echo "lr $lr, $epochs epochs, --replay-ratio $ratio, --l2-sp $l2sp"
python3 - "$out" "$tag" $runs <<'PY'
import json, sys
out, tag, runs = sys.argv[1], sys.argv[2], sys.argv[3:]
print(f"{'run':<10}{'SST-2 before':>13}{'after':>8}{'forgetting':>12}{'new-task acc':>14}")
for name in runs:
    lines = [json.loads(l) for l in open(f"{out}/cl{tag}-{name}/metrics.jsonl")]
    f = [l for l in lines if l["type"] == "forgetting"][-1]
    ev = [l for l in lines if l["type"] == "eval"]
    print(f"{name:<10}{f['before']:>13.4f}{f['after']:>8.4f}{100 * f['forgetting']:>11.1f}p{ev[-1]['accuracy']:>14.4f}  (new task at step 0: {ev[0]['accuracy']:.4f})")
PY
