#!/usr/bin/env bash
# bench/adapters.sh — N sequences, each with its own LoRA adapter over one shared base, decoded together
# (one ft_context with N slots, one batched step per token) vs one after another (what a server without
# mixed-adapter batching does). Greedy; the two runs must produce identical ids (checked by finetune bench).
# usage: bench/adapters.sh [path/to/finetune] [N=8] [GEN=64] [extra finetune bench flags, e.g. --config FILE]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:-$here/../build/finetune}"; n="${2:-8}"; gen="${3:-64}"
shift $(( $# < 3 ? $# : 3 )) || true
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
for shape in "GPT-2 124M (default)" ; do
  echo "shape: $shape"
  echo "command: finetune bench --adapters $n --gen-tokens $gen --lora-r 8 --lora-targets all-linear $*"
  "$bin" bench --adapters "$n" --gen-tokens "$gen" --lora-r 8 --lora-targets all-linear "$@"
done
