#!/usr/bin/env python3
"""tdscale against DuckDB, polars and plain Python on the same generated corpus, in one run.

For each size N it generates a corpus with `tdscale gen` (OpenAI JSONL and Parquet), then times
and measures the peak memory (GNU time) of:
  1. ingest JSONL -> Parquet: tdscale ingest, DuckDB COPY (read_json), polars scan_ndjson/sink_parquet;
  2. metrics by domain and by round (DE, RME, mean and p90 CAC): tdscale SQL
     (queries/bench_metrics.sql), DuckDB SQL and polars with the reasoning mode and CAC as Python
     functions (the reference in benches/reference_metrics.py: neither has them built in), and
     the plain-Python reference alone;
  3. at the largest size, a stratified budget selection (tdscale budget vs the same window-function
     plan in DuckDB over the metrics it computed) and the seed selection of the next evolution
     round (queries/seeds_next_round.sql vs the same surprisal + CAC-median plan in DuckDB).
Each step runs --repeats times; the table reports the median time and the largest peak memory,
and a second table gives tdscale's seconds per 10^5 trajectories at each size (linear scaling
means equal numbers).
Every step runs in its own process, so the peak memory is that step's. Results are appended to
benches/RESULTS.md as a table of times, ratios (peer time / tdscale time) and peak memory.

usage: python3 benches/compare.py [--sizes 100000,1000000] [--repeats 3] [--work DIR]
DuckDB, polars and numpy (for DuckDB's Python functions) are installed with pip when missing.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def ensure(pkg):
    try:
        __import__(pkg)
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", pkg], check=True)


REPEATS = 1


def measure_once(cmd, label, before=None):
    if before:
        before()
    out = subprocess.run(["/usr/bin/time", "-f", "%e %M"] + cmd, capture_output=True, text=True)
    if out.returncode != 0:
        # A peer that runs out of memory or fails is reported, not fatal.
        print(f"{label} failed:\n{out.stderr[-2000:]}", file=sys.stderr)
        return None
    secs, kib = out.stderr.strip().splitlines()[-1].split()
    return float(secs), int(kib) / 1024


def measure(cmd, label, before=None):
    """Runs cmd REPEATS times under GNU time; returns (median seconds, largest peak MiB).
    `before` runs ahead of each repeat (e.g. to remove the previous output)."""
    runs = [measure_once(cmd, label, before) for _ in range(REPEATS)]
    if any(r is None for r in runs):
        return None
    times = sorted(r[0] for r in runs)
    return times[len(times) // 2], max(r[1] for r in runs)


PY_DUCKDB_INGEST = """
import duckdb, sys
duckdb.sql(f"COPY (SELECT * FROM read_json('{sys.argv[1]}', format='newline_delimited')) TO '{sys.argv[2]}' (FORMAT parquet)")
"""

PY_POLARS_INGEST = """
import polars as pl, sys
pl.scan_ndjson(sys.argv[1], infer_schema_length=10000).sink_parquet(sys.argv[2])
"""

PY_DUCKDB_METRICS = """
import duckdb, json, sys
sys.path.insert(0, sys.argv[2])
import reference_metrics as ref
con = duckdb.connect()
con.create_function('rmode', lambda s: ref.reasoning_mode([m for m in json.loads(s) if m['role'] not in ('system', 'developer')]), ['VARCHAR'], 'VARCHAR')
con.create_function('cac', lambda s: ref.action_complexity(json.loads(s)), ['VARCHAR'], 'DOUBLE')
con.sql(f"CREATE TABLE m AS SELECT traj_id, domain, 0 AS round, rmode(to_json(messages)) AS mode, cac(to_json(messages)) AS cac FROM read_parquet('{sys.argv[1]}')")
q = '''
WITH d AS (SELECT domain, count(*) n FROM m GROUP BY domain),
     dm AS (SELECT domain, mode, count(*) c FROM m GROUP BY domain, mode),
     rme_d AS (SELECT dm.domain, -sum(c / n * log2(c / n)) rme FROM dm JOIN d USING (domain) GROUP BY dm.domain),
     by_domain AS (SELECT domain, count(*) n, avg(cac) cac_mean, quantile_cont(cac, 0.9) cac_p90 FROM m GROUP BY domain),
     r AS (SELECT round, count(*) n FROM m GROUP BY round),
     rd AS (SELECT round, domain, count(*) c FROM m GROUP BY round, domain),
     rm AS (SELECT round, mode, count(*) c FROM m GROUP BY round, mode),
     de_r AS (SELECT rd.round, -sum(c / n * log2(c / n)) de FROM rd JOIN r USING (round) GROUP BY rd.round),
     rme_r AS (SELECT rm.round, -sum(c / n * log2(c / n)) rme FROM rm JOIN r USING (round) GROUP BY rm.round),
     by_round AS (SELECT round, count(*) n, avg(cac) cac_mean, quantile_cont(cac, 0.9) cac_p90 FROM m GROUP BY round)
SELECT b.domain, NULL AS round, b.n, 0.0 AS de, x.rme, b.cac_mean, b.cac_p90 FROM by_domain b JOIN rme_d x USING (domain)
UNION ALL
SELECT NULL, b.round, b.n, e.de, x.rme, b.cac_mean, b.cac_p90 FROM by_round b JOIN de_r e USING (round) JOIN rme_r x USING (round)
'''
rows = con.sql(q).fetchall()
if len(sys.argv) > 3 and sys.argv[3].startswith('seeds:'):
    # The seed plan: surprisal of the (domain, mode) cell plus a bonus above the CAC median.
    n = int(sys.argv[3].split(':')[1])
    con.sql(f'''
    WITH cells AS (SELECT domain, mode, count(*) c FROM m GROUP BY domain, mode),
         t AS (SELECT count(*) total, median(cac) med FROM m)
    SELECT m.traj_id, -log2(cells.c / t.total) + CASE WHEN m.cac > t.med THEN 1 ELSE 0 END AS score
    FROM m JOIN cells USING (domain, mode) CROSS JOIN t
    ORDER BY score DESC, hash(m.traj_id) LIMIT {n}''').fetchall()
