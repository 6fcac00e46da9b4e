#!/usr/bin/env bash
# tests/serve/web_check.sh — the web page of `finetune serve` in a real headless browser (Chromium from Debian).
# Starts the server (stories260K as the generator and, when given, a classifier), opens
# http://127.0.0.1:PORT/?selftest=1 in headless Chromium: the page loads the models into its picker,
# classifies a text (probability bars), streams a short chat / completion and reads /metrics by itself, and
# writes the outcome as JSON into <pre id="selftest" data-done="ok|failed">. This script reads the DOM
# (--dump-dom), prints that JSON and checks it, and keeps a screenshot ($OUT/web_check.png).
# usage: tests/serve/web_check.sh [path/to/finetune] [--model NAME=DIR ...]
#        (default: build/finetune, stories=models/stories260K)
# Exit: 0 checked, 1 failed, 0 with "SKIP: ..." when no Chromium is installed (scripts/setup.sh installs it).
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$root/build/finetune"
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then bin="$1"; shift; fi
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(--model "stories=$root/models/stories260K")
browser=""
for b in chromium chromium-browser google-chrome; do command -v "$b" >/dev/null 2>&1 && { browser="$b"; break; }; done
if [ -z "$browser" ]; then echo "SKIP: no Chromium (apt-get install chromium, or scripts/setup.sh)"; exit 0; fi
[ -x "$bin" ] || { echo "web_check: $bin not found (run make)"; exit 1; }
out="${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/web_check_XXXXXX")}"
mkdir -p "$out"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" serve --port "$port" "${models[@]}" >"$out/server.log" 2>&1 &
pid=$!
cleanup() { kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
trap cleanup EXIT
for _ in $(seq 300); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { echo "web_check: the server exited:"; tail -20 "$out/server.log"; exit 1; }
  sleep 0.2
done
url="http://127.0.0.1:$port/?selftest=1"
# --virtual-time-budget lets the page's fetches and timers run before the DOM is dumped
flags=(--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run --user-data-dir="$out/profile"
       --virtual-time-budget=30000)
timeout 120 "$browser" "${flags[@]}" --dump-dom "$url" >"$out/dom.html" 2>"$out/chromium.log"
timeout 120 "$browser" "${flags[@]}" --window-size=1200,900 --screenshot="$out/web_check.png" "$url" >/dev/null 2>>"$out/chromium.log" || true
result=$(python3 - "$out/dom.html" <<'PY'
import html, json, re, sys
dom = open(sys.argv[1], encoding="utf-8", errors="replace").read()
m = re.search(r'<pre id="selftest"[^>]*>(.*?)</pre>', dom, re.S)
if not m or not m.group(1).strip():
    print("no self-test result in the page's DOM"); sys.exit(1)
r = json.loads(html.unescape(m.group(1)))
print(json.dumps(r))
ok = r.get("ok") and r.get("picker", 0) > 0 and r.get("metrics")
if r.get("generate") is None or r["generate"].get("chunks", 0) < 1 or not r["generate"].get("text"):
    ok = False
if any(m.get("kind") == "encoder" for m in r.get("models", [])) and not (r.get("classify") and r["classify"].get("bars", 0) >= 2):
    ok = False
sys.exit(0 if ok else 1)
PY
)
rc=$?
echo "web_check: $result"
echo "web_check: screenshot $out/web_check.png"
if [ $rc -ne 0 ]; then echo "web_check: FAILED"; tail -5 "$out/chromium.log"; exit 1; fi
echo "web_check: OK (models in the picker, classification bars, streamed generation, live metrics)"
