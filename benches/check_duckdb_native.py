#!/usr/bin/env python3
"""Checks benches/duckdb_native.sql (DuckDB's own SQL for the reasoning mode and CAC) against the
plain-Python reference (benches/reference_metrics.py) trajectory by trajectory, so that the
DuckDB figures of benches/compare.py time a query that computes the same numbers.

Input: the 200 tau-bench airline trajectories of ../shared/data and a handful of edge cases
(parallel calls, code calls, an error then a retry, runs of single calls, invalid and nested
arguments, escaped strings, an empty conversation), written as a Parquet file with the
`messages` type of tdscale's `trajectories` table.

usage: python3 benches/check_duckdb_native.py [TAU_BENCH_FILE]
Exits 1 and prints the first differences when a trajectory disagrees.
"""
import json
import math
import os
import sys
import tempfile

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import reference_metrics as ref  # noqa: E402

CALL = pa.struct([("id", pa.string()), ("name", pa.string()), ("arguments", pa.string())])
MESSAGE = pa.struct([
    ("role", pa.string()), ("content", pa.string()), ("reasoning", pa.string()),
    ("tool_calls", pa.list_(CALL)), ("tool_call_id", pa.string()), ("name", pa.string()),
    ("error", pa.bool_()),
])


def call(name, args):
    return {"function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}}


def edge_cases():
    yield "empty", []
    yield "questions", [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Which one?  \n"},
                        {"role": "assistant", "content": "Done."}]
    yield "parallel-code-error", [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": None, "tool_calls": [call("a", {"q": "abc"}), call("b", {"x": 1}), call("a", [])]},
        {"role": "tool", "content": '{"id": "R-123", "n": 250}'},
        {"role": "tool", "content": "ok"},
        {"role": "tool", "content": "ok"},
        {"role": "assistant", "content": None, "tool_calls": [call("python", {"code": "print(1)"})]},
        {"role": "tool", "content": "  ERROR: boom"},
        {"role": "assistant", "content": None, "tool_calls": [call("c", {"id": "R-123"})]},
        {"role": "tool", "content": '{"error": "no"}'},
        {"role": "assistant", "content": None, "tool_calls": [call("c", {"n": 250, "deep": {"l": [1, 0, 2.50, "R-1"]}})]},
        {"role": "tool", "content": "fine"},
    ]
    yield "runs", [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": None, "tool_calls": [call("a", {"q": "zz"})]},
        {"role": "assistant", "content": None, "tool_calls": [call("a", {"q": "yy"})]},
        {"role": "tool", "content": "first \"quoted\" result 4711"},
        {"role": "assistant", "content": None, "tool_calls": [call("b", {"v": 4711})]},
        {"role": "assistant", "content": None, "tool_calls": [call("b", {"v": 'first "quoted"'})]},
        {"role": "assistant", "content": None, "tool_calls": [call("b", "not json {")]},
        {"role": "assistant", "content": None, "tool_calls": [call("b", {"k": True, "n": None})]},
        {"role": "tool", "content": "x"},
        {"role": "assistant", "content": "anything else?"},
    ]


def to_row(traj_id, msgs):
    out = []
    for m in msgs:
        calls = [{"id": None, "name": n, "arguments": a} for n, a in ref.calls_of(m)] if m.get("tool_calls") else None
        out.append({"role": m["role"], "content": m.get("content"), "reasoning": None, "tool_calls": calls,
                    "tool_call_id": m.get("tool_call_id"), "name": m.get("name"), "error": m.get("error")})
    return {"traj_id": traj_id, "domain": "airline", "round": 0, "reasoning_mode": None, "messages": out}


def main():
    tau = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "shared", "data", "tau-bench", "gpt-4o-airline.json")
    cases = [(f"tau-{i}", msgs) for i, (_, _, msgs) in enumerate(ref.load(tau))] + list(edge_cases())
    rows = [to_row(t, [m for m in msgs if m["role"] not in ("system", "developer")]) for t, msgs in cases]
    schema = pa.schema([("traj_id", pa.string()), ("domain", pa.string()), ("round", pa.int64()),
                        ("reasoning_mode", pa.string()), ("messages", pa.list_(MESSAGE))])
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.parquet")
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
        con = duckdb.connect()
        with open(os.path.join(HERE, "duckdb_native.sql")) as f:
            con.execute(f.read().replace("{trajectories}", path))
        got = {t: (m, c) for t, m, c in con.sql("SELECT traj_id, mode, cac FROM native_metrics").fetchall()}
    bad = []
    for (t, msgs), row in zip(cases, rows):
        want_msgs = [m for m in msgs if m["role"] not in ("system", "developer")]
        want = (ref.reasoning_mode(want_msgs), ref.action_complexity(want_msgs))
        mode, cac = got[t]
        if mode != want[0] or not math.isclose(cac, want[1], rel_tol=1e-9, abs_tol=1e-9):
            bad.append(f"{t}: duckdb ({mode!r}, {cac}) reference ({want[0]!r}, {want[1]})")
    print(f"{len(cases) - len(bad)} of {len(cases)} trajectories agree")
    if bad:
        print("\n".join(bad[:10]))
        sys.exit(1)


if __name__ == "__main__":
    main()