elif len(sys.argv) > 3:
    # The stratified budget plan, over the metrics computed above.
    budget = int(sys.argv[3])
    con.sql(f'''
    SELECT traj_id FROM (
      SELECT traj_id, row_number() OVER (ORDER BY turn_in_domain, hash(domain)) pick FROM (
        SELECT *, row_number() OVER (PARTITION BY domain ORDER BY turn_in_cell, hash(mode)) turn_in_domain FROM (
          SELECT traj_id, domain, mode, row_number() OVER (PARTITION BY domain, mode ORDER BY hash(traj_id)) turn_in_cell FROM m)))
    WHERE pick <= {budget}''').fetchall()
print(len(rows))
"""

PY_POLARS_METRICS = """
import polars as pl, sys
sys.path.insert(0, sys.argv[2])
import reference_metrics as ref
df = pl.read_parquet(sys.argv[1], columns=['domain', 'messages'])
def mode(ms):
    return ref.reasoning_mode([m for m in ms if m['role'] not in ('system', 'developer')])
def cac(ms):
    return ref.action_complexity(ms)
msgs = df['messages'].to_list()
m = df.select('domain').with_columns(pl.lit(0).alias('round'), pl.Series('mode', [mode(x) for x in msgs]), pl.Series('cac', [cac(x) for x in msgs]))
def entropy(group, col):
    c = m.group_by(group + [col]).len()
    return c.with_columns((pl.col('len') / pl.col('len').sum().over(group)).alias('p')).group_by(group).agg((-(pl.col('p') * pl.col('p').log(2)).sum()).alias('h'))
