#!/usr/bin/env bash
# bench/run.sh — finetune vs PyTorch, side by side, same machine, same shape, same run.
# usage: bench/run.sh [path/to/finetune] [extra flags for both, e.g. --batch-size 4 --seq-len 256 --steps 3]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:-$here/../build/finetune}"; shift || true
args=("$@")
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "command: finetune bench ${args[*]:-}"
ours=$("$bin" bench "${args[@]}")
echo "$ours" | sed 's/^/finetune /'
if ! python3 -c "import torch, transformers" 2>/dev/null; then
  echo "PyTorch is not installed: run scripts/setup.sh --python for the side-by-side numbers" >&2
  exit 0
fi
theirs=$(python3 "$here/pytorch_bench.py" "${args[@]}")
echo "$theirs"
for what in train generate; do
  a=$(echo "$ours" | sed -n "s/^$what: \([0-9.]*\) tok\/s/\1/p")
  b=$(echo "$theirs" | sed -n "s/^pytorch $what: \([0-9.]*\) tok\/s/\1/p")
  if [ -n "$a" ] && [ -n "$b" ]; then
    awk -v a="$a" -v b="$b" -v w="$what" 'BEGIN { printf "ratio %s: %.2fx PyTorch\n", w, a / b }'
  fi
done
