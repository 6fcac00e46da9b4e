#!/usr/bin/env bash
# bench/mpi.sh — data-parallel training speed: 1 process x 1 thread vs 2 MPI ranks x 1 thread each, on one
# machine (loopback: Open MPI's shared-memory transport), GPT-2 124M shape (bench/configs/gpt2-124m.json,
# random init, f32), full fine-tuning with AdamW.
# usage: bench/mpi.sh [path/to/finetune] [extra train flags]     (env: STEPS=4 BATCH=4 SEQ=256 PRECISION=f32;
#        PRECISION=bf16 for the bf16 step, which is 2.3x shorter and so exchanges 2.3x more per second)
#
# Both runs train the same global batch per optimizer step, 2 micro-batches of BATCH x SEQ tokens:
#   1 process:  finetune train ... --grad-accum 2 --threads 1
#   2 ranks:    mpirun -np 2 --bind-to core finetune train ... --threads 1      (each rank one micro-batch)
# and end with byte-identical weights (checked here too). Prints tokens/s of each (median over the logged
# steps after the first), the speed-up (goal >= 1.8x, 0.9 of linear), and what the 2-rank run spent per step
# in the gradient exchange (the chain and the broadcast, waiting for the other rank included) and how many
# bytes it moved. The GPT-2 tokenizer comes from ../shared/models/gpt2-tokenizer (encoder.json + vocab.bpe)
# or $GPT2_TOKENIZER; the text from tests/fixtures/train/basketball_coach.json, packed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/.."
bin="$root/build/finetune"
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then bin="$1"; shift; fi
extra=("$@")
steps="${STEPS:-4}"; batch="${BATCH:-4}"; seq="${SEQ:-256}"
tok="${GPT2_TOKENIZER:-$root/../shared/models/gpt2-tokenizer}"
command -v mpirun >/dev/null || { echo "bench/mpi.sh: mpirun not found (apt-get install openmpi-bin libopenmpi-dev)" >&2; exit 2; }
ldd "$bin" | grep -q libmpi || { echo "bench/mpi.sh: $bin was built without MPI (rebuild with mpicc installed)" >&2; exit 2; }
[ -f "$tok/encoder.json" ] || { echo "bench/mpi.sh: no GPT-2 tokenizer in $tok (set GPT2_TOKENIZER)" >&2; exit 2; }
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi

work="$(mktemp -d /tmp/ft-mpi-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/gpt2"
cp "$here/configs/gpt2-124m.json" "$work/gpt2/config.json"
cp "$tok/encoder.json" "$tok/vocab.bpe" "$work/gpt2/"

common=(--model "$work/gpt2" --init random --data "$root/tests/fixtures/train/basketball_coach.json" --pack
        --seq-len "$seq" --batch-size "$batch" --max-steps "$steps" --val-split 0 --eval-every 0 --save-every 0
        --samples 0 --log-every 1 --lr 1e-4 --warmup-steps 0 --seed 1 --threads 1 --no-db --precision "${PRECISION:-f32}" "${extra[@]}")

# median tokens/s of the train lines after the first (warm-up) of a metrics.jsonl
rate() {
  python3 - "$1" <<'EOF'
import json, statistics, sys
r = [json.loads(l)["tokens_per_s"] for l in open(sys.argv[1]) if '"type": "train"' in l]
print("%.1f" % statistics.median(r[1:] if len(r) > 1 else r))
EOF
}
load() { cut -d' ' -f1-3 /proc/loadavg; }

echo "GPT-2 124M shape, full fine-tuning, $steps steps of 2 x $batch x $seq tokens; $(nproc) cores" >&2
echo "[$(date +%H:%M:%S)] load $(load): 1 process x 1 thread, --grad-accum 2" >&2
OMP_NUM_THREADS=1 "$bin" train "${common[@]}" --grad-accum 2 --out "$work/one" >"$work/one.log" 2>&1 || { cat "$work/one.log" >&2; exit 1; }
echo "[$(date +%H:%M:%S)] load $(load): 2 ranks x 1 thread" >&2
OMP_NUM_THREADS=1 mpirun -np 2 --bind-to core "$bin" train "${common[@]}" --out "$work/two" >"$work/two.log" 2>&1 || { cat "$work/two.log" >&2; exit 1; }
echo "[$(date +%H:%M:%S)] load $(load): done" >&2

one=$(rate "$work/one/metrics.jsonl"); two=$(rate "$work/two/metrics.jsonl")
read -r comm step_s bytes < <(python3 - "$work/two/metrics.jsonl" <<'EOF'
import json, sys
d = [json.loads(l) for l in open(sys.argv[1]) if '"type": "dist"' in l][-1]
print(d["comm_s_per_step"], d["step_s"], d["bytes_per_step"])
EOF
)
same=no; cmp -s "$work/one/final/model.safetensors" "$work/two/final/model.safetensors" && same=yes
echo "| run | tokens/s | speed-up | gradient exchange per step | bytes per step | final weights |"
echo "|---|---|---|---|---|---|"
echo "| 1 process x 1 thread, --grad-accum 2 | $one | 1.00x | - | - | - |"
awk -v o="$one" -v t="$two" -v c="$comm" -v s="$step_s" -v b="$bytes" -v same="$same" 'BEGIN {
  printf "| 2 ranks x 1 thread (mpirun, loopback) | %s | **%.2fx** | %.3f s of %.2f s (%.1f%%) | %.0f MiB | byte-identical: %s |\n",
         t, t / o, c, s, 100 * c / s, b / 1048576, same }'
[ "$same" = yes ] || { echo "bench/mpi.sh: the two runs ended with different weights" >&2; exit 1; }
