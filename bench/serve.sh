#!/usr/bin/env bash
# bench/serve.sh — `finetune serve` vs a FastAPI + uvicorn + transformers + torch server (bench/serve_fastapi.py,
# the reference workflow's stack) of the very same model files, side by side in one run on this machine.
#
# Throughput: requests/s, p50 / p95 latency (and generated tokens/s) at 1, 4 and 16 concurrent clients
# (bench/serve_load.py: asyncio + httpx, keep-alive) for
#   stories260K   POST /v1/completions  greedy, max_tokens 32 (both sides generate exactly 32 tokens: the
#                 prompt's greedy continuation has no EOS within 32; FastAPI also sets min_new_tokens)
#   gpt2-124m     the same on the GPT-2 124M shape (random init, seed 0: bench/serve_models.py)
#   minilm-cls    POST /models/{id}/predict, all-MiniLM-L6-v2 with a 2-label head saved once by transformers
# one server at a time, each serving the three models together.
# Memory: peak RSS (VmHWM) of each server holding a classifier + a generator (GPT-2 124M) + 8 LoRA adapters
# (PEFT, r 8 on c_attn), after one completion with each adapter and one prediction; finetune with --parallel 8
# --slot-tokens 256 (8 KV-cache slots of 256 tokens: more than the bench's 5 + 32 tokens) and, for comparison,
# with the defaults (8 slots of the model's whole 1024-token context, allocated up front).
# Prints both sides, then ratios (finetune / FastAPI).
#
# usage: bench/serve.sh [path/to/finetune]
# env:   SECONDS_PER_RUN (6)  timed window per point; CLIENTS ("1 4 16"); MAX_TOKENS (32);
#        BENCH_DIR (build/bench-serve) where the model files are made once; PARALLEL (16) finetune slots;
#        SLOT_TOKENS (256) finetune KV-cache tokens per slot (finetune serve --slot-tokens);
#        WORKLOADS ("stories gpt2 cls"); SIDES ("finetune fastapi"); SKIP_MEMORY=1
# The default run takes about 8 minutes on 2 cores; SECONDS_PER_RUN=30 gives steadier numbers (about 25 min).
# Needs: scripts/setup.sh --python (torch, transformers, peft, fastapi, uvicorn, httpx).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
bin="${1:-$root/build/finetune}"
secs="${SECONDS_PER_RUN:-6}"
clients="${CLIENTS:-1 4 16}"
max_tokens="${MAX_TOKENS:-32}"
dir="${BENCH_DIR:-$root/build/bench-serve}"
parallel="${PARALLEL:-16}"
slot_tokens="${SLOT_TOKENS:-256}"
workloads="${WORKLOADS:-stories gpt2 cls}"
sides="${SIDES:-finetune fastapi}"
[[ " $sides " != *" finetune "* ]] || [ -x "$bin" ] || { echo "bench/serve.sh: $bin not found (run make)" >&2; exit 2; }
if ! python3 -c "import torch, transformers, peft, fastapi, uvicorn, httpx" 2>/dev/null; then
  echo "bench/serve.sh: needs torch, transformers, peft, fastapi, uvicorn, httpx: run scripts/setup.sh --python" >&2
  exit 2
fi
cd "$root"
python3 "$here/serve_models.py" "$dir" --adapters 8 2>&1 | grep '^made' >&2 || true

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pid=""
stop_server() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  pid=""
}
trap stop_server EXIT
wait_health() {   # $1 port, $2 log
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$1/health" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || { echo "bench/serve.sh: server exited; its log:" >&2; tail -20 "$2" >&2; exit 1; }
    sleep 0.2
  done
  echo "bench/serve.sh: server on port $1 not healthy after 120 s" >&2; tail -20 "$2" >&2; exit 1
}
peak_rss_mb() { awk '/^VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

gen="stories=models/stories260K"; gpt2="gpt2=$dir/gpt2-124m"; cls="cls=$dir/minilm-cls"
start() {   # $1 side (finetune|fastapi), $2 with adapters (0|1|2: 2 = finetune's default slots); sets pid, port
  port=$(free_port); log="$dir/$1-server.log"
  if [ "$1" = finetune ]; then
    case "$2" in
      0) args=(serve --port "$port" --parallel "$parallel" --slot-tokens "$slot_tokens") ;;
      1) args=(serve --port "$port" --parallel 8 --slot-tokens "$slot_tokens") ;;
      *) args=(serve --port "$port") ;;
    esac
    if [ "$2" != 0 ]; then
      args+=(--model "$gpt2" --model "$cls")
      for i in 0 1 2 3 4 5 6 7; do args+=(--adapter "a$i=$dir/adapters/a$i"); done
    else
      args+=(--model "$gen" --model "$gpt2" --model "$cls")
    fi
    "$bin" "${args[@]}" --log-file none >"$log" 2>&1 &
  else
    args=(--port "$port")
    if [ "$2" != 0 ]; then
      args+=(--generator "$gpt2" --classifier "$cls" --adapter-base gpt2)
      for i in 0 1 2 3 4 5 6 7; do args+=(--adapter "a$i=$dir/adapters/a$i"); done
    else
      args+=(--generator "$gen" --generator "$gpt2" --classifier "$cls")
    fi
    python3 "$here/serve_fastapi.py" "${args[@]}" >"$log" 2>&1 &
  fi
  pid=$!
  wait_health "$port" "$log"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "versions: $(python3 -c 'import torch, transformers, fastapi, uvicorn, peft; print(f"torch {torch.__version__}, transformers {transformers.__version__}, fastapi {fastapi.__version__}, uvicorn {uvicorn.__version__}, peft {peft.__version__}")')"
