#!/usr/bin/env bash
# Hyperparameter-search benchmark (issue 15): Branin and Hartmann-6 through `finetune sweep --objective-cmd`
# (awk objectives in bench/hpo/), the median over 10 seeds of the best value after 20 and 50 evaluations for
# finetune's random, tpe and bayes strategies and Optuna's TPESampler (PyPI optuna, ./scripts/setup.sh --python).
#   ./bench/hpo.sh [path/to/finetune] [extra args of bench/hpo/bench.py: --seeds N --trials N --budgets 20,50]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-$root/build/finetune}"
[ $# -gt 0 ] && shift
[ -x "$bin" ] || { echo "bench/hpo.sh: $bin not found (make first)" >&2; exit 1; }
exec python3 "$root/bench/hpo/bench.py" --bin "$bin" "$@"
