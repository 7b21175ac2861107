#!/usr/bin/env python3
"""Peak memory and time of `tdscale ingest` on Hugging Face-style Parquet datasets, beside DuckDB
and polars reading the same files, in one run.

Writes two Parquet files of N conversations each (row groups of 10,000 rows), the two shapes
datasets ship in: `messages` as JSON text, and `messages` as a nested
list<struct<role, content, tool_calls list<struct<id, type, function struct<name, arguments>>>>>.
Each conversation is a user turn, an assistant call with JSON arguments, the tool's result and
the assistant's answer. Then, each in its own process under GNU time:
  - `tdscale ingest` of the file into a fresh corpus (every row parsed, stored as Parquet);
  - DuckDB: the same file to Parquet with the messages parsed (`json_transform` for the JSON text,
    the nested column as it is);
  - polars: read_parquet, then write_parquet (no parsing of the JSON text).
DuckDB and polars do less than tdscale (no dialect detection, no canonical schema, no ids): their
figures bound what reading and writing the bytes costs. Results go to standard output as a
Markdown table, and are appended to benches/RESULTS.md with --record.

usage: python3 benches/parquet_input.py [--rows 1000000] [--bin target/release/tdscale] [--work DIR] [--record]
pyarrow is needed to write the inputs; DuckDB and polars are installed with pip when missing.
"""
import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def conversation(i):
    """The messages of conversation i (varied so that no two rows are the same)."""
    order = f"ord_{i:08d}"
    return [
        {"role": "user", "content": f"Where is my order {order}? I am customer {i % 997}."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": f"call_{i}",
                    "type": "function",
                    "function": {
                        "name": ["get_order", "track_parcel", "refund_order"][i % 3],
                        "arguments": json.dumps({"order_id": order, "verbose": i % 2 == 0}),
                    },
                }
            ],
        },
        {"role": "tool", "tool_call_id": f"call_{i}", "content": json.dumps({"order_id": order, "status": "shipped", "eta_days": i % 9})},
        {"role": "assistant", "content": f"Order {order} has shipped and arrives in {i % 9} days."},
    ]


def write_inputs(rows, work):
    import pyarrow as pa
    import pyarrow.parquet as pq

    call = pa.struct([("id", pa.string()), ("type", pa.string()),
                      ("function", pa.struct([("name", pa.string()), ("arguments", pa.string())]))])
    message = pa.struct([("role", pa.string()), ("content", pa.string()),
                         ("tool_calls", pa.list_(call)), ("tool_call_id", pa.string())])
    text_schema = pa.schema([("id", pa.string()), ("messages", pa.string()), ("split", pa.string())])
    nested_schema = pa.schema([("id", pa.string()), ("messages", pa.list_(message)), ("split", pa.string())])
    paths = {"json_text": os.path.join(work, "json_text.parquet"), "nested": os.path.join(work, "nested.parquet")}
    writers = {"json_text": pq.ParquetWriter(paths["json_text"], text_schema, compression="zstd"),
               "nested": pq.ParquetWriter(paths["nested"], nested_schema, compression="zstd")}
    chunk = 10_000
    for start in range(0, rows, chunk):
        ids, texts, nested, splits = [], [], [], []
        for i in range(start, min(start + chunk, rows)):
            msgs = conversation(i)
            ids.append(f"row-{i}")
            texts.append(json.dumps(msgs))
            nested.append(msgs)
            splits.append("test" if i % 10 == 0 else "train")
        writers["json_text"].write_table(pa.table({"id": ids, "messages": texts, "split": splits}, schema=text_schema))
        writers["nested"].write_table(pa.table({"id": ids, "messages": nested, "split": splits}, schema=nested_schema))
    for w in writers.values():
        w.close()
    return paths


DUCKDB = r"""
import duckdb, sys
src, dst, shape = sys.argv[1:4]
msgs = "json_transform(messages, '[\"JSON\"]')" if shape == "json_text" else "messages"
duckdb.sql(f"COPY (SELECT id, {msgs} AS messages, split FROM read_parquet('{src}')) TO '{dst}' (FORMAT parquet)")
"""

POLARS = r"""
import polars as pl, sys
pl.read_parquet(sys.argv[1]).write_parquet(sys.argv[2])
"""


def timed(cmd):
    """Runs cmd under GNU time; returns (seconds, peak MiB)."""
    out = subprocess.run(["/usr/bin/time", "-f", "%e %M"] + cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out.stderr[-2000:]}")
    secs, kib = out.stderr.strip().splitlines()[-1].split()
    return float(secs), int(kib) / 1024


def ensure(module, pip_name):
    try:
        __import__(module)
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", pip_name], check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "tdscale"))
    ap.add_argument("--work", default=None)
    ap.add_argument("--record", action="store_true", help="append the table to benches/RESULTS.md")
    a = ap.parse_args()
    if not os.path.exists(a.bin):
        sys.exit(f"no tdscale binary at {a.bin}: cargo build --release, or give --bin")
    ensure("pyarrow", "pyarrow")
    ensure("duckdb", "duckdb")
    ensure("polars", "polars")
    work = tempfile.mkdtemp(prefix="tds-parquet-", dir=a.work)
    try:
        paths = write_inputs(a.rows, work)
        lines = [f"| input ({a.rows:,} rows) | size | tdscale ingest | peak | DuckDB | peak | polars | peak |",
                 "|---|---|---|---|---|---|---|---|"]
        for shape, path in paths.items():
            corpus = os.path.join(work, f"corpus-{shape}")
            t_s, t_m = timed([a.bin, "ingest", corpus, path, "--json"])
            count = subprocess.run([a.bin, "sql", corpus, "--format", "json", "SELECT count(*) AS n FROM trajectories"],
                                   capture_output=True, text=True, check=True).stdout
            n = int(json.loads(count.strip().splitlines()[0])["n"])
            if n != a.rows:
                sys.exit(f"{shape}: {n} trajectories stored, expected {a.rows}")
            d_s, d_m = timed([sys.executable, "-c", DUCKDB, path, os.path.join(work, f"duck-{shape}.parquet"), shape])
            p_s, p_m = timed([sys.executable, "-c", POLARS, path, os.path.join(work, f"polars-{shape}.parquet")])
            size = os.path.getsize(path) / 2**20
            lines.append(f"| messages as {shape.replace('_', ' ')} | {size:.0f} MiB | {t_s:.1f} s | {t_m:.0f} MiB "
                         f"| {d_s:.1f} s | {d_m:.0f} MiB | {p_s:.1f} s | {p_m:.0f} MiB |")
            shutil.rmtree(corpus)
        table = "\n".join(lines)
        print(table)
        if a.record:
            with open(os.path.join(HERE, "RESULTS.md"), "a") as f:
                f.write(f"\n## Parquet input, {datetime.date.today()} (`benches/parquet_input.py`, {os.path.basename(a.bin)} at {a.bin})\n\n{table}\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
