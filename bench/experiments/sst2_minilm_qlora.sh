#!/usr/bin/env bash
# QLoRA on SST-2 with the real all-MiniLM-L6-v2: the blocks' linear weights stored as NF4 (bitsandbytes
# 4-bit NormalFloat, double-quantized scales; --quant int8 for int8 rows), frozen; LoRA r 8 / alpha 16 on
# query, value and the classifier trained — the recorded LoRA run's settings (BENCHMARKS.md), 1 epoch.
# Data as bench/experiments/sst2_minilm.sh: train.tsv to train, dev.tsv to validate and pick best/,
# test.tsv (the GLUE SST-2 dev set, 872 sentences) evaluated once with best/.
# usage: bench/experiments/sst2_minilm_qlora.sh [OUT_DIR] [extra finetune train flags, e.g. --quant int8]
set -euo pipefail
# On a shared machine (more runnable threads than cores) OpenMP threads that spin at barriers waiting for a
# descheduled peer waste most of the time (measured: 92% of the samples in libgomp's spin loop); sleeping waits
# cost nothing measurable when the machine is free.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
here="$(cd "$(dirname "$0")/../.." && pwd)"
data="${SST2_DIR:-$here/../shared/data/sst2}"
out="${1:-$here/runs/sst2-minilm-qlora}"; shift || true
[ -f "$here/models/all-MiniLM-L6-v2/model.safetensors" ] || { echo "models/all-MiniLM-L6-v2 is missing: run scripts/setup.sh" >&2; exit 1; }
time "${FINETUNE_BIN:-$here/build/finetune}" train --task classify --method qlora --quant nf4 \
  --lora-r 8 --lora-alpha 16 --lora-dropout 0.1 --model "$here/models/all-MiniLM-L6-v2" \
  --data "$data/train.tsv" --val-data "$data/dev.tsv" --test-data "$data/test.tsv" --text-column sentence \
  --pooling mean --epochs 1 --batch-size 32 --lr 1e-3 --warmup-ratio 0.06 --seq-len 128 \
  --eval-every 600 --best-metric accuracy --keep 1 --out "$out" "$@"
