#!/usr/bin/env python3
"""An HTTP proxy that injects faults between tdscale and an S3-compatible server (tests only).

It forwards every request to --upstream unchanged (the Host header too, so signatures hold) and
relays the answer, except the requests a fault rule picks: those get a 500 or have their
connection dropped without an answer. Rules are set with

    POST /__fault  {"mode": "500" | "drop" | "none", "nth": N, "count": K}

which fails K forwarded requests (K = -1: all of them) starting with the Nth one counted from the
rule (1-based). GET /__stats returns {"forwarded": n, "faults": f}; GET /__log returns every
request seen so far as "METHOD /path?query" strings, in order (the request log a test counts
listings in). The port is printed on the first line of stdout. Usage: fault_proxy.py --upstream http://127.0.0.1:5000
"""

import argparse
import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

LOCK = threading.Lock()
STATE = {"mode": "none", "nth": 1, "count": 0, "seen": 0, "forwarded": 0, "faults": 0}
LOG = []
UPSTREAM = None
HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        length = int(self.headers.get("Content-Length", "0") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.startswith("/__fault"):
            rule = json.loads(body or b"{}")
            with LOCK:
                STATE.update(mode=rule.get("mode", "none"), nth=int(rule.get("nth", 1)),
                             count=int(rule.get("count", 1)), seen=0)
            return self.reply(200, {"ok": True})
        if self.path.startswith("/__stats"):
            with LOCK:
                return self.reply(200, {"forwarded": STATE["forwarded"], "faults": STATE["faults"]})
        if self.path.startswith("/__log"):
            with LOCK:
                return self.reply(200, list(LOG))
        with LOCK:
            LOG.append(f"{self.command} {self.path}")
            STATE["seen"] += 1
            k = STATE["seen"] - STATE["nth"]
            fault = STATE["mode"] if STATE["mode"] != "none" and k >= 0 and (STATE["count"] < 0 or k < STATE["count"]) else None
            if fault:
                STATE["faults"] += 1
            else:
                STATE["forwarded"] += 1
        if fault == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        if fault == "500":
            data = b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"
            self.send_response(500)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        conn = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in HOP and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


def main():
    global UPSTREAM
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True)
    p.add_argument("--port", type=int, default=0)
    a = p.parse_args()
    UPSTREAM = urlparse(a.upstream)
    server = ThreadingHTTPServer(("127.0.0.1", a.port), Proxy)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
