#!/bin/sh
# bench/qlora_bf16.sh — the LoRA / QLoRA training step in f32 and bf16 (issue 16, part 3): GPT-2 124M shape
# (random init), batch 4 x 256, `finetune bench --skip-generate`, each configuration in its own process.
#
#   bench/qlora_bf16.sh [FINETUNE [BEFORE]]      # FINETUNE: build/finetune; BEFORE: an older binary to compare
#   STEPS=3 CONFIGS="qlora-nf4 lora" bench/qlora_bf16.sh build/finetune
#
# Per configuration and precision it prints two numbers:
#   tok/s     finetune bench's own (wall clock, median of STEPS timed steps after a warm-up);
#   cpu s/step the process's CPU time (user + sys) of a run with STEPS timed steps minus that of a run with 1,
#             divided by STEPS - 1: setup, model creation and warm-up cancel. On a shared machine this is the
#             steadier figure (another process taking a core does not count), though not immune to the cache
#             and memory-bandwidth pressure of the others. OMP_WAIT_POLICY=passive so that idle OpenMP
#             threads do not spin CPU time into it.
# Configurations (CONFIGS): qlora-nf4, qlora-int8 (QLoRA r 8 on c_attn over an NF4 / int8 base), lora (LoRA r 8,
# c_attn, f32 base), lora-all (the same on every linear layer; not in the default list). Load average is printed
# before each line: quote it with the numbers.
set -eu
FT=${1:-build/finetune}
BEFORE=${2:-}
STEPS=${STEPS:-3}
CONFIGS=${CONFIGS:-"qlora-nf4 qlora-int8 lora"}
export OMP_WAIT_POLICY=passive

args_of() {
    case $1 in
    qlora-nf4) echo "--method qlora --quant nf4 --lora-r 8 --lora-alpha 16" ;;
    qlora-int8) echo "--method qlora --quant int8 --lora-r 8 --lora-alpha 16" ;;
    lora) echo "--method lora --lora-r 8 --lora-alpha 16" ;;
    lora-all) echo "--method lora --lora-r 8 --lora-alpha 16 --lora-targets all-linear" ;;
    *) echo "unknown configuration $1" >&2; exit 2 ;;
    esac
}

# cpu_of BIN STEPS ARGS...: prints "CPU_SECONDS TOK_PER_S" of one run
cpu_of() {
    bin=$1; n=$2; shift 2
    out=$(/usr/bin/time -f "TIME %U %S" "$bin" bench --skip-generate --steps "$n" "$@" 2>&1) || { echo "$out" >&2; exit 1; }
    cpu=$(echo "$out" | awk '/^TIME/ { print $2 + $3 }')
    tps=$(echo "$out" | awk '/^train:/ { print $2 }')
    echo "$cpu $tps"
}

printf "%-11s %-9s %-7s %10s %12s   %s\n" config precision binary "tok/s" "cpu s/step" "load average"
for cfg in $CONFIGS; do
    for prec in f32 bf16; do
        for which in after before; do
            bin=$FT
            # (the f32 step is the same code before and after: BEFORE runs bf16 only)
            if [ "$which" = before ]; then [ -n "$BEFORE" ] && [ "$prec" = bf16 ] || continue; bin=$BEFORE; fi
            load=$(cut -d' ' -f1-3 /proc/loadavg)
            set -- $(cpu_of "$bin" 1 $(args_of "$cfg") --precision "$prec")
            c1=$1
            set -- $(cpu_of "$bin" "$STEPS" $(args_of "$cfg") --precision "$prec")
            cn=$1; tps=$2
            per=$(awk -v a="$c1" -v b="$cn" -v s="$STEPS" 'BEGIN { printf "%.2f", (b - a) / (s - 1) }')
            printf "%-11s %-9s %-7s %10s %12s   %s\n" "$cfg" "$prec" "$which" "$tps" "$per" "$load"
        done
    done
done
