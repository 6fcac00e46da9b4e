#!/usr/bin/env bash
# bench/memory.sh — training speed and peak memory of full fine-tuning vs LoRA, finetune vs PyTorch (+ PEFT).
# usage: bench/memory.sh [path/to/finetune] [flags for both sides, e.g. --batch-size 4 --seq-len 256]
#
# Runs, one after the other and each in a fresh process (so each peak RSS belongs to one configuration):
#   finetune bench --skip-generate --steps 2 [--method lora --lora-r 8 --lora-alpha 16]
#   python3 bench/pytorch_bench.py --skip-generate --steps 2 [--lora --lora-r 8 --lora-alpha 16]
# on the GPT-2 124M shape (random init, f32, batch 4 x 256 unless flags say otherwise; LoRA on c_attn,
# dropout 0, AdamW over the adapters only) and prints a markdown table of tokens/s (median of the timed
# steps after one warm-up) and peak RSS (getrusage ru_maxrss, MB = 2^20 bytes, whole process).
# Per-run logs (stderr: step times, trainable parameters, versions) go to $BENCH_LOG_DIR (default: a temp dir).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$here/../build/finetune"
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then bin="$1"; shift; fi
extra=("$@")
common=(--skip-generate --steps 2)
lora=(--lora-r 8 --lora-alpha 16)
logdir="${BENCH_LOG_DIR:-$(mktemp -d /tmp/ft-memory-bench.XXXXXX)}"
mkdir -p "$logdir"
have_torch=1
python3 -c "import torch, transformers, peft" 2>/dev/null || have_torch=0

field() { # field NAME_REGEX FILE -> the number after it, or "n/a"
  local v
  v=$(sed -n "s/^$1: \([0-9.]*\) .*/\1/p" "$2" | head -n1)
  echo "${v:-n/a}"
}

run_one() { # run_one TAG CMD... : runs CMD in a fresh process, stdout -> $logdir/TAG.out, stderr -> TAG.err
  local tag="$1"; shift
  echo "[$(date +%H:%M:%S)] load $(cut -d' ' -f1-3 /proc/loadavg): $*" >&2
  if ! "$@" >"$logdir/$tag.out" 2>"$logdir/$tag.err"; then
    echo "  FAILED (see $logdir/$tag.err)" >&2
  fi
}

run_one ft_full "$bin" bench "${common[@]}" --method full "${extra[@]}"
run_one ft_lora "$bin" bench "${common[@]}" --method lora "${lora[@]}" "${extra[@]}"
if [ "$have_torch" = 1 ]; then
  run_one pt_full python3 "$here/pytorch_bench.py" "${common[@]}" "${extra[@]}"
  run_one pt_lora python3 "$here/pytorch_bench.py" "${common[@]}" --lora "${lora[@]}" "${extra[@]}"
else
  echo "PyTorch / transformers / peft not installed: PyTorch columns are n/a (scripts/setup.sh --python, pip install peft)" >&2
  : >"$logdir/pt_full.out"; : >"$logdir/pt_lora.out"
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2fx", a / b; else printf "n/a" }'; }

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); flags: ${common[*]} ${extra[*]:-}; logs: $logdir"
echo
echo "| method | finetune tok/s | PyTorch tok/s | speed ratio | finetune peak RSS (MB) | PyTorch peak RSS (MB) | memory ratio |"
echo "|---|---|---|---|---|---|---|"
for m in full lora; do
  ft_tok=$(field train "$logdir/ft_$m.out");            pt_tok=$(field "pytorch train" "$logdir/pt_$m.out")
  ft_rss=$(field peak_rss "$logdir/ft_$m.out");         pt_rss=$(field "pytorch peak_rss" "$logdir/pt_$m.out")
  name="full fine-tuning (AdamW on all weights)"
  [ "$m" = lora ] && name="LoRA r=8, alpha 16, c_attn (PyTorch: + PEFT)"
  echo "| $name | $ft_tok | $pt_tok | $(ratio "$ft_tok" "$pt_tok") | $ft_rss | $pt_rss | $(ratio "$ft_rss" "$pt_rss") |"
done
echo "| QLoRA: pending (NF4 base + LoRA; being added separately, not measured here) | pending | pending | pending | pending | pending | pending |"