echo "command: bench/serve.sh (SECONDS_PER_RUN=$secs CLIENTS=\"$clients\" MAX_TOKENS=$max_tokens PARALLEL=$parallel SLOT_TOKENS=$slot_tokens)"
results="$dir/results.txt"; : > "$results"
for side in $sides; do
  start "$side" 0
  for w in $workloads; do
    case "$w" in
      stories) path=/v1/completions; body="{\"model\":\"stories\",\"prompt\":\"Once upon a time\",\"max_tokens\":$max_tokens,\"temperature\":0}" ;;
      gpt2)    path=/v1/completions; body="{\"model\":\"gpt2\",\"prompt\":\"Once upon a time\",\"max_tokens\":$max_tokens,\"temperature\":0}" ;;
      cls)     path=/models/cls/predict; body='{"text":"a gorgeous, witty, seductive movie that never loses its footing","confidence_threshold":0.5}' ;;
      *) echo "bench/serve.sh: unknown workload $w" >&2; exit 2 ;;
    esac
    for c in $clients; do
      line=$(python3 "$here/serve_load.py" "http://127.0.0.1:$port" "$path" "$body" --clients "$c" --seconds "$secs" --label "$w") || true
      echo "$side $line" | tee -a "$results"
    done
  done
  echo "$side peak_rss_mb (3 models, after the load): $(peak_rss_mb "$pid")"
  stop_server
done

if [ -z "${SKIP_MEMORY:-}" ]; then
  runs="$sides"; [[ " $sides " == *" finetune "* ]] && runs="$runs finetune-defaults"
  for run in $runs; do
    side=${run%-defaults}; mode=1; [ "$run" = "$side" ] || mode=2
    start "$side" "$mode"
    for i in 0 1 2 3 4 5 6 7; do
      curl -sf "http://127.0.0.1:$port/v1/completions" -H 'Content-Type: application/json' \
        -d "{\"model\":\"a$i\",\"prompt\":\"Once upon a time\",\"max_tokens\":8,\"temperature\":0}" >/dev/null || echo "$side: adapter a$i request failed" >&2
    done
    curl -sf "http://127.0.0.1:$port/models/cls/predict" -H 'Content-Type: application/json' -d '{"text":"fine"}' >/dev/null \
      || echo "$side: predict failed" >&2
    echo "$run memory: classifier + gpt2-124m + 8 adapters: peak_rss_mb=$(peak_rss_mb "$pid")" | tee -a "$results"
    stop_server
  done
fi

echo
echo "ratios (finetune / FastAPI):"
awk '
  $2 == "load:" { side = $1; key = $3 " " $4
                  for (i = 5; i <= NF; i++) { split($i, kv, "="); v[side, key, kv[1]] = kv[2] }
                  if (!(key in seen)) { seen[key] = 1; keys[++n] = key } }
  $2 == "memory:" { split($NF, kv, "="); mem[$1] = kv[2] }
  END {
    for (k = 1; k <= n; k++) {
      key = keys[k]; a = v["finetune", key, "rps"]; b = v["fastapi", key, "rps"]
      if (a != "" && b > 0)
        printf "  %-14s requests/s %8.2f vs %8.2f = %6.2fx   p50 %8.1f vs %8.1f ms   p95 %8.1f vs %8.1f ms\n", key, a, b, a / b,
               v["finetune", key, "p50_ms"], v["fastapi", key, "p50_ms"], v["finetune", key, "p95_ms"], v["fastapi", key, "p95_ms"]
    }
    if (mem["finetune"] > 0 && mem["fastapi"] > 0)
      printf "  peak RSS, classifier + generator + 8 adapters: %d MB vs %d MB = %.2fx (finetune with its default slots: %d MB = %.2fx)\n",
             mem["finetune"], mem["fastapi"], mem["finetune"] / mem["fastapi"], mem["finetune-defaults"], mem["finetune-defaults"] / mem["fastapi"]
  }' "$results"
