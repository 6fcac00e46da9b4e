#!/usr/bin/env bash
# bench/run.sh — finetune vs PyTorch, side by side, same machine, same shape, same run.
# usage: bench/run.sh [path/to/finetune] [flags for both, e.g. --batch-size 4 --seq-len 256 --steps 3]
#        bench/run.sh build/finetune --method lora [--lora-r 8] [--lora-alpha 16] [--lora-targets c_attn]
# `--method lora` (or `--lora`) is passed as `--method lora` to finetune bench and as `--lora` to
# bench/pytorch_bench.py (PyTorch + PEFT); the --lora-* flags go to both unchanged.
# Prints both outputs, then the ratios (finetune / PyTorch) of tokens/s and of peak RSS.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$here/../build/finetune"
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then bin="$1"; shift; fi
ours_args=(); theirs_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --lora) ours_args+=(--method lora); theirs_args+=(--lora); shift ;;
    --method)
      [ $# -ge 2 ] || { echo "bench/run.sh: --method needs a value (full or lora)" >&2; exit 2; }
      ours_args+=(--method "$2")
      case "$2" in lora) theirs_args+=(--lora) ;; full) ;; *) theirs_args+=(--method "$2") ;; esac
      shift 2 ;;
    *) ours_args+=("$1"); theirs_args+=("$1"); shift ;;
  esac
done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: finetune bench ${ours_args[*]:-}"
ours=$("$bin" bench "${ours_args[@]}")
echo "$ours" | sed 's/^/finetune /'
if ! python3 -c "import torch, transformers" 2>/dev/null; then
  echo "PyTorch is not installed: run scripts/setup.sh --python for the side-by-side numbers" >&2
  exit 0
fi
echo "command: python3 bench/pytorch_bench.py ${theirs_args[*]:-}"
theirs=$(python3 "$here/pytorch_bench.py" "${theirs_args[@]}")
echo "$theirs"
for what in train generate; do
  a=$(echo "$ours" | sed -n "s/^$what: \([0-9.]*\) tok\/s.*/\1/p")
  b=$(echo "$theirs" | sed -n "s/^pytorch $what: \([0-9.]*\) tok\/s.*/\1/p")
  if [ -n "$a" ] && [ -n "$b" ]; then
    awk -v a="$a" -v b="$b" -v w="$what" 'BEGIN { printf "ratio %s: %.2fx PyTorch\n", w, a / b }'
  fi
done
a=$(echo "$ours" | sed -n 's/^peak_rss: \([0-9.]*\) MB.*/\1/p')
b=$(echo "$theirs" | sed -n 's/^pytorch peak_rss: \([0-9.]*\) MB.*/\1/p')
if [ -n "$a" ] && [ -n "$b" ]; then
  awk -v a="$a" -v b="$b" 'BEGIN { printf "ratio peak_rss: %.2fx PyTorch (finetune %.0f MB, PyTorch %.0f MB)\n", a / b, a, b }'
fi