by_domain = m.group_by('domain').agg(pl.len(), pl.col('cac').mean().alias('cac_mean'), pl.col('cac').quantile(0.9).alias('cac_p90')).join(entropy(['domain'], 'mode'), on='domain')
by_round = m.group_by('round').agg(pl.len(), pl.col('cac').mean().alias('cac_mean'), pl.col('cac').quantile(0.9).alias('cac_p90')).join(entropy(['round'], 'mode'), on='round').join(entropy(['round'], 'domain').rename({'h': 'de'}), on='round')
print(by_domain.height + by_round.height)
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "tdscale-compare"))
    args = ap.parse_args()
    global REPEATS
    REPEATS = max(1, args.repeats)
    for p in ("duckdb", "polars", "numpy"):
        ensure(p)
    import duckdb
    import polars

    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(os.path.expanduser("~"), ".cache", "tdscale-target"))
    subprocess.run(["cargo", "build", "--release", "--locked"], cwd=ROOT, check=True, env={**os.environ, "CARGO_TARGET_DIR": target})
    tds = os.path.join(target, "release", "tdscale")
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for n in sizes:
        w = os.path.join(args.work, str(n))
        os.makedirs(w)
        jsonl = os.path.join(w, "data.jsonl")
        subprocess.run([tds, "gen", os.path.join(w, "generated"), "--trajectories", str(n), "--seed", "1", "--jsonl", jsonl, "--json"], check=True, capture_output=True)
        mb = os.path.getsize(jsonl) / 1e6
        corpus = os.path.join(w, "corpus")
        res = {}
        # Every repeat ingests into an empty corpus (a second ingest would only find duplicates).
        res["ingest tdscale"] = measure([tds, "ingest", corpus, jsonl, "--json"], "tdscale ingest", before=lambda: shutil.rmtree(corpus, ignore_errors=True))
        res["ingest duckdb"] = measure([sys.executable, "-c", PY_DUCKDB_INGEST, jsonl, os.path.join(w, "duck.parquet")], "duckdb ingest")
        res["ingest polars"] = measure([sys.executable, "-c", PY_POLARS_INGEST, jsonl, os.path.join(w, "polars.parquet")], "polars ingest")
        res["metrics tdscale"] = measure([tds, "sql", corpus, "-f", os.path.join(ROOT, "queries", "bench_metrics.sql"), "--format", "csv"], "tdscale metrics")
        largest = n == max(sizes)
        duck_args = [sys.executable, "-c", PY_DUCKDB_METRICS, os.path.join(w, "duck.parquet"), HERE]
        res["metrics duckdb"] = measure(duck_args, "duckdb metrics")
        res["metrics polars"] = measure([sys.executable, "-c", PY_POLARS_METRICS, os.path.join(w, "polars.parquet"), HERE], "polars metrics")
        res["metrics python"] = measure([sys.executable, os.path.join(HERE, "reference_metrics.py"), "--by", "domain", jsonl], "python metrics")
        if largest:
            res["stratified tdscale"] = measure([tds, "budget", corpus, "--budgets", "5000", "--strategies", "stratified", "--seeds", "1", "--no-training-files", "--out", os.path.join(w, "run"), "--json"], "tdscale budget")
            res["metrics+stratified duckdb"] = measure(duck_args + ["5000"], "duckdb stratified")
            res["seeds tdscale"] = measure([tds, "sql", corpus, "-f", os.path.join(ROOT, "queries", "seeds_next_round.sql"), "-p", "n=200", "--format", "csv"], "tdscale seeds")
            res["metrics+seeds duckdb"] = measure(duck_args + ["seeds:200"], "duckdb seeds")
        rows.append((n, mb, res))
        print(n, json.dumps(res), flush=True)

    lines = [
        "",
        f"## tdscale vs DuckDB {duckdb.__version__}, polars {polars.__version__}, plain Python ({datetime.date.today()})",
        "",
        f"`python3 benches/compare.py --sizes {args.sizes}` on {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}.",
        f"Median of {REPEATS} run(s) (seconds) and largest peak memory (MiB); ratio = peer time / tdscale time (above 1: tdscale is faster).",
        "DuckDB and polars compute the reasoning mode and CAC with the Python reference functions (they",
        "have no such functions); the plain-Python reference does everything in Python.",
        "",
        "| N | JSONL MB | step | tdscale s | tdscale MiB | peer | peer s | peer MiB | ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    def cells(m):
        return "failed | -" if m is None else f"{m[0]:.2f} | {m[1]:.0f}"

    def row(n, mb, step, ours, peer, theirs):
        ratio = "-" if ours is None or theirs is None else f"{theirs[0] / max(ours[0], 0.01):.1f}×"
        lines.append(f"| {n:,} | {mb:.0f} | {step} | {cells(ours)} | {peer} | {cells(theirs)} | {ratio} |")

    for n, mb, res in rows:
        for step, peers in (("ingest", ["duckdb", "polars"]), ("metrics", ["duckdb", "polars", "python"])):
            for p in peers:
                row(n, mb, step, res[f"{step} tdscale"], p, res[f"{step} {p}"])
        if "stratified tdscale" in res:
            row(n, mb, "stratified budget 5000 (tdscale: metrics, plan, manifest; DuckDB: metrics + plan)", res["stratified tdscale"], "duckdb", res["metrics+stratified duckdb"])
            row(n, mb, "seed selection, 200 seeds (tdscale: queries/seeds_next_round.sql; DuckDB: metrics + plan)", res["seeds tdscale"], "duckdb", res["metrics+seeds duckdb"])
    lines += ["", "tdscale seconds per 10^5 trajectories (equal across sizes = linear scaling):", "", "| step | " + " | ".join(f"N = {n:,}" for n, _, _ in rows) + " |", "|---|" + "---|" * len(rows)]
    for step in ("ingest", "metrics"):
        per = [res[f"{step} tdscale"] for _, _, res in rows]
        lines.append(f"| {step} | " + " | ".join("-" if m is None else f"{m[0] / (n / 1e5):.2f}" for m, (n, _, _) in zip(per, rows)) + " |")
    with open(os.path.join(HERE, "RESULTS.md"), "a") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
