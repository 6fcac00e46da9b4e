#!/bin/sh
# bench/generate_gguf.sh [WORK_DIR] — quantized GGUF inference, finetune vs llama.cpp side by side.
#
# For a GPT-2 124M-shaped and a 1.1B Llama-shaped (TinyLlama) model with random weights (`finetune init` with
# bench/configs/*.json), written as GGUF F32 with llama.cpp's names (bench/hf_to_gguf.py, gguf-py) and quantized
# by llama.cpp itself to Q8_0, Q4_0 and Q4_K (bench/quantize_gguf.py, every tensor of the one type), it times
# on the same file and the same number of threads:
#   prefill  tokens/s of a 128-token prompt evaluated as one batch
#   decode   tokens/s of 128 greedy single-token steps after it (batch 1)
# finetune: `finetune bench --model FILE.gguf`; llama.cpp: bench/llama_cpp_bench.py (llama-cpp-python).
# Each side: one warm-up run, then the best of REPS runs. Prints one table with the ratios (finetune / llama.cpp).
#
# Environment: THREADS (2), REPS (2), PROMPT (128), GEN (128), MODELS ("gpt2-124m tinyllama-1.1b"),
# TYPES ("f32 q8_0 q4_0 q4_k"). WORK_DIR (default /tmp/finetune-gguf-bench) holds the models: about 0.8 GB for
# GPT-2 and 7 GB for the 1.1B model; they are reused when present. Needs the PyPI packages gguf and
# llama-cpp-python (scripts/setup.sh installs both).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
ft="$root/build/finetune"
work=${1:-/tmp/finetune-gguf-bench}
THREADS=${THREADS:-2}
REPS=${REPS:-2}
PROMPT=${PROMPT:-128}
GEN=${GEN:-128}
MODELS=${MODELS:-"gpt2-124m tinyllama-1.1b"}
TYPES=${TYPES:-"f32 q8_0 q4_0 q4_k"}
[ -x "$ft" ] || { echo "bench: build first (make)" >&2; exit 1; }
python3 -c "import gguf, llama_cpp" 2>/dev/null || { echo "bench: needs the PyPI packages gguf and llama-cpp-python (scripts/setup.sh)" >&2; exit 1; }
mkdir -p "$work"
export OMP_WAIT_POLICY=passive

field() { sed -n "s/^$1: \([0-9.]*\).*/\1/p" "$2"; }
ratio() { python3 -c "import sys; a, b = float(sys.argv[1] or 0), float(sys.argv[2] or 0); print(f'{a / b:.2f}x' if b else '-')" "$1" "$2"; }

echo "bench: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, threads $THREADS, prompt $PROMPT, generate $GEN, best of $REPS" >&2
table=$(mktemp)
printf '%-16s %-5s %10s %10s %7s %10s %10s %7s %s\n' model type "ft pp" "llama pp" ratio "ft tg" "llama tg" ratio "same ids" > "$table"
for name in $MODELS; do
  cfg="$root/bench/configs/$name.json"
  if [ ! -f "$work/$name-f32.gguf" ]; then
    [ -d "$work/$name-hf" ] || "$ft" init --config "$cfg" --out "$work/$name-hf" >&2
    python3 "$root/bench/hf_to_gguf.py" "$work/$name-hf" "$work/$name-f32.gguf"
    rm -rf "$work/$name-hf"
  fi
  for t in $TYPES; do
    f="$work/$name-$t.gguf"
    [ -f "$f" ] || python3 "$root/bench/quantize_gguf.py" "$work/$name-f32.gguf" "$f" "$t" 2>/dev/null
    echo "bench: $name $t: finetune" >&2
    "$ft" bench --model "$f" --threads "$THREADS" --prompt-len "$PROMPT" --gen-tokens "$GEN" --steps "$REPS" > "$work/ft.out"
    echo "bench: $name $t: llama.cpp" >&2
    python3 "$root/bench/llama_cpp_bench.py" "$f" --threads "$THREADS" --prompt-len "$PROMPT" --gen-tokens "$GEN" --reps "$REPS" > "$work/llama.out"
    fpp=$(field prefill "$work/ft.out"); ftg=$(field decode "$work/ft.out")
    lpp=$(field prefill "$work/llama.out"); ltg=$(field decode "$work/llama.out")
    # greedy ids of the random model: how many of the generated tokens agree (random weights give near-ties)
    same=$(python3 -c "import sys; a, b = [open(p).read().split('ids:')[1].split() for p in sys.argv[1:]]; print(f'{sum(x == y for x, y in zip(a, b))}/{len(a)}')" "$work/ft.out" "$work/llama.out")
    printf '%-16s %-5s %10s %10s %7s %10s %10s %7s %s\n' "$name" "$t" "$fpp" "$lpp" "$(ratio "$fpp" "$lpp")" "$ftg" "$ltg" "$(ratio "$ftg" "$ltg")" "$same" >> "$table"
    cat "$table" | tail -1 >&2
  done
done
echo
echo "tokens/s (pp: prefill of $PROMPT tokens, tg: $GEN generated tokens at batch 1), ratio = finetune / llama.cpp"
cat "$table"
rm -f "$table"
