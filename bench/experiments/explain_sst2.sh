#!/usr/bin/env bash
# Attributions on a briefly trained SST-2 classifier (issue 12, item 5): all-MiniLM-L6-v2 (scripts/setup.sh links it
# as models/all-MiniLM-L6-v2) fine-tuned for 200 steps of batch 32 on ../shared/data/sst2/train.tsv (validation:
# test.tsv, the 872 GLUE SST-2 dev sentences), then exact Shapley values and Integrated Gradients for "I love AI".
# usage: bench/experiments/explain_sst2.sh [OUT_DIR] [TEXT]
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
data="${SST2_DIR:-$here/../shared/data/sst2}"
out="${1:-$here/runs/sst2-minilm-explain}"
text="${2:-I love AI}"
bin="${FINETUNE_BIN:-$here/build/finetune}"
[ -f "$here/models/all-MiniLM-L6-v2/model.safetensors" ] || { echo "models/all-MiniLM-L6-v2 is missing: run scripts/setup.sh" >&2; exit 1; }
if [ ! -d "$out/best" ]; then
  time "$bin" train --task classify --model "$here/models/all-MiniLM-L6-v2" --data "$data/train.tsv" \
    --val-data "$data/test.tsv" --text-column sentence --pooling mean --epochs 1 --max-steps 200 --batch-size 32 \
    --lr 1e-4 --warmup-ratio 0.06 --weight-decay 0.01 --seq-len 128 --eval-every 200 --best-metric accuracy --keep 1 \
    --out "$out"
fi
for method in shap ig; do
  "$bin" explain --model "$out/best" --text "$text" --method "$method"
  echo
done
"$bin" explain --model "$out/best" --text "$text" --html "$out/explain.html" >/dev/null
echo "wrote $out/explain.html"
