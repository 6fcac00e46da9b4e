#!/usr/bin/env python3
"""Robustness of `finetune serve` against malformed and hostile requests.

Starts the server (best: an ASan build, `make SANITIZE=address`), then sends N hostile requests over raw
sockets from several threads, in a seeded random order, of these kinds:

  bad_json        truncated / garbage / trailing commas / NaN / lone surrogates / empty bodies
  wrong_types     every field of completions, chat, embeddings, predict and adapters with a wrong type
  missing         required fields absent
  out_of_range    max_tokens, temperature, top_p, top_k, n, logprobs, seed, thresholds far out of range
  bad_utf8        invalid UTF-8 inside JSON strings and in the path
  unknown_model   models and adapters that are not loaded (also hostile names: ../, %00, 10 KB)
  unknown_route   paths that exist nowhere, odd methods on real paths
  deep_nesting    JSON nested 10^3 .. 10^5 deep
  huge_body       bodies above the limit (declared and sent), Content-Length lies
  huge_header     one header of 64 KB, 2,000 headers
  no_auth         a missing or wrong bearer key
  bad_framing     garbage request lines, bad chunked encoding, negative / duplicate Content-Length
  slow            slowloris: a request trickled in pieces then abandoned
  disconnect      a streaming generation abandoned after its first bytes, a request cut mid-body

Every one must get a 4xx status or a closed connection (broken framing, slow, disconnect), never a 5xx
or a hang (each has a 10 s read limit). Every VALID_EVERY hostile requests, valid requests (a completion
and, when a classifier is served, a prediction) must answer 200: the server keeps serving throughout.
At the end SIGTERM must end the server with exit status 0 and its stderr must hold no sanitizer report
(AddressSanitizer, LeakSanitizer, UndefinedBehaviorSanitizer).

usage: hostile.py --bin build-address/finetune [--n 10000] [--threads 8] [--seed 1]
                  [--model NAME=DIR ...] [--generator NAME] [--classifier NAME]
Prints a table of counts per kind and outcome, then "hostile: N requests, ... OK" or the failures; exit 0
when all held.
"""
import argparse
import collections
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_util import free_port  # noqa: E402

KEY = "hostile-test-key"
# the client's wait for an answer: any answer (or the server's own --timeout 3 close) comes long before it, so it
# only decides how long a hang takes to be reported; wide, so that a loaded machine (ASan, load 18) is not a hang
TIMEOUT = 30.0


class Outcome:
    """status: int HTTP status, or 'closed' (connection closed without a status line), 'timeout', 'error:..'"""
    def __init__(self, status, body=b""):
        self.status, self.body = status, body


def read_response(sock):
    """Reads one response: status and body (Content-Length or chunked or until close)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return Outcome("timeout", buf)
        except (ConnectionResetError, BrokenPipeError, OSError):
            return Outcome("closed", buf)
        if not chunk:
            return Outcome("closed", buf)
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    line = head.split(b"\r\n", 1)[0].split()
    try:
        status = int(line[1])
    except (IndexError, ValueError):
        return Outcome("error:bad status line " + repr(head[:80]), buf)
    headers = {}
    for h in head.split(b"\r\n")[1:]:
        k, _, v = h.partition(b":")
        headers[k.strip().lower()] = v.strip()
    n = headers.get(b"content-length")
    body = rest
    try:
        if n is not None:
            n = int(n)
            while len(body) < n:
                c = sock.recv(65536)
                if not c:
                    break
                body += c
        elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            while not body.endswith(b"0\r\n\r\n"):
                c = sock.recv(65536)
                if not c:
                    break
                body += c
    except (socket.timeout, OSError):
        pass
    return Outcome(status, body)


def exchange(port, data, pieces=None, close_after=None, shutdown_write=False):
    """Sends data (bytes, or a list of byte strings sent with pauses) and reads the response.
    close_after: close the socket after reading that many bytes (abrupt disconnect)."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    except OSError as e:
        return Outcome("error:connect " + str(e))
    s.settimeout(TIMEOUT)
    try:
        if pieces:
            for p, pause in pieces:
                s.sendall(p)
                time.sleep(pause)
            s.close()   # abandoned: a slow client that gives up
            return Outcome("closed")
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass   # the server may answer and close before it has read everything (413, 431)
        if shutdown_write:
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        if close_after is not None:
            got = b""
            while len(got) < close_after:
                try:
                    c = s.recv(close_after - len(got))
                except (socket.timeout, OSError):
                    break
                if not c:
                    break
                got += c
            s.close()
            return Outcome("closed", got)
        return read_response(s)
    finally:
        try:
            s.close()
        except OSError:
            pass


