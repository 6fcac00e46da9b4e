#!/bin/sh
# bench/generate_bf16.sh [WORK_DIR] — batch-1 generation with bf16 weights (issue 16), side by side:
#
#   1. GPT-2 124M shape, random weights, greedy, 16-token prompt + GEN new tokens (prefill included), one warm-up
#      then the median of REPS runs, each in its own process (peak RSS of that configuration alone):
#        finetune bench --skip-train --precision f32 | bf16
#        python3 bench/pytorch_bench.py --skip-train --gen-dtype float32 | bfloat16   (needs torch + transformers)
#   2. when WORK_DIR (default /tmp/finetune-gguf-bench, made by bench/generate_gguf.sh) holds gpt2-124m-hf and
#      gpt2-124m-f32.gguf: the same weights in both engines, 128-token prompt as one batch (prefill) and 128
#      single-token steps (decode), best of REPS after a warm-up:
#        finetune bench --model WORK_DIR/gpt2-124m-hf --precision f32 | bf16
#        llama.cpp on gpt2-124m-bf16.gguf (llama.cpp's own BF16 conversion: bench/quantize_gguf.py ... bf16)
#
# Environment: THREADS (default: all cores), REPS (3), GEN (64). Prints one line per engine and dtype and the
# ratios; the machine's load average goes in the header (other work on the machine moves these numbers a lot).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
ft="$root/build/finetune"
work=${1:-/tmp/finetune-gguf-bench}
REPS=${REPS:-3}
GEN=${GEN:-64}
THREADS=${THREADS:-$(nproc)}
[ -x "$ft" ] || { echo "bench: build first (make)" >&2; exit 1; }
export OMP_WAIT_POLICY=passive
field() { sed -n "s/^$1: \([0-9.]*\).*/\1/p"; }
ratio() { python3 -c "import sys; a, b = float(sys.argv[1] or 0), float(sys.argv[2] or 0); print(f'{a / b:.2f}x' if b else '-')" "$1" "$2"; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), threads $THREADS, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== GPT-2 124M (random weights), greedy, prompt 16 + $GEN tokens, median of $REPS"
out=$("$ft" bench --skip-train --precision f32 --gen-tokens "$GEN" --steps "$REPS" --threads "$THREADS" 2>/dev/null)
ft32=$(echo "$out" | field generate); rss32=$(echo "$out" | field peak_rss)
out=$("$ft" bench --skip-train --precision bf16 --gen-tokens "$GEN" --steps "$REPS" --threads "$THREADS" 2>/dev/null)
ft16=$(echo "$out" | field generate); rss16=$(echo "$out" | field peak_rss)
printf '%-26s %10s tok/s  peak RSS %8s MB\n' "finetune f32" "$ft32" "$rss32" "finetune bf16" "$ft16" "$rss16"
echo "finetune bf16 / f32: $(ratio "$ft16" "$ft32") tokens/s, $(ratio "$rss16" "$rss32") peak RSS"
if python3 -c "import torch, transformers" 2>/dev/null; then
  for dt in float32 bfloat16; do
    out=$(python3 "$root/bench/pytorch_bench.py" --skip-train --gen-dtype $dt --gen-tokens "$GEN" --steps "$REPS" --threads "$THREADS" 2>/dev/null)
    v=$(echo "$out" | sed -n 's/^pytorch generate: \([0-9.]*\).*/\1/p'); r=$(echo "$out" | sed -n 's/^pytorch peak_rss: \([0-9.]*\).*/\1/p')
    printf '%-26s %10s tok/s  peak RSS %8s MB\n' "pytorch $dt" "$v" "$r"
    [ $dt = float32 ] && pt32=$v || pt16=$v
  done
  echo "finetune bf16 / pytorch bfloat16: $(ratio "$ft16" "$pt16"); finetune bf16 / pytorch float32: $(ratio "$ft16" "$pt32")"
else
  echo "(PyTorch not installed: scripts/setup.sh --python for its numbers)"
fi

hf="$work/gpt2-124m-hf"; [ -d "$hf" ] || hf="$work/gpt2-hf"
if [ -d "$hf" ] && [ -f "$work/gpt2-124m-f32.gguf" ] && python3 -c "import llama_cpp" 2>/dev/null; then
  [ -f "$work/gpt2-124m-bf16.gguf" ] || python3 "$root/bench/quantize_gguf.py" "$work/gpt2-124m-f32.gguf" "$work/gpt2-124m-bf16.gguf" bf16 >/dev/null 2>&1
  echo "== the same GPT-2 124M weights ($hf), prompt 128 as one batch, then 128 decode steps, best of $REPS"
  for p in f32 bf16; do
    out=$("$ft" bench --model "$hf" --precision $p --prompt-len 128 --gen-tokens 128 --steps "$REPS" --threads "$THREADS" 2>/dev/null)
    printf '%-26s prefill %9s tok/s  decode %8s tok/s\n' "finetune $p" "$(echo "$out" | field prefill)" "$(echo "$out" | field decode)"
    [ $p = bf16 ] && ftd=$(echo "$out" | field decode) && ftp=$(echo "$out" | field prefill) && ftids=$(echo "$out" | sed -n 's/^ids: //p')
  done
  out=$(python3 "$root/bench/llama_cpp_bench.py" "$work/gpt2-124m-bf16.gguf" --threads "$THREADS" --prompt-len 128 --gen-tokens 128 --reps "$REPS" 2>/dev/null)
  lp=$(echo "$out" | field prefill); ld=$(echo "$out" | field decode)
  printf '%-26s prefill %9s tok/s  decode %8s tok/s\n' "llama.cpp BF16 GGUF" "$lp" "$ld"
  lids=$(echo "$out" | sed -n 's/^ids: //p')
  same=$(python3 -c "import sys; a, b = sys.argv[1].split(), sys.argv[2].split(); n = 0
while n < min(len(a), len(b)) and a[n] == b[n]: n += 1
print(f'{n}/{len(a)}')" "$ftids" "$lids")
  echo "finetune bf16 / llama.cpp bf16: prefill $(ratio "$ftp" "$lp"), decode $(ratio "$ftd" "$ld"); greedy ids equal for the first $same"
fi
