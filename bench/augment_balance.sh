#!/usr/bin/env bash
# bench/augment_balance.sh — augmentation and class balancing on a small imbalanced sentiment set (issue 18):
# 200 SST-2 training phrases of 5+ words at 1:5 (33 negative, 167 positive; drawn per seed from train.tsv), a
# frozen all-MiniLM-L6-v2 (mean-pooled, L2-normalised sentence embeddings) and a linear head (finetune train
# --features, 100 epochs), macro-F1 on a balanced subset of the GLUE SST-2 dev sentences (../shared's test.tsv:
# its first 200 negative + 200 positive, fixed) without vs with each method:
#   none                 the 200 sentences as they are
#   class-weights        the same, loss weighted n / (K count_k)
#   over / under         random over-sampling of the minority / under-sampling of the majority to 1:1
#   smote, borderline-smote-1/2, adasyn, tomek   on the embeddings (finetune data balance, ratio 1.0)
#   eda                  4 EDA copies of every minority sentence (finetune data augment --labels 0 --n 4)
#   eda-all              4 EDA copies of every sentence (the imbalance stays)
#   counterfactual       gender-swapped copies of every sentence with a listed word
#   mlm                  4 masked-LM copies of every minority sentence, with MLM_MODEL (skipped when unset)
# usage: bench/augment_balance.sh [SEEDS...]        (default: 1 2 3)
#   env: SST2_DIR (../shared/data/sst2: train.tsv, test.tsv = GLUE dev), MLM_MODEL (a *ForMaskedLM encoder directory)
# Prints one line per run and a markdown table of mean +- sd over the seeds.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
ft="$here/build/finetune"
model="$here/models/all-MiniLM-L6-v2"
sst="${SST2_DIR:-$here/../shared/data/sst2}"
seeds=("$@"); [ ${#seeds[@]} -gt 0 ] || seeds=(1 2 3)
[ -x "$ft" ] || { echo "build/finetune is missing: make" >&2; exit 1; }
[ -f "$model/model.safetensors" ] || { echo "models/all-MiniLM-L6-v2 is missing: run scripts/setup.sh" >&2; exit 1; }
[ -f "$sst/train.tsv" ] && [ -f "$sst/test.tsv" ] || { echo "SST-2 train.tsv / test.tsv not found in $sst (set SST2_DIR)" >&2; exit 1; }
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
q() { "$@" > /dev/null 2>> "$tmp/log" || { tail -20 "$tmp/log" >&2; exit 1; }; }
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); seeds: ${seeds[*]}"
# the balanced dev subset: the first 200 of each label of the GLUE dev sentences
awk -F'\t' 'NR==1 { print; next } { if (c[$2]++ < 200) print }' "$sst/test.tsv" > "$tmp/dev.tsv"
q "$ft" data balance "$tmp/dev.tsv" --out "$tmp/dev.safetensors" --method none --model "$model"
results="$tmp/results.tsv"
: > "$results"
head_f1() {   # embeddings file -> macro-F1 on dev; extra options after it
  local f="$1"; shift
  "$ft" train --task classify --features "$f" --val-features "$tmp/dev.safetensors" --json --seed "$seed" "$@" 2>> "$tmp/log" |
    python3 -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["val"]["f1_macro"])'
}
record() { echo -e "$1\t$seed\t$2\t$3" >> "$results"; printf '  %-20s seed %s  rows %5s  macro-F1 %s\n' "$1" "$seed" "$3" "$2"; }
rows() { "$ft" data balance "$1" --out "$tmp/count.safetensors" --method none 2>&1 | sed -n 's/.*before *\([0-9]*\) rows.*/\1/p'; }
for seed in "${seeds[@]}"; do
  # 33 negative + 167 positive training sentences drawn with this seed
  python3 - "$sst/train.tsv" "$tmp/train.tsv" "$seed" <<'EOF'
import random, sys
src, dst, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = open(src, encoding="utf-8").read().splitlines()
head, rows = lines[0], [l for l in lines[1:] if len(l.rsplit("\t", 1)[0].split()) >= 5]
neg = [l for l in rows if l.rsplit("\t", 1)[1] == "0"]
pos = [l for l in rows if l.rsplit("\t", 1)[1] == "1"]
rng = random.Random(seed)
pick = rng.sample(neg, 33) + rng.sample(pos, 167)
rng.shuffle(pick)
open(dst, "w", encoding="utf-8").write(head + "\n" + "\n".join(pick) + "\n")
EOF
  q "$ft" data balance "$tmp/train.tsv" --out "$tmp/train.safetensors" --method none --model "$model"
  record none "$(head_f1 "$tmp/train.safetensors")" 200
  record class-weights "$(head_f1 "$tmp/train.safetensors" --class-weights balanced)" 200
  for m in over under smote borderline-smote-1 borderline-smote-2 adasyn tomek; do
    q "$ft" data balance "$tmp/train.safetensors" --out "$tmp/$m.safetensors" --method "$m" --ratio 1.0 --seed "$seed"
    record "$m" "$(head_f1 "$tmp/$m.safetensors")" "$(rows "$tmp/$m.safetensors")"
  done
  aug() {   # name, augment options...
    local name="$1"; shift
    q "$ft" data augment "$tmp/train.tsv" --out "$tmp/$name.tsv" --seed "$seed" "$@"
    q "$ft" data balance "$tmp/$name.tsv" --out "$tmp/$name.safetensors" --method none --model "$model"
    record "$name" "$(head_f1 "$tmp/$name.safetensors")" "$(($(wc -l < "$tmp/$name.tsv") - 1))"
  }
  aug eda --method eda --n 4 --labels 0
  aug eda-all --method eda --n 4
  aug counterfactual --method counterfactual
  if [ -n "${MLM_MODEL:-}" ]; then aug mlm --method mlm --model "$MLM_MODEL" --n 4 --labels 0; fi
done
echo
python3 - "$results" <<'EOF'
import statistics, sys
by = {}
order = []
for line in open(sys.argv[1]):
    name, seed, f1, rows = line.rstrip("\n").split("\t")
    if name not in by: order.append(name)
    by.setdefault(name, []).append((float(f1), int(rows)))
base = statistics.mean(f for f, _ in by["none"])
print("| method | training rows | macro-F1 (mean +- sd over %d seeds) | vs none |" % len(by["none"]))
print("|---|---|---|---|")
for name in order:
    f = [x for x, _ in by[name]]
    sd = statistics.stdev(f) if len(f) > 1 else 0.0
    rows = statistics.mean(r for _, r in by[name])
    print("| %s | %.0f | %.4f +- %.4f | %+.4f |" % (name, rows, statistics.mean(f), sd, statistics.mean(f) - base))
EOF
