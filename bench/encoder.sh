#!/usr/bin/env bash
# bench/encoder.sh — encoder fine-tuning speed, finetune vs PyTorch, side by side on this machine:
# BertForSequenceClassification-shaped training steps (forward + backward + AdamW + clipping, dropout on)
# on the real all-MiniLM-L6-v2 (models/all-MiniLM-L6-v2), batches of B SST-2 sentences lengthened to
# exactly T tokens (each text is three SST-2 phrases joined, truncated at T), so both sides see B x T.
# usage: bench/encoder.sh [B] [T] [STEPS]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
B="${1:-32}"; T="${2:-64}"; STEPS="${3:-12}"
model="$here/models/all-MiniLM-L6-v2"
[ -f "$model/model.safetensors" ] || { echo "models/all-MiniLM-L6-v2 is missing: run scripts/setup.sh" >&2; exit 1; }
src="${SST2_TRAIN:-$here/../shared/data/sst2/train.tsv}"
[ -f "$src" ] || src="$here/tests/fixtures/classify/sst2_dev200.tsv"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
# long rows: three phrases per text (so that every row reaches T tokens), label of the first
awk -F'\t' 'BEGIN { n = 0 } NR>1 { t[n]=$1; l[n]=$2; n++ } END { print "sentence\tlabel"; for (i = 0; i + 2 < n && i < 3*4096; i += 3) print t[i] " " t[i+1] " " t[i+2] " " t[i] " " t[i+1] "\t" l[i] }' "$src" > "$tmp/long.tsv"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "shape: MiniLM-L6-H384 classifier, batch $B x $T tokens, $STEPS steps"
"$here/build/finetune" train --task classify --model "$model" --data "$tmp/long.tsv" --text-column sentence --val-split 0 \
  --seq-len "$T" --batch-size "$B" --max-steps "$STEPS" --no-group-by-length --lr 5e-5 --warmup-steps 0 --pooling cls \
  --keep 1 --out "$tmp/run" > /dev/null 2> "$tmp/ours.log" || { cat "$tmp/ours.log" >&2; exit 1; }
# median examples/s of the steps after the first two (which touch memory for the first time)
ours=$(grep '"type": "train"' "$tmp/run/metrics.jsonl" | sed 's/.*"examples_per_s": \([0-9.]*\).*/\1/' | tail -n +3 | sort -n | awk '{ v[NR]=$1 } END { print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2 }')
rss=$(grep '"type": "memory"' "$tmp/run/metrics.jsonl" | sed 's/.*"peak_rss_mib": \([0-9.]*\).*/\1/')
echo "finetune encoder-train: $ours examples/s; peak RSS $rss MiB"
if ! python3 -c "import torch, transformers" 2>/dev/null; then echo "PyTorch is not installed: scripts/setup.sh --python" >&2; exit 0; fi
theirs_out=$(python3 "$here/bench/pytorch_encoder_bench.py" --model "$model" --data "$tmp/long.tsv" --batch-size "$B" --seq-len "$T" --steps $((STEPS - 2)) 2>/dev/null)
echo "$theirs_out"
theirs=$(echo "$theirs_out" | sed -n 's/pytorch encoder-train: \([0-9.]*\).*/\1/p')
awk -v a="$ours" -v b="$theirs" 'BEGIN { if (b > 0) printf "ratio finetune / PyTorch: %.2fx examples/s\n", a / b }'
