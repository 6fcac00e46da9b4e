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
# Then (issue 16) a second table: finetune's peak RSS and tokens/s with --recompute none / attention / block at
# batch 4 x 1024, full and LoRA (see the RECOMPUTE_* variables below; RECOMPUTE_TABLE=0 skips it).
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

busy_jiffies() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }

run_one() { # run_one TAG CMD... : runs CMD in a fresh process, stdout -> $logdir/TAG.out, stderr -> TAG.err
  # Also notes how many cores other processes kept busy meanwhile (the machine may be shared):
  # (all busy CPU time during the run - the run's own CPU time) / wall time -> $logdir/TAG.other
  local tag="$1"; shift
  echo "[$(date +%H:%M:%S)] load $(cut -d' ' -f1-3 /proc/loadavg): $*" >&2
  local b0 b1 hz
  hz=$(getconf CLK_TCK)
  b0=$(busy_jiffies)
  if ! /usr/bin/time -f "%e %U %S" -o "$logdir/$tag.time" "$@" >"$logdir/$tag.out" 2>"$logdir/$tag.err"; then
    echo "  FAILED (see $logdir/$tag.err)" >&2
  fi
  b1=$(busy_jiffies)
  awk -v b0="$b0" -v b1="$b1" -v hz="$hz" '{ other = ((b1 - b0) / hz - $2 - $3) / $1; if (other < 0) other = 0;
       printf "%.2f\n", other }' "$logdir/$tag.time" >"$logdir/$tag.other"
  echo "  wall $(cut -d' ' -f1 "$logdir/$tag.time") s; other processes kept $(cat "$logdir/$tag.other") cores busy on average" >&2
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2fx", a / b; else printf "n/a" }'; }
other() { cat "$logdir/$1.other" 2>/dev/null || echo n/a; }

if [ "${RECOMPUTE_ONLY:-0}" != 1 ]; then   # RECOMPUTE_ONLY=1: only the recomputation table below
run_one ft_full "$bin" bench "${common[@]}" --method full "${extra[@]}"
run_one ft_lora "$bin" bench "${common[@]}" --method lora "${lora[@]}" "${extra[@]}"
if [ "$have_torch" = 1 ]; then
  run_one pt_full python3 "$here/pytorch_bench.py" "${common[@]}" "${extra[@]}"
  run_one pt_lora python3 "$here/pytorch_bench.py" "${common[@]}" --lora "${lora[@]}" "${extra[@]}"
else
  echo "PyTorch / transformers / peft not installed: PyTorch columns are n/a (scripts/setup.sh --python, pip install peft)" >&2
  : >"$logdir/pt_full.out"; : >"$logdir/pt_lora.out"; echo n/a >"$logdir/pt_full.other"; echo n/a >"$logdir/pt_lora.other"
fi

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
echo
echo "Cores kept busy by other processes during each run (0 = the machine was quiet): finetune full $(other ft_full), LoRA $(other ft_lora); PyTorch full $(other pt_full), LoRA $(other pt_lora)."
fi

# ---- activation recomputation (issue 16): peak RSS and tokens/s of --recompute none / attention / block at
# batch 4 x 1024 on the GPT-2 124M shape, finetune only (the same gradients in every mode; test_recompute).
# RECOMPUTE_TABLE=0 skips it; RECOMPUTE_METHODS (default "full lora") and RECOMPUTE_SHAPE (default
# "--batch-size 4 --seq-len 1024") change it; RECOMPUTE_STEPS timed steps after the warm-up (default 1);
# RECOMPUTE_ONLY=1 runs only this table.
if [ "${RECOMPUTE_TABLE:-1}" != 0 ]; then
  read -r -a rshape <<<"${RECOMPUTE_SHAPE:---batch-size 4 --seq-len 1024}"
  rmethods="${RECOMPUTE_METHODS:-full lora}"
  for m in $rmethods; do
    margs=(--method "$m"); [ "$m" != full ] && margs+=("${lora[@]}")
    for r in none attention block; do
      run_one "rc_${m}_$r" "$bin" bench --skip-generate --steps "${RECOMPUTE_STEPS:-1}" "${margs[@]}" --recompute "$r" "${rshape[@]}"
    done
  done
  echo
  echo "Activation recomputation, finetune bench ${rshape[*]} (GPT-2 124M shape unless --config, f32; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)):"
  echo
  echo "| method | --recompute | activations (MiB, planned) | peak RSS (MB) | vs none | train tok/s | vs none | other cores busy |"
  echo "|---|---|---|---|---|---|---|---|"
  for m in $rmethods; do
    base_rss=$(field peak_rss "$logdir/rc_${m}_none.out"); base_tok=$(field train "$logdir/rc_${m}_none.out")
    for r in none attention block; do
      f="$logdir/rc_${m}_$r"
      act=$(sed -n 's/.*activations \([0-9.]*\) MiB.*/\1/p' "$f.err" | head -n1)
      rss=$(field peak_rss "$f.out"); tok=$(field train "$f.out")
      echo "| $m | $r | ${act:-n/a} | $rss | $(ratio "$rss" "$base_rss") | $tok | $(ratio "$tok" "$base_tok") | $(other "rc_${m}_$r") |"
    done
  done
fi
