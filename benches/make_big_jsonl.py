#!/usr/bin/env python3
"""Writes a large OpenAI-chat JSONL file made of the real tau-bench airline trajectories, each copy
with its own id, for ingest memory and throughput measurements.

usage: python3 benches/make_big_jsonl.py OUT.jsonl SIZE_MB
"""
import json
import os
import sys

src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../shared/data/tau-bench/gpt-4o-airline.json")
out, size_mb = sys.argv[1], float(sys.argv[2])
records = json.load(open(src))
limit = int(size_mb * 1e6)
written = 0
n = 0
with open(out, "w") as f:
    while written < limit:
        r = records[n % len(records)]
        line = json.dumps({"id": f"copy{n}", "messages": r["traj"], "reward": r["reward"], "task_id": r["task_id"]}) + "\n"
        f.write(line)
        written += len(line)
        n += 1
print(f"{out}: {n} trajectories, {written / 1e6:.0f} MB")
