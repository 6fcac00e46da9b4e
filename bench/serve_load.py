#!/usr/bin/env python3
"""Load generator of bench/serve.sh: C concurrent clients (asyncio + httpx, one keep-alive connection each)
each send one untimed warm-up request; once all are warm, the timed window starts and every client sends the
same request again and again until SECONDS have passed (the requests in flight then finish and count; the
window ends with the last of them). It prints one line:

  load: <label> c=<C> requests=<N> errors=<E> rps=<N/elapsed> p50_ms=<..> p95_ms=<..> tok_s=<generated tokens/s>

usage: serve_load.py URL PATH JSON_BODY --clients C --seconds S [--label L] [--key KEY]
A request counts when it answers 2xx; others are errors (and end the run early if nothing succeeds).
"""
import argparse
import asyncio
import json
import statistics
import sys
import time


async def client(http, url, body, headers, window, lat, toks, errs):
    r = await http.post(url, content=body, headers=headers)   # warm-up, untimed
    if r.status_code >= 300:
        errs.append(f"{r.status_code} {r.text[:200]}")
    await window.ready()
    while time.monotonic() < window.deadline:
        t0 = time.monotonic()
        r = await http.post(url, content=body, headers=headers)
        dt = time.monotonic() - t0
        if r.status_code >= 300:
            errs.append(f"{r.status_code} {r.text[:200]}")
            continue
        lat.append(dt)
        try:
            toks.append(int(r.json().get("usage", {}).get("completion_tokens", 0)))
        except ValueError:
            pass


class Window:
    """The timed window: starts when the last client is warm."""
    def __init__(self, clients, seconds):
        self.left, self.seconds, self.event = clients, seconds, asyncio.Event()
        self.start = self.deadline = None

    async def ready(self):
        self.left -= 1
        if self.left == 0:
            self.start = time.monotonic()
            self.deadline = self.start + self.seconds
            self.event.set()
        await self.event.wait()


async def run(args):
    import httpx
    body = args.body.encode()
    headers = {"Content-Type": "application/json"}
    if args.key:
        headers["Authorization"] = "Bearer " + args.key
    lat, toks, errs = [], [], []
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(timeout=600, limits=limits) as http:
        url = args.url.rstrip("/") + args.path
        window = Window(args.clients, args.seconds)
        await asyncio.gather(*[client(http, url, body, headers, window, lat, toks, errs) for _ in range(args.clients)])
        elapsed = time.monotonic() - window.start
    n = len(lat)
    lat.sort()
    q = lambda p: 1000 * lat[min(n - 1, int(p * n))] if n else float("nan")
    print(f"load: {args.label} c={args.clients} requests={n} errors={len(errs)} rps={n / elapsed:.2f} "
          f"p50_ms={q(0.50):.1f} p95_ms={q(0.95):.1f} tok_s={sum(toks) / elapsed:.1f}", flush=True)
    if errs:
        print(f"load: first error: {errs[0]}", file=sys.stderr)
    return 0 if n else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("path")
    ap.add_argument("body")
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--label", default="")
    ap.add_argument("--key", default="")
    args = ap.parse_args()
    json.loads(args.body)
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