def http(method, path, body=b"", headers=None, key=KEY, content_length=None):
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    h = [f"{method} {path} HTTP/1.1".encode("latin-1", "replace") if isinstance(path, str) else method.encode() + b" " + path + b" HTTP/1.1",
         b"Host: 127.0.0.1", b"Connection: close"]
    if key is not None:
        h.append(b"Authorization: Bearer " + key.encode())
    if body or method in ("POST", "PUT", "PATCH"):
        h.append(b"Content-Type: application/json")
        h.append(b"Content-Length: " + str(len(body) if content_length is None else content_length).encode())
    for k, v in (headers or {}).items():
        h.append(k.encode() + b": " + (v if isinstance(v, bytes) else v.encode()))
    return b"\r\n".join(h) + b"\r\n\r\n" + body


# ---------------------------------------------------------------------------------------------------------
# the hostile requests: each generator returns (kind, request) where request is a dict for exchange()

def build_cases(gen, cls, rnd):
    P = ["/v1/completions", "/v1/chat/completions", "/v1/embeddings", f"/models/{cls or 'x'}/predict", "/v1/adapters"]
    J = lambda o: json.dumps(o)
    cases = collections.defaultdict(list)
    add = lambda kind, **req: cases[kind].append(req)

    bad_bodies = ["", "{", "}", "[", "null", "true", "42", "\"str\"", "[]", "{\"model\":", "{\"model\" \"x\"}",
                  "{\"a\":1,}", "{,}", "{\"prompt\": NaN}", "{\"prompt\": Infinity}", "{'model': 'x'}",
                  "{\"model\":\"" + gen + "\",\"prompt\":\"x\"} trailing", "\x00\x01\x02", "{\"prompt\":\"\\ud800\"}", "{\"model\":\"" + gen + "\",\"prompt\":\"\\uZZZZ\"}", "{\"model\":\"" + gen + "\",\"prompt\":\"a\\u0000b\"}",
                  "{\"prompt\":\"\\", "\ufeff{}", "{\"prompt\":\"a\"\"b\"}", " " * 1000,
                  "{\"model\":\"" + gen + "\",\"prompt\":\"x\",\"max_tokens\":1e999}", "{\"a\":" + "1" * 5000 + "}"]
    for p in P:
        for b in bad_bodies:
            add("bad_json", data=http("POST", p, b))

    wrong = {
        "model": [1, 1.5, True, [], {}, None], "prompt": [1, True, {}, [1.5], [[]], [{}], [None]],
        "messages": ["hi", 1, {}, [1], [{"role": 1, "content": "x"}], [{"role": "user", "content": 5}],
        [{"role": "user"}], [{"content": "x"}], [{"role": "wizard", "content": "x"}], [[]],
        [{"role": "user", "content": [{"type": "image_url"}]}]],
        "max_tokens": ["10", 1.5, True, [], {}], "temperature": ["hot", [], {}, True], "top_p": ["x", []],
        "top_k": ["x", 1.5, []], "seed": ["x", 1.5, []], "stop": [1, [1], {}, [[]], ["a"] * 50], "n": ["2", 1.5, []],
        "logprobs": ["x", [], {}], "stream": ["yes", 1, [], {}], "input": [1, {}, [1], [[1]], [None], True],
        "text": [1, True, [], {}, None], "texts": ["x", 1, [1], [None], [[]], {}], "confidence_threshold": ["x", [], {}, True],
        "echo": ["x"], "unknown_field_xyz": [1], "name": [1, [], {}], "path": [1, [], {}], "base": [1, []],
        "encoding_format": [1, "hex"], "user": [1, []],
    }
    # (path, a valid body, the fields that endpoint reads, the required ones); wrong values only for fields the
    # endpoint knows (an endpoint may ignore a field it does not read), unknown fields where it refuses them
    gen_fields = ["model", "prompt", "max_tokens", "temperature", "top_p", "top_k", "seed", "stop", "n", "logprobs",
                  "stream", "echo", "user", "unknown_field_xyz"]
    templates = [("/v1/completions", {"model": gen, "prompt": "Once", "max_tokens": 2}, gen_fields, ["model", "prompt"]),
                 ("/v1/chat/completions", {"model": gen, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2},
                  [f for f in gen_fields if f not in ("prompt", "echo")] + ["messages"], ["model", "messages"]),
                 ("/v1/embeddings", {"model": cls or gen, "input": "x"}, ["model", "input", "encoding_format", "user", "unknown_field_xyz"], ["model", "input"]),
                 (f"/models/{cls or gen}/predict", {"text": "x"}, ["text", "texts", "confidence_threshold", "unknown_field_xyz"], ["text"]),
                 ("/v1/adapters", {"name": "zz", "path": "/nonexistent"}, ["name", "path", "base"], ["name", "path"])]
    for path, base, fields, required in templates:
        for field in fields:
            for v in wrong[field]:
                o = dict(base)
                if field == "texts":
                    o.pop("text", None)
                o[field] = v
                add("wrong_types", data=http("POST", path, J(o)))
        for field in required:
            o = {k: v for k, v in base.items() if k != field}
            add("missing", data=http("POST", path, J(o)))
        add("missing", data=http("POST", path, "{}"))

    oor = {"max_tokens": [0, -1, 10 ** 9, 2 ** 31, 2 ** 63, -2 ** 63, 10 ** 30], "temperature": [-1, 1e308, -1e-9, 1e6],
           "top_p": [-0.1, 1.5, 1e300], "top_k": [-5, 10 ** 12], "n": [0, -1, 1000, 10 ** 9], "logprobs": [-1, 21, 10 ** 6],
           "seed": [-1, 2 ** 64, 10 ** 40, -10 ** 40], "presence_penalty": [-3, 3, 1e300], "frequency_penalty": [-3, 3]}
    for path, base, _, _ in templates[:2]:
        for field, values in oor.items():
            for v in values:
                o = dict(base)
                o[field] = v
                if field == "logprobs" and "chat" in path:
                    o["logprobs"], o["top_logprobs"] = True, v
                add("out_of_range", data=http("POST", path, J(o)))
    for v in [-1, 1.5, 1e300, -1e300]:
        add("out_of_range", data=http("POST", f"/models/{cls or gen}/predict", J({"text": "x", "confidence_threshold": v})))
    add("out_of_range", data=http("POST", f"/models/{cls or gen}/predict", J({"texts": ["x"] * 100000})))
    add("out_of_range", data=http("POST", "/v1/completions", J({"model": gen, "prompt": [[7] * 3] * 10000, "max_tokens": 1})))
    add("out_of_range", data=http("POST", "/v1/completions", J({"model": gen, "prompt": [10 ** 9, -5], "max_tokens": 1})))
    add("out_of_range", data=http("POST", "/v1/completions", J({"model": gen, "prompt": "word " * 5000, "max_tokens": 1})))

    bad_utf8 = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"a\x80b", b"\xf8\x88\x80\x80\x80"]
    for bu in bad_utf8:
        add("bad_utf8", data=http("POST", "/v1/completions", b'{"model":"' + gen.encode() + b'","prompt":"' + bu + b'","max_tokens":1}'))
        add("bad_utf8", data=http("POST", "/v1/chat/completions", b'{"model":"' + gen.encode() + b'","messages":[{"role":"user","content":"' + bu + b'"}],"max_tokens":1}'))
        add("bad_utf8", data=http("POST", f"/models/{cls or gen}/predict", b'{"text":"' + bu + b'"}'))
        add("bad_utf8", data=http("POST", "/v1/completions", b'{"model":"' + bu + b'","prompt":"x"}'))
        add("bad_utf8", data=http("GET", b"/models/" + bu))
        add("bad_utf8", data=http("POST", b"/models/" + bu + b"/predict", b'{"text":"x"}'))

    names = ["nope", "../../etc/passwd", "a" * 10000, "gpt-4", "x/y", "' OR 1=1 --", "\u00e9t\u00e9", "con", ""]
    for nm in names:
        add("unknown_model", data=http("POST", "/v1/completions", J({"model": nm, "prompt": "x", "max_tokens": 1})))
        add("unknown_model", data=http("POST", "/v1/chat/completions", J({"model": nm, "messages": [{"role": "user", "content": "x"}]})))
        add("unknown_model", data=http("POST", "/v1/embeddings", J({"model": nm, "input": "x"})))
        safe = nm.encode("utf-8")[:3000].replace(b"/", b"%2F").replace(b" ", b"%20") or b"%20"
        add("unknown_model", data=http("POST", b"/models/" + safe + b"/predict", J({"text": "x"})))
        add("unknown_model", data=http("GET", b"/models/" + safe))
        add("unknown_model", data=http("GET", b"/v1/models/" + safe))
        add("unknown_model", data=http("DELETE", b"/v1/adapters/" + safe))
        add("unknown_model", data=http("POST", "/v1/adapters", J({"name": "new" + str(len(nm)), "path": "/nonexistent/" + nm[:100]})))

    routes = ["/nope", "/v2/completions", "/v1", "/v1/", "/models//predict", "/models/x/y/z", "/metricsx",
              "/%2e%2e/%2e%2e/etc/passwd", "/" + "a" * 4000, "/v1/completions/extra", "/index.html", "//", "/models/", "/nope?" + "q=1&" * 500]
    for r in routes:
        add("unknown_route", data=http("GET", r))
        add("unknown_route", data=http("POST", r, "{}"))
    for m in ["PUT", "PATCH", "DELETE", "OPTIONS", "BREW", "TRACE"]:
        for p in ["/v1/completions", "/v1/models", f"/models/{cls or gen}/predict", "/metrics"]:
            add("unknown_route", data=http(m, p, "{}" if m in ("PUT", "PATCH") else b""))
    for p in ["/v1/completions", "/v1/chat/completions", f"/models/{cls or gen}/predict", "/v1/embeddings"]:
        add("unknown_route", data=http("GET", p))

    for depth in [1000, 5000, 20000, 100000]:
        for p in P[:4]:
            add("deep_nesting", data=http("POST", p, "[" * depth + "]" * depth))
            add("deep_nesting", data=http("POST", p, '{"prompt":' + "[" * depth + "]" * depth + "}"))
            add("deep_nesting", data=http("POST", p, '{"a":' * depth + "1" + "}" * depth))
        add("deep_nesting", data=http("POST", "/v1/completions", "[" * depth))

    big = "x" * (2 << 20)
    for p in P[:4]:
        add("huge_body", data=http("POST", p, J({"model": gen, "prompt": big})))
        add("huge_body", data=http("POST", p, b"", content_length=10 ** 12), shutdown_write=True)
        add("huge_body", data=http("POST", p, b"{}", content_length=100), shutdown_write=True)   # a lie: shorter than said

    for n in [64 << 10, 200 << 10]:
        add("huge_header", data=http("GET", "/v1/models", headers={"X-Big": "a" * n}))
    add("huge_header", data=b"GET /v1/models HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(2000)) + b"\r\n")
    add("huge_header", data=b"GET /" + b"a" * (100 << 10) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    add("huge_header", data=http("GET", "/v1/models", headers={"Authorization2": "Bearer " + "k" * 50000}))
    add("huge_header", data=http("GET", "/nope?" + "q=1&" * 500))   # 500 query arguments: libmicrohttpd may cut it
    add("huge_header", data=http("POST", "/nope?" + "q=1&" * 500, "{}"))

    for k in [None, "", "wrong", KEY + "x", KEY[:-1], "a" * 10000, "\x01\x02"]:
        for p in ["/v1/models", "/metrics", "/models"]:
            add("no_auth", data=http("GET", p, key=k))
        add("no_auth", data=http("POST", "/v1/completions", J({"model": gen, "prompt": "x"}), key=k))
    add("no_auth", data=http("GET", "/v1/models", key=None, headers={"Authorization": "Basic " + KEY}))
    add("no_auth", data=http("GET", "/v1/models", key=None, headers={"Authorization": "Bearer"}))

    framing = [b"GARBAGE\r\n\r\n", b"\r\n\r\n", b"GET\r\n\r\n", b"GET /nope HTTP/9.9\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() + b"\r\n\r\n",
               b"GET /nope HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() + b"\r\nContent-Length: -5\r\n\r\n",
               b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() + b"\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\n{}",
               b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nabc\r\n0\r\n\r\n",
               b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nabc\r\n",
               b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() + b"\r\nContent-Length: abc\r\n\r\n{}",
               b"GET /nope HTTP/1.1\r\nHost x no colon\r\n\r\n", b"GET /nope HTTP/1.1\r\n Folded: header\r\n\r\n",
               b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64),   # a TLS hello
               b"GET /nope HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() + b"\r\n\x00\r\n\r\n", bytes(range(256)), b"G" * 70000]
    for f in framing:
        add("bad_framing", data=f, shutdown_write=True)

    for n in range(3):
        add("slow", pieces=[(b"POST /v1/completions HTTP/1.1\r\n", 0.1), (b"Host: x\r\nContent-Le", 0.1), (b"ngth: 100\r\n\r\n{", 0.1)])
        add("slow", pieces=[(b"G", 0.05), (b"E", 0.05), (b"T /v1/mod", 0.05)])
    add("disconnect", data=http("POST", "/v1/completions", J({"model": gen, "prompt": "Once upon a time", "max_tokens": 200, "stream": True})), close_after=20)
    add("disconnect", data=http("POST", "/v1/chat/completions", J({"model": gen, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 200, "stream": True})), close_after=60)
    add("disconnect", data=http("POST", "/v1/completions", J({"model": gen, "prompt": "Once upon a time", "max_tokens": 200})), close_after=0)
    add("disconnect", data=http("POST", "/v1/completions", b"", content_length=500) + b'{"model":', close_after=0)
    return cases


CLOSED_OK = {"bad_framing", "slow", "disconnect", "huge_header", "huge_body"}


def judge(kind, o):
    """'ok' or a failure description."""
    if isinstance(o.status, int):
        if 400 <= o.status < 500:
            return "ok"
        if kind == "bad_framing" and o.status == 505:
            return "ok"   # HTTP/9.9: 505 is the status HTTP defines for an unsupported version (libmicrohttpd's answer)
        if kind == "disconnect" and o.status == 200:
            return "ok"   # the answer started before we hung up
        return f"status {o.status}: {o.body[:200]!r}"
    if o.status == "closed" and kind in CLOSED_OK:
        return "ok"
    if o.status == "closed":
        return "closed without a status"
    return str(o.status)


def valid_requests(port, gen, cls):
    """The server keeps serving: these must answer 200."""
    bad = []
    o = exchange(port, http("POST", "/v1/completions", json.dumps({"model": gen, "prompt": "Once upon a time", "max_tokens": 4, "temperature": 0})))
    if o.status != 200:
        bad.append(f"valid completion: {o.status} {o.body[:200]!r}")
    if cls:
        o = exchange(port, http("POST", f"/models/{cls}/predict", json.dumps({"text": "a fine film"})))
        if o.status != 200:
            bad.append(f"valid predict: {o.status} {o.body[:200]!r}")
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="build-address/finetune")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--model", action="append", default=[])
    ap.add_argument("--generator", default=None)
    ap.add_argument("--classifier", default=None)
    ap.add_argument("--valid-every", type=int, default=200)
    ap.add_argument("--extra", default="", help="more flags for finetune serve")
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    models = args.model or [f"stories={os.path.join(root, 'models', 'stories260K')}"]
    gen = args.generator or models[0].split("=", 1)[0]
    cls = args.classifier

    port = free_port()
    errlog = tempfile.NamedTemporaryFile(prefix="hostile_", suffix=".log", delete=False)
    cmd = [args.bin, "serve", "--port", str(port), "--api-key", KEY, "--timeout", "3", "--parallel", "4"]
    for m in models:
        cmd += ["--model", m]
    cmd += args.extra.split()
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    print("hostile: " + " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errlog, env=env)
    t0 = time.time()
    while True:
        o = exchange(port, http("GET", "/health", key=None))
        if o.status == 200:
            break
        if proc.poll() is not None or time.time() - t0 > 120:
            print("hostile: the server did not come up:\n" + open(errlog.name, errors="replace").read()[-3000:])
            proc.kill()
            return 1
        time.sleep(0.2)
    print(f"hostile: server up in {time.time() - t0:.1f} s", flush=True)

    rnd = random.Random(args.seed)
    cases = build_cases(gen, cls, rnd)
    kinds = sorted(cases)
    plan = []   # round-robin over kinds so that every kind is well represented, then shuffled
    i = 0
    while len(plan) < args.n:
        k = kinds[i % len(kinds)]
        plan.append((k, cases[k][(i // len(kinds)) % len(cases[k])]))
        i += 1
    rnd.shuffle(plan)

    counts = collections.Counter()
    failures = []
    lock = threading.Lock()
    next_i = [0]
    valid_done = [0]

    def worker():
        while True:
            with lock:
                if next_i[0] >= len(plan) or len(failures) > 50:
                    return
                j = next_i[0]
                next_i[0] += 1
            kind, req = plan[j]
            o = exchange(port, req.get("data", b""), pieces=req.get("pieces"), close_after=req.get("close_after"),
                         shutdown_write=req.get("shutdown_write", False))
            v = judge(kind, o)
            with lock:
                counts[(kind, o.status if isinstance(o.status, int) else o.status.split(":")[0])] += 1
                if v != "ok":
                    failures.append(f"{kind}: {v}  request {req.get('data', b'')[:160]!r}")
            if j % args.valid_every == 0:
                bad = valid_requests(port, gen, cls)
                with lock:
                    valid_done[0] += 1
                    failures.extend(bad)

    t1 = time.time()
    threads = [threading.Thread(target=worker) for _ in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - t1
    bad = valid_requests(port, gen, cls)
    failures.extend(bad)
    o = exchange(port, http("GET", "/metrics"))
    if o.status not in (200, 404):
        failures.append(f"/metrics after the run: {o.status}")

    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = "hung after SIGTERM"
    errlog.close()
    err = open(errlog.name, errors="replace").read()
    os.unlink(errlog.name)
    if rc != 0:
        failures.append(f"server exit status after SIGTERM: {rc}")
    for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer", "ThreadSanitizer"):
        if marker in err:
            k = err.index(marker)
            failures.append(f"sanitizer report ({marker}):\n" + err[max(0, k - 200):k + 3000])
            break

    by_kind = collections.defaultdict(collections.Counter)
    for (kind, st), n in counts.items():
        by_kind[kind][st] += n
    print(f"{'kind':<15} {'sent':>6}  outcomes")
    for k in kinds:
        c = by_kind[k]
        print(f"{k:<15} {sum(c.values()):>6}  " + ", ".join(f"{s}: {n}" for s, n in sorted(c.items(), key=lambda x: str(x[0]))))
    total = sum(counts.values())
    print(f"hostile: {total} hostile requests in {elapsed:.1f} s ({args.threads} threads), {valid_done[0] + 1} rounds of valid "
          f"requests, server exit {rc}")
    if failures:
        print(f"hostile: {len(failures)} FAILURES:")
        for f in failures[:30]:
            print("  " + f)
        return 1
    print("hostile: OK (every hostile request got a 4xx or a closed connection, valid requests kept answering 200, "
          "clean exit, no sanitizer report)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
