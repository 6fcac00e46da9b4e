#!/usr/bin/env bash
# Fairness gaps of a short-trained SST-2 classifier (all-MiniLM-L6-v2, 8,000 training phrases, 1 epoch) across a
# gender group DERIVED FROM THE TEXT (bench/experiments/make_sst2_gender.py: male / female / none by the gendered
# words a phrase contains), on SST-2 dev.tsv + test.tsv. Then the same classifier scores template and BOLD
# generations of the embedded stories260K (finetune bias).
# usage: bench/experiments/fairness_sst2_gender.sh [OUT_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$here/runs/fairness-sst2}"
ft="${FINETUNE_BIN:-$here/build/finetune}"
[ -f "$here/models/all-MiniLM-L6-v2/model.safetensors" ] || { echo "models/all-MiniLM-L6-v2 is missing: run scripts/setup.sh" >&2; exit 1; }
python3 "$here/bench/experiments/make_sst2_gender.py" "$out"
[ -f "$out/model/best/config.json" ] || time "$ft" train --task classify --model "$here/models/all-MiniLM-L6-v2" \
  --data "$out/train.tsv" --val-split 0.05 --text-column sentence --pooling mean --epochs 1 --batch-size 32 --lr 1e-4 \
  --warmup-ratio 0.06 --weight-decay 0.01 --seq-len 64 --eval-every 0 --best-metric accuracy --keep 1 --out "$out/model"
time "$ft" eval --model "$out/model/best" --data "$out/eval_gender.tsv" --text-column sentence --group-column group | tee "$out/eval_gender.txt"
"$ft" eval --model "$out/model/best" --data "$out/eval_gender.tsv" --text-column sentence --group-column group --json > "$out/eval_gender.json"
