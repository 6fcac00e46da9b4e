#!/usr/bin/env python3
"""GET /metrics and drift detection of `finetune serve`, end to end over HTTP.

Starts the server with stories260K (generator), a LoRA adapter of it and the tiny BERT classifier of the tests,
with an API key and a request log, then:
  * sends completions (blocking and streamed) to the base and the adapter, predictions, and requests naming
    unknown models, and checks the counters, histograms and labels of /metrics against what was sent
    (requests by route and status, prompt / generated tokens per model and adapter, time to first token, the
    engine gauges, process RSS; unknown names under model="unknown", never as their own series);
  * checks the exposition format line by line (HELP/TYPE before the samples of each family, `name{...} value`);
  * drift: 200 predictions of one-word texts (the reference window) and then long texts: the classifier's
    prompt_tokens signal must alarm, /metrics must show finetune_drift_alarm{model="cls",signal="prompt_tokens"} 1
    and finetune_drift_alarms_total >= 1, and the request log must hold one {"event":"drift",...} line;
  * GET / serves the page (no key needed), /metrics needs the key.
usage: monitor_check.py [--bin build/finetune]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_util import free_port  # noqa: E402

KEY = "monitor-check-key"


class Client:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def req(self, method, path, body=None, key=KEY):
        data = json.dumps(body).encode() if body is not None else None
        r = urllib.request.Request(self.base + path, data=data, method=method)
        if key:
            r.add_header("Authorization", "Bearer " + key)
        if data is not None:
            r.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(r, timeout=60) as resp:
                return resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)


def parse_metrics(text):
    """{(name, frozenset(labels)): value}; also checks the format."""
    out, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("#") or not line:
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        assert m, f"bad exposition line: {line!r}"
        name, labels = m.group(1), m.group(3) or ""
        fam = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in typed or fam in typed, f"sample before its # TYPE: {line!r}"
        lab = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', labels))
        out[(name, lab)] = float(m.group(4))
    return out


def get(ms, name, **labels):
    return ms.get((name, frozenset(labels.items())), None)


def main():
    ap = argparse.ArgumentParser()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--bin", default=os.path.join(root, os.environ.get("BUILD", "build"), "finetune"))
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="monitor_check_")
    log = os.path.join(work, "requests.jsonl")
    port = free_port()
    cmd = [args.bin, "serve", "--port", str(port), "--api-key", KEY, "--log-file", log, "--parallel", "4",
           "--model", "stories=" + os.path.join(root, "models", "stories260K"),
           "--model", "cls=" + os.path.join(root, "tests", "fixtures", "train_encoder", "tiny_bert"),
           "--adapter", "bot=" + os.path.join(root, "tests", "fixtures", "serve", "lora_a") + "@stories"]
    errf = open(os.path.join(work, "stderr.log"), "w")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errf)
    c = Client(port)
    failures = []

    def check(cond, what):
        print(("  ok    " if cond else "  FAIL  ") + what)
        if not cond:
            failures.append(what)

    try:
        t0 = time.time()
        while True:
            try:
                if c.req("GET", "/health", key=None)[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() - t0 > 120:
                print("monitor_check: the server did not come up:\n" + open(os.path.join(work, "stderr.log")).read()[-2000:])
                return 1
            time.sleep(0.2)

        # traffic
        for model in ["stories", "stories", "bot"]:
            st, body, _ = c.req("POST", "/v1/completions", {"model": model, "prompt": "Once upon a time", "max_tokens": 5, "temperature": 0})
            assert st == 200, body
        st, body, _ = c.req("POST", "/v1/chat/completions", {"model": "stories", "messages": [{"role": "user", "content": "Hi"}],
                                                               "max_tokens": 3, "stream": True})
        check(st == 200 and b"[DONE]" in body, "a streamed chat completion")
        for i in range(3):
            c.req("POST", "/v1/completions", {"model": f"nope-{i}\"x", "prompt": "x"})
        st, _, _ = c.req("POST", "/models/cls/predict", {"text": "a gorgeous film"})
        check(st == 200, "a prediction")

        st, page, hdr = c.req("GET", "/", key=None)
        check(st == 200 and b"<title>finetune serve</title>" in page and "text/html" in hdr.get("Content-Type", ""),
              "GET / serves the page without a key")
        st, _, _ = c.req("GET", "/metrics", key=None)
        check(st == 401, "GET /metrics without the key: 401")
        st, text, hdr = c.req("GET", "/metrics")
        check(st == 200 and hdr.get("Content-Type", "").startswith("text/plain; version=0.0.4"), "GET /metrics: 200 text/plain; version=0.0.4")
        ms = parse_metrics(text.decode())
        check(True, f"{len(ms)} samples, exposition format checked line by line")
        check(get(ms, "finetune_requests_total", route="/v1/completions", status="200") == 3, "requests_total{/v1/completions,200} = 3")
        check(get(ms, "finetune_requests_total", route="/v1/completions", status="404") == 3, "requests_total{/v1/completions,404} = 3 (unknown models)")
        check(get(ms, "finetune_requests_total", route="/v1/chat/completions", status="200") == 1, "requests_total{/v1/chat/completions,200} = 1")
        check(get(ms, "finetune_requests_total", route="/models/{id}/predict", status="200") == 1, "requests_total{/models/{id}/predict,200} = 1")
        check(get(ms, "finetune_requests_total", route="(auth)", status="401") == 1, "requests_total{(auth),401} = 1")
        check(get(ms, "finetune_generated_tokens_total", model="stories", adapter="") == 13, "generated_tokens{stories,\"\"} = 5 + 5 + 3")
        check(get(ms, "finetune_generated_tokens_total", model="stories", adapter="bot") == 5, "generated_tokens{stories,bot} = 5 (an adapter under its base)")
        check(get(ms, "finetune_model_requests_total", model="cls", adapter="") == 1, "model_requests{cls} = 1")
        check(not any("nope" in v for (_, labs) in ms for (_, v) in labs), "unknown model names make no series")
        check((get(ms, "finetune_prompt_tokens_total", model="stories", adapter="") or 0) > 0, "prompt tokens counted")
        check(get(ms, "finetune_time_to_first_token_seconds_count", model="stories") == 4, "time_to_first_token count = 4 generations on stories")
        b = get(ms, "finetune_request_duration_seconds_bucket", route="/v1/completions", le="+Inf")
        check(b == 6 and get(ms, "finetune_request_duration_seconds_count", route="/v1/completions") == 6, "duration histogram +Inf bucket = count = 6")
        check(get(ms, "finetune_slots") == 4, "finetune_slots = --parallel 4")
        check((get(ms, "finetune_decode_steps_total") or 0) > 0, "decode steps counted")
        check((get(ms, "finetune_generated_tokens_per_second") or 0) > 0, "generated tokens/s over the window > 0")
        check((get(ms, "process_resident_memory_bytes") or 0) > 1e6, "process_resident_memory_bytes")
        check(abs((get(ms, "process_start_time_seconds") or 0) - time.time()) < 600, "process_start_time_seconds near now")
        check(get(ms, "finetune_drift_statistic", model="stories", signal="prompt_tokens") is not None, "drift statistic of stories/prompt_tokens exported")

        # drift: a reference of 200 one-word texts, then long ones
        st, _, _ = c.req("POST", "/models/cls/predict", {"texts": ["good"] * 100})
        st2, _, _ = c.req("POST", "/models/cls/predict", {"texts": ["fine"] * 100})
        check(st == 200 and st2 == 200, "200 one-word predictions (the reference window)")
        long_text = "this film is a long meandering sequence of scenes that never quite add up to a story worth telling"
        st, _, _ = c.req("POST", "/models/cls/predict", {"texts": [long_text] * 40})
        check(st == 200, "40 long texts")
        # the drift monitor sees a request when it completes (after its answer was sent): poll a moment for the
        # last one (a loaded machine scraped /metrics first once)
        for _ in range(50):
            _, text, _ = c.req("GET", "/metrics")
            ms = parse_metrics(text.decode())
            if get(ms, "finetune_drift_alarm", model="cls", signal="prompt_tokens") == 1:
                break
            time.sleep(0.1)
        check(get(ms, "finetune_drift_alarm", model="cls", signal="prompt_tokens") == 1, "drift_alarm{cls,prompt_tokens} = 1")
        check((get(ms, "finetune_drift_alarms_total") or 0) >= 1, "drift_alarms_total >= 1")
        check(get(ms, "finetune_drift_alarm", model="stories", signal="prompt_tokens") == 0, "no alarm on stories")
    finally:
        proc.terminate()
        try:
            rc = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = "hung"
        errf.close()
    check(rc == 0, f"exit status after SIGTERM: {rc}")
    events = [json.loads(l) for l in open(log) if '"event":"drift"' in l]
    check(len(events) >= 1 and events[0].get("model") == "cls" and events[0].get("signal") == "prompt_tokens"
          and events[0].get("direction") == "increase", f"the request log holds the drift event: {events[:1]}")
    if failures:
        print(f"monitor_check: {len(failures)} FAILED")
        return 1
    print("monitor_check: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
