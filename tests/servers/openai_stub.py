#!/usr/bin/env python3
"""An OpenAI-compatible chat-completions server for tdscale's tests.

It answers each agent of a synthesis batch the way a cooperative model would (the planner returns
the draft blueprint, the assistant makes the plan's next move with tool calls, the tool simulator
returns the fields the plan needs), labels conversations with `stub <first tool called>` (or
`stub chat`), and injects faults on a fixed schedule: 429, 500, a response
slower than the client's timeout, a truncated body and a body that is not JSON. Requests whose
body contains --always-fail are answered 500 every time, so the items that need them fail;
--always-status CODE answers every request with that status (e.g. 401 for a wrong key).

Every request is logged as one JSON line: {"n", "key", "agent", "outcome"}; "outcome" is "ok" for
a complete answer, else the fault. Usage:

    openai_stub.py --port 0 --log requests.jsonl [--faults 429,500,timeout,truncated,nonjson]
                   [--every 5] [--delay 0.0] [--timeout-sleep 3] [--always-fail TEXT]
                   [--always-status CODE]

The chosen port is printed on the first line of stdout.
"""

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
LOCK = threading.Lock()
COUNTER = [0]


def log(entry):
    with LOCK:
        with open(ARGS.log, "a") as f:
            f.write(json.dumps(entry) + "\n")


def plan_script(system):
    """The assistant's plan: the JSON on the last line of its system prompt."""
    marker = "## Plan"
    text = system[system.index(marker):].splitlines()[-1]
    return json.loads(text)


def answer(agent, body):
    msgs = body["messages"]
    if agent == "planner":
        task = json.loads(msgs[-1]["content"])
        draft = task["draft"]
        draft["goal"] = "(stub) " + draft["goal"]
        return {"content": json.dumps(draft)}
    if agent == "user":
        system = msgs[0]["content"]
        for line in system.splitlines():
            if line.startswith("When asked, answer: "):
                return {"content": line[len("When asked, answer: "):]}
        for line in system.splitlines():
            if line.startswith("Goal: "):
                return {"content": line[len("Goal: "):]}
        return {"content": "Please help me."}
    if agent == "tool_simulator":
        task = json.loads(msgs[-1]["content"])
        if task.get("fail"):
            return {"content": json.dumps({"error": "temporarily unavailable"})}
        out = {"status": "ok"}
        out.update(task.get("produces") or {})
        return {"content": json.dumps(out)}
    if agent == "labeler":
        # A domain from the first tool a conversation calls, so tests can compute the expected one.
        task = json.loads(msgs[-1]["content"])
        labels = {
            str(c["n"]): ("stub " + c["tools"][0]) if c["tools"] else "stub chat"
            for c in task["conversations"]
        }
        return {"content": json.dumps({"labels": labels})}
    if agent == "assistant":
        script = plan_script(msgs[0]["content"])
        done = sum(1 for m in msgs if m["role"] == "assistant")
        if done >= len(script):
            return {"content": "Is there anything else?"}
        step = script[done]
        if step["kind"] == "ask":
            return {"content": step["question"]}
        if step["kind"] == "answer":
            return {"content": step["text"]}
        calls = [
            {
                "id": f"stub_{done}_{i}",
                "type": "function",
                "function": {"name": c["tool"], "arguments": json.dumps(c["arguments"])},
            }
            for i, c in enumerate(step["calls"])
        ]
        return {"content": None, "tool_calls": calls}
    raise ValueError(f"unknown agent {agent!r}")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, status, payload, headers=()):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        agent = self.headers.get("x-tdscale-agent", "")
        key = self.headers.get("x-tdscale-cache-key", "")
        with LOCK:
            n = COUNTER[0]
            COUNTER[0] += 1
        entry = {"n": n, "key": key, "agent": agent}
        if ARGS.always_status:
            log({**entry, "outcome": str(ARGS.always_status)})
            return self.send(ARGS.always_status, {"error": {"message": "injected status for every request"}})
        if ARGS.always_fail and ARGS.always_fail.encode() in raw:
            log({**entry, "outcome": "always-fail"})
            return self.send(500, {"error": {"message": "injected persistent failure"}})
        fault = None
        if ARGS.faults and n % ARGS.every == ARGS.every - 1:
            fault = ARGS.faults[(n // ARGS.every) % len(ARGS.faults)]
        if fault == "429":
            log({**entry, "outcome": "429"})
            return self.send(429, {"error": {"message": "rate limited"}}, [("Retry-After", "0")])
        if fault == "500":
            log({**entry, "outcome": "500"})
            return self.send(500, {"error": {"message": "injected"}})
        if fault == "timeout":
            log({**entry, "outcome": "timeout"})
            time.sleep(ARGS.timeout_sleep)
        body = json.loads(raw)
        reply = answer(agent, body)
        message = {"role": "assistant", **reply}
        payload = {
            "id": f"chatcmpl-{n}",
            "object": "chat.completion",
            "model": body.get("model"),
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": len(raw) // 4,
                "completion_tokens": len(json.dumps(reply)) // 4,
            },
        }
        data = json.dumps(payload).encode()
        if ARGS.delay:
            time.sleep(ARGS.delay)
        try:
            if fault == "truncated":
                log({**entry, "outcome": "truncated"})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            if fault == "nonjson":
                log({**entry, "outcome": "nonjson"})
                return self.send(200, b"<html><body>502 Bad Gateway</body></html>")
            if fault == "timeout":
                return self.send(200, data)
            self.send(200, data)
            log({**entry, "outcome": "ok"})
        except (BrokenPipeError, ConnectionResetError):
            log({**entry, "outcome": "client gone"})


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--log", required=True)
    p.add_argument("--faults", default="")
    p.add_argument("--every", type=int, default=5)
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--timeout-sleep", type=float, default=3.0)
    p.add_argument("--always-fail", default="")
    p.add_argument("--always-status", type=int, default=0)
    ARGS = p.parse_args()
    ARGS.faults = [f for f in ARGS.faults.split(",") if f]
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
