#!/usr/bin/env bash
# bench/precision.sh — issue 16's side-by-side table, one run, same machine: GPT-2 124M full fine-tuning
# (batch 4 x 256 by default) in tokens/s for finetune f32, finetune bf16 (--precision bf16), PyTorch f32 and
# PyTorch CPU autocast-bf16; the ratios (goals: finetune bf16 >= 2.0x PyTorch f32 and >= 1.3x PyTorch
# autocast-bf16); finetune bf16's matmul GFLOP/s as a fraction of the vdpbf16ps peak (build/bench/bf16_gemm
# --peak; goal >= 75%); LoRA r=8 in bf16 against PyTorch + PEFT (f32 and autocast; goal >= 2.0x).
# usage: bench/precision.sh [path/to/finetune] [--batch-size 4] [--seq-len 256] [--steps 3] [--threads N]
#        (run by `make bench`; needs build/bench/bf16_gemm: `make build/bench/bf16_gemm`)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$here/../build/finetune"
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then bin="$1"; shift; fi
gemm="$(dirname "$bin")/bench/bf16_gemm"
args=("$@")
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
num() { sed -n "s/^$1: \([0-9.]*\).*/\1/p" | head -1; }
peak=""
if [ -x "$gemm" ]; then peak=$("$gemm" --peak | num peak_bf16); fi
declare -A tok gf
for p in f32 bf16; do
  echo "command: finetune bench --skip-generate --precision $p ${args[*]:-}"
  out=$("$bin" bench --skip-generate --precision "$p" "${args[@]}" 2>/dev/null)
  tok[ft_$p]=$(echo "$out" | num train); gf[ft_$p]=$(echo "$out" | num train_gflops)
done
have_torch=1
python3 -c "import torch, transformers" 2>/dev/null || have_torch=0
if [ $have_torch = 1 ]; then
  for p in f32 bf16; do
    echo "command: python3 bench/pytorch_bench.py --skip-generate --precision $p ${args[*]:-}"
    out=$(python3 "$here/pytorch_bench.py" --skip-generate --precision "$p" "${args[@]}" 2>/dev/null)
    tok[pt_$p]=$(echo "$out" | sed -n 's/^pytorch train[^:]*: \([0-9.]*\) tok\/s.*/\1/p')
  done
else
  echo "PyTorch is not installed: run scripts/setup.sh --python for the PyTorch columns" >&2
fi
echo
printf "%-36s %12s %12s\n" "GPT-2 124M full fine-tuning" "tokens/s" "GFLOP/s"
printf "%-36s %12s %12s\n" "finetune f32" "${tok[ft_f32]}" "${gf[ft_f32]}"
printf "%-36s %12s %12s\n" "finetune bf16" "${tok[ft_bf16]}" "${gf[ft_bf16]}"
if [ $have_torch = 1 ]; then
  printf "%-36s %12s\n" "PyTorch f32" "${tok[pt_f32]:-?}"
  printf "%-36s %12s\n" "PyTorch autocast bf16" "${tok[pt_bf16]:-?}"
  awk -v a="${tok[ft_bf16]}" -v b="${tok[pt_f32]:-0}" -v c="${tok[pt_bf16]:-0}" -v d="${tok[ft_f32]}" 'BEGIN {
    if (b > 0) printf "ratio finetune bf16 / PyTorch f32:            %.2fx (goal >= 2.0x)\n", a / b;
    if (c > 0) printf "ratio finetune bf16 / PyTorch autocast bf16:  %.2fx (goal >= 1.3x)\n", a / c;
    if (b > 0) printf "ratio finetune f32  / PyTorch f32:            %.2fx\n", d / b;
    if (d > 0) printf "ratio finetune bf16 / finetune f32:           %.2fx\n", a / d }'
fi
if [ -n "$peak" ]; then
  awk -v g="${gf[ft_bf16]}" -v p="$peak" 'BEGIN { printf "finetune bf16 step: %.1f GFLOP/s = %.0f%% of the vdpbf16ps peak %.1f GFLOP/s (goal >= 75%%)\n", g, 100 * g / p, p }'
fi
echo
echo "command: finetune bench --skip-generate --method lora --lora-r 8 --precision bf16 ${args[*]:-}"
lo=$("$bin" bench --skip-generate --method lora --lora-r 8 --precision bf16 "${args[@]}" 2>/dev/null | num train)
echo "finetune LoRA r=8 bf16: $lo tok/s"
if [ $have_torch = 1 ] && python3 -c "import peft" 2>/dev/null; then
  for p in f32 bf16; do
    echo "command: python3 bench/pytorch_bench.py --skip-generate --lora --lora-r 8 --precision $p ${args[*]:-}"
    pl=$(python3 "$here/pytorch_bench.py" --skip-generate --lora --lora-r 8 --precision "$p" "${args[@]}" 2>/dev/null |
         sed -n 's/^pytorch train[^:]*: \([0-9.]*\) tok\/s.*/\1/p')
    awk -v a="$lo" -v b="$pl" -v p="$p" 'BEGIN { printf "PyTorch + PEFT LoRA r=8 %-4s: %s tok/s; ratio finetune bf16 / this: %.2fx%s\n", p, b, (b > 0 ? a / b : 0), (p == "f32" ? " (goal >= 2.0x)" : "") }'
  done
fi
