#!/usr/bin/env python3
"""The web page of `finetune serve` in a real headless browser (Chromium from Debian).

Starts the server (default: stories260K as the generator; more with --model), opens
http://127.0.0.1:PORT/?selftest=1 in headless Chromium and drives it over the DevTools protocol (a small
WebSocket client below, standard library only). In self-test mode the page loads the models into its picker,
classifies a text with the first classifier (probability bars), streams a short chat / completion from the
first generator (fetch + ReadableStream over Server-Sent Events) and reads /metrics, then writes the outcome
as JSON into <pre id="selftest" data-done="ok|failed">. This script waits for data-done, prints the JSON,
checks it, and saves a screenshot of the page (--screenshot, default $TMPDIR/web_check.png).

usage: web_check.py [--bin build/finetune] [--model NAME=DIR ...] [--screenshot FILE]
Exit 0 when the page passed, 1 when it failed; 0 with "SKIP: ..." when no Chromium is installed
(scripts/setup.sh installs Debian's chromium).
"""
import argparse
import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_util import free_port  # noqa: E402


class WebSocket:
    """Just enough of RFC 6455 for the DevTools protocol: text frames, client masking, fragmentation."""

    def __init__(self, url, timeout=30):
        assert url.startswith("ws://")
        hostport, _, path = url[5:].partition("/")
        host, _, port = hostport.partition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            c = self.sock.recv(4096)
            if not c:
                raise ConnectionError("websocket handshake: connection closed")
            head += c
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError("websocket handshake refused: " + head.split(b"\r\n", 1)[0].decode(errors="replace"))
        self.buf = head.partition(b"\r\n\r\n")[2]
        self.next_id = 0

    def _read(self, n):
        while len(self.buf) < n:
            c = self.sock.recv(65536)
            if not c:
                raise ConnectionError("websocket closed")
            self.buf += c
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, text):
        data = text.encode()
        n = len(data)
        head = bytes([0x81])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def recv(self):
        msg = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            payload = self._read(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            op = b0 & 0x0F
            if op == 8:
                raise ConnectionError("websocket closed by the browser")
            if op in (9, 10):   # ping / pong: ignore
                continue
            msg += payload
            if b0 & 0x80:
                return msg.decode()

    def call(self, method, **params):
        self.next_id += 1
        mid = self.next_id
        self.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            m = json.loads(self.recv())
            if m.get("id") == mid:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--bin", default=os.path.join(root, os.environ.get("BUILD", "build"), "finetune"))
    ap.add_argument("--model", action="append", default=[])
    ap.add_argument("--screenshot", default=os.path.join(tempfile.gettempdir(), "web_check.png"))
    ap.add_argument("--timeout", type=float, default=90)
    args = ap.parse_args()
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    if not browser:
        print("SKIP: no Chromium (apt-get install chromium, or scripts/setup.sh)")
        return 0
    if not os.access(args.bin, os.X_OK):
        print(f"web_check: {args.bin} not found (run make)")
        return 1
    models = args.model or ["stories=" + os.path.join(root, "models", "stories260K")]
    work = tempfile.mkdtemp(prefix="web_check_")
    port, dport = free_port(), free_port()
    cmd = [args.bin, "serve", "--port", str(port)]
    for m in models:
        cmd += ["--model", m]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "server.log"), "w"))
    chrome = None
    try:
        t0 = time.time()
        while True:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).status == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None or time.time() - t0 > 120:
                print("web_check: the server did not come up:\n" + open(os.path.join(work, "server.log")).read()[-2000:])
                return 1
            time.sleep(0.2)
        url = f"http://127.0.0.1:{port}/?selftest=1"
        chrome = subprocess.Popen([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                   "--no-first-run", "--no-default-browser-check", f"--user-data-dir={work}/profile",
                                   f"--remote-debugging-port={dport}", "--window-size=1200,900", url],
                                  stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "chromium.log"), "w"))
        ws_url = None
        while ws_url is None and time.time() - t0 < args.timeout:
            try:
                targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{dport}/json/list", timeout=2))
                ws_url = next((t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page" and "selftest" in t.get("url", "")), None)
            except OSError:
                pass
            if ws_url is None:
                if chrome.poll() is not None:
                    print("web_check: Chromium exited:\n" + open(os.path.join(work, "chromium.log")).read()[-2000:])
                    return 1
                time.sleep(0.3)
        if ws_url is None:
            print("web_check: no page target in Chromium's DevTools")
            return 1
        ws = WebSocket(ws_url)
        done = None
        while time.time() - t0 < args.timeout:
            r = ws.call("Runtime.evaluate", expression="(function(){var e=document.getElementById('selftest');"
                        "return e ? [e.getAttribute('data-done'), e.textContent] : null})()", returnByValue=True)
            v = r.get("result", {}).get("value")
            if v and v[0]:
                done = v
                break
            time.sleep(0.3)
        shot = ws.call("Page.captureScreenshot", format="png")
        with open(args.screenshot, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        if not done:
            print(f"web_check: the page's self-test did not finish in {args.timeout:.0f} s (screenshot {args.screenshot})")
            return 1
        res = json.loads(done[1])
        print("web_check: " + json.dumps(res))
        print(f"web_check: screenshot {args.screenshot}")
        problems = []
        if done[0] != "ok" or not res.get("ok"):
            problems.append("the page reports failure")
        if res.get("picker", 0) < len(models):
            problems.append(f"{res.get('picker')} models in the picker, {len(models)} served")
        if not res.get("metrics"):
            problems.append("live metrics did not load")
        g = res.get("generate")
        if not g or g.get("chunks", 0) < 1 or not g.get("text"):
            problems.append("no streamed generation")
        if any(m.get("kind") == "encoder" for m in res.get("models", [])):
            c = res.get("classify")
            if not c or c.get("bars", 0) < 2:
                problems.append("no probability bars")
        if problems:
            print("web_check: FAILED: " + "; ".join(problems))
            return 1
        print("web_check: OK (models in the picker, streamed generation, classification bars when a classifier is "
              "served, live metrics)")
        return 0
    finally:
        if chrome and chrome.poll() is None:
            chrome.terminate()
            try:
                chrome.wait(timeout=10)
            except subprocess.TimeoutExpired:
                chrome.kill()
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
