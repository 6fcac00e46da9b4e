#!/usr/bin/env bash
# The 2 -> 3 class move: start from the SST-2 model (2 labels: its classifier is re-initialised, with a
# message) and fine-tune it on a 3-class topic set — AG News (../shared/data/agnews_test/test.tsv) restricted to
# World / Sports / Business (5,700 articles), 80/20 stratified train/validation split.
# usage: bench/experiments/agnews3_from_sst2.sh [SST2_RUN_DIR] [OUT_DIR] [extra flags]
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
src="${1:-$here/runs/sst2-minilm}"; out="${2:-$here/runs/agnews3-from-sst2}"; shift 2 || shift $# || true
model="$src/best"; [ -d "$model" ] || model="$src/final"
[ -f "$model/config.json" ] || { echo "$model: no model; run bench/experiments/sst2_minilm.sh first" >&2; exit 1; }
mkdir -p "$here/runs"
tsv="$here/runs/agnews3.tsv"
{ printf 'text\tlabel\n'; awk -F'\t' '$2=="World"||$2=="Sports"||$2=="Business"' "${AGNEWS:-$here/../shared/data/agnews_test/test.tsv}"; } > "$tsv"
time "${FINETUNE_BIN:-$here/build/finetune}" train --task classify --model "$model" --data "$tsv" --val-split 0.2 \
  --pooling mean --epochs 2 --batch-size 32 --lr 1e-4 --warmup-ratio 0.06 --seq-len 128 --best-metric accuracy --keep 1 \
  --out "$out" "$@"
