#!/usr/bin/env bash
# The real sweep of issue 15 (BENCHMARKS.md "Issue 15"): all-MiniLM-L6-v2 on an SST-2 subset, grid vs Hyperband
# with trial continuation (configs bench/hpo/sst2_grid.json and bench/hpo/sst2_hyperband.json, driver
# bench/hpo/sst2.py: 1,212 training phrases, the 872 GLUE dev sentences, Hyperband seeds 0, 1, 2).
#   ./bench/hpo_sst2.sh [path/to/finetune] [--sst2 DIR] [--out DIR] [--train-every N] [--val-file F] [--seeds 0,1,2]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-$root/build/finetune}"
[ $# -gt 0 ] && shift
[ -x "$bin" ] || { echo "bench/hpo_sst2.sh: $bin not found (make first)" >&2; exit 1; }
[ -f "$root/models/all-MiniLM-L6-v2/model.safetensors" ] || { echo "models/all-MiniLM-L6-v2 is missing: run scripts/setup.sh" >&2; exit 1; }
exec python3 "$root/bench/hpo/sst2.py" --bin "$bin" "$@"
