#!/usr/bin/env python3
"""Plain-Python reference of the tdscale metrics (DESIGN.md, "Metrics"), written from the
definitions and independent of the Rust code. It reads trajectory files directly (tau-bench
result files, or OpenAI chat JSONL) and prints, per group, what `tdscale report --json` prints.
It is both the oracle of the agreement test and the plain-Python baseline of the benchmarks.

usage: python3 benches/reference_metrics.py [--by domain|source] FILE...
"""
import argparse
import json
import math
import os
import sys
from collections import Counter, defaultdict

CODE_TOOLS = {"python", "code_interpreter", "execute_code", "run_code", "run_python"}
W_BASE, W_LEAVES, W_DEP, W_NEW, W_PAR, W_CODE = 1.0, 0.5, 1.0, 1.0, 0.5, 1.0


class Num(str):
    """A JSON number kept as written in the text."""


def leaves(arguments):
    """Scalar leaves of JSON text, or None when it is not JSON."""
    try:
        v = json.loads(arguments, parse_int=Num, parse_float=Num)
    except (ValueError, TypeError):
        return None
    out = []

    def walk(x):
        if isinstance(x, dict):
            for y in x.values():
                walk(y)
        elif isinstance(x, list):
            for y in x:
                walk(y)
        else:
            out.append(x)

    walk(v)
    return out


def consumes(arguments, earlier):
    if not earlier:
        return False
    ls = leaves(arguments)
    if ls is None:
        return False
    for leaf in ls:
        if isinstance(leaf, Num):
            if float(leaf) in (0.0, 1.0):
                continue
            needle = str.__str__(leaf)
        elif isinstance(leaf, str):
            if len(leaf) < 3:
                continue
            needle = leaf
        else:
            continue
        if any(needle in c for c in earlier):
            return True
    return False


def is_error(msg):
    if msg.get("error") is True:
        return True
    c = (msg.get("content") or "").strip()
    if c.lower().startswith("error"):
        return True
    if c.startswith("{"):
        try:
            v = json.loads(c)
            return isinstance(v, dict) and "error" in v
        except ValueError:
            return False
    return False


def calls_of(msg):
    out = []
    for c in msg.get("tool_calls") or []:
        f = c.get("function", c)
        a = f.get("arguments")
        out.append((f["name"], a if isinstance(a, str) else json.dumps(a)))
    return out


def bucket(n):
    return "4+" if n >= 4 else str(n)


def reasoning_mode(messages):
    moves, earlier = [], []
    run = [0, False]
    last_error = False

    def push(m):
        if m not in moves:
            moves.append(m)

    def end_run():
        if run[0] > 0:
            push(("C" if run[1] else "S") + bucket(run[0]))
            run[0], run[1] = 0, False

    for m in messages:
        role = m["role"]
        if role == "assistant":
            calls = calls_of(m)
            if not calls:
                mv = "Q" if (m.get("content") or "").strip().endswith("?") else "A"
            elif len(calls) >= 2:
                mv = "P" + bucket(len(calls))
            elif calls[0][0] in CODE_TOOLS:
                mv = "X"
            elif last_error:
                mv = "R"
            else:
                run[0] += 1
                run[1] = run[1] or consumes(calls[0][1], earlier)
                continue
            end_run()
            push(mv)
        elif role == "tool":
            end_run()
            earlier.append(m.get("content") or "")
            last_error = is_error(m)
        else:
            end_run()
    end_run()
    return ">".join(moves)


def action_complexity(messages):
    total, earlier, seen = 0.0, [], set()
    for m in messages:
        if m["role"] == "tool":
            earlier.append(m.get("content") or "")
        elif m["role"] == "assistant":
            calls = calls_of(m)
            for name, args in calls:
                ls = leaves(args)
                n_leaves = 0 if ls is None else len(ls)
                new = name not in seen
                seen.add(name)
                total += (W_BASE + W_LEAVES * math.log(1 + n_leaves) + W_DEP * consumes(args, earlier)
                          + W_NEW * new + W_PAR * (len(calls) >= 2) + W_CODE * (name in CODE_TOOLS))
    return total


def entropy(counter):
    n = sum(counter.values())
    if n == 0:
        return None
    return -sum(c / n * math.log2(c / n) for c in counter.values())


def normalized(counter):
    h = entropy(counter)
    if h is None:
        return None
    return 0.0 if len(counter) <= 1 else h / math.log2(len(counter))


def percentile(values, q):
    """Nearest-rank percentile."""
    s = sorted(values)
    k = max(1, math.ceil(q * len(s)))
    return s[k - 1]


def load(path):
    """(source, domain, messages) of every trajectory in a tau-bench file or OpenAI JSONL."""
    source = os.path.basename(path)
    for ext in (".jsonl", ".json"):
        if source.endswith(ext):
            source = source[: -len(ext)]
    domain = next((d for d in ("airline", "retail", "telecom") if d in source.lower()), None)
    with open(path) as f:
        first = f.read(4096).lstrip()
        f.seek(0)
        if first.startswith("["):
            records = json.load(f)
        else:
            # JSON lines are streamed: only the per-trajectory results are kept.
            records = (json.loads(line) for line in f if line.strip())
        yield from _rows(source, domain, records)


def _rows(source, domain, records):
    for r in records:
        msgs = r.get("traj") or r.get("messages")
        msgs = [m for m in msgs if m["role"] not in ("system", "developer")]
        yield source, r.get("domain", domain), msgs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--by", default="domain", choices=["domain", "source"])
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    groups = defaultdict(list)
    for path in args.files:
        for source, domain, msgs in load(path):
            key = source if args.by == "source" else (domain if domain is not None else "(none)")
            groups[key].append((domain, reasoning_mode(msgs), action_complexity(msgs)))
    out = []
    for key in sorted(groups):
        rows = groups[key]
        domains = Counter(d for d, _, _ in rows if d is not None)
        modes = Counter(m for _, m, _ in rows)
        cac = [c for _, _, c in rows]
        out.append({
            "group": key,
            "trajectories": len(rows),
            "de_bits": entropy(domains),
            "rme_bits": entropy(modes),
            "rme_normalized": normalized(modes),
            "modes": len(modes),
            "cac_mean": sum(cac) / len(cac),
            "cac_p50": percentile(cac, 0.5),
            "cac_p90": percentile(cac, 0.9),
            "cac_p99": percentile(cac, 0.99),
            "top_modes": [{"mode": m, "trajectories": n} for m, n in sorted(modes.items(), key=lambda x: (-x[1], x[0]))[:5]],
        })
    json.dump({"groups": out}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
