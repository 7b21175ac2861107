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
     DuckDB runs both plans in its metrics process and reports their own times, so its figure
     is its metrics time plus the plan's time.
Each step runs --repeats times; the table reports the median time and the largest peak memory,
and a second table gives tdscale's seconds per 10^5 trajectories at each size (linear scaling
means equal numbers).
Every step runs in its own process, so the peak memory is that step's. Results are appended to
benches/RESULTS.md as a table of times, ratios (peer time / tdscale time) and peak memory.
Above --peers-up-to trajectories polars and the plain-Python reference are not run (polars
holds the whole input in memory; the reference takes minutes per 10^6); the table says so.
Each size's files are deleted once measured (10^7 trajectories are ~36 GB of JSONL).

usage: python3 benches/compare.py [--sizes 100000,1000000] [--repeats 3 | 3,3,1] [--peers-up-to N] [--work DIR]
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
TIME_FILE = os.path.join(tempfile.gettempdir(), "tdscale-compare-time.txt")


def measure_once(cmd, label, before=None):
    """One run under GNU time: (seconds, peak MiB, stdout), or None when it failed."""
    if before:
        before()
    out = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", TIME_FILE] + cmd, capture_output=True, text=True)
    if out.returncode != 0:
        # A peer that runs out of memory or fails is reported, not fatal.
        print(f"{label} failed:\n{out.stderr[-2000:]}", file=sys.stderr)
        return None
    with open(TIME_FILE) as f:
        secs, kib = f.read().strip().splitlines()[-1].split()
    return float(secs), int(kib) / 1024, out.stdout


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def measure(cmd, label, before=None):
    """Runs cmd REPEATS times under GNU time; returns (median seconds, largest peak MiB, the
    stdout of every run). `before` runs ahead of each repeat (e.g. to remove the previous output)."""
    runs = [measure_once(cmd, label, before) for _ in range(REPEATS)]
    if any(r is None for r in runs):
        return None
    return median(r[0] for r in runs), max(r[1] for r in runs), [r[2] for r in runs]


PY_DUCKDB_INGEST = """
import duckdb, sys
duckdb.sql(f"COPY (SELECT * FROM read_json('{sys.argv[1]}', format='newline_delimited')) TO '{sys.argv[2]}' (FORMAT parquet)")
"""

PY_POLARS_INGEST = """
import polars as pl, sys
pl.scan_ndjson(sys.argv[1], infer_schema_length=10000).sink_parquet(sys.argv[2])
"""

PY_DUCKDB_METRICS = """
import duckdb, json, sys, time
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
timings = {}
if 'stratified' in sys.argv[3:]:
    # The stratified budget plan, over the metrics computed above.
    t0 = time.perf_counter()
    con.sql('''
    SELECT traj_id FROM (
      SELECT traj_id, row_number() OVER (ORDER BY turn_in_domain, hash(domain)) pick FROM (
        SELECT *, row_number() OVER (PARTITION BY domain ORDER BY turn_in_cell, hash(mode)) turn_in_domain FROM (
          SELECT traj_id, domain, mode, row_number() OVER (PARTITION BY domain, mode ORDER BY hash(traj_id)) turn_in_cell FROM m)))
    WHERE pick <= 5000''').fetchall()
    timings['stratified'] = time.perf_counter() - t0
if 'seeds' in sys.argv[3:]:
    # The seed plan: surprisal of the (domain, mode) cell plus a bonus above the CAC median.
    t0 = time.perf_counter()
    con.sql('''
    WITH cells AS (SELECT domain, mode, count(*) c FROM m GROUP BY domain, mode),
         t AS (SELECT count(*) total, median(cac) med FROM m)
    SELECT m.traj_id, -log2(cells.c / t.total) + CASE WHEN m.cac > t.med THEN 1 ELSE 0 END AS score
    FROM m JOIN cells USING (domain, mode) CROSS JOIN t
    ORDER BY score DESC, hash(m.traj_id) LIMIT 200''').fetchall()
    timings['seeds'] = time.perf_counter() - t0
print(json.dumps({'rows': len(rows), 'plans': timings}))
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
    ap.add_argument("--repeats", default="3", help="runs per step: K, or K1,K2,.. per size")
    ap.add_argument("--peers-up-to", type=int, default=None, help="run polars and plain Python only up to this N")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "tdscale-compare"))
    args = ap.parse_args()
    global REPEATS
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
    repeats = [max(1, int(k)) for k in args.repeats.split(",")]
    repeats = (repeats + [repeats[-1]] * len(sizes))[: len(sizes)]
    rows = []
    for n, k in zip(sizes, repeats):
        REPEATS = k
        w = os.path.join(args.work, str(n))
        os.makedirs(w)
        jsonl = os.path.join(w, "data.jsonl")
        subprocess.run([tds, "gen", os.path.join(w, "generated"), "--trajectories", str(n), "--seed", "1", "--jsonl", jsonl, "--json"], check=True, capture_output=True)
        mb = os.path.getsize(jsonl) / 1e6
        corpus = os.path.join(w, "corpus")
        peers = args.peers_up_to is None or n <= args.peers_up_to
        largest = n == max(sizes)
        res = {}
        # Every repeat ingests into an empty corpus (a second ingest would only find duplicates).
        res["ingest tdscale"] = measure([tds, "ingest", corpus, jsonl, "--json"], "tdscale ingest", before=lambda: shutil.rmtree(corpus, ignore_errors=True))
        res["ingest duckdb"] = measure([sys.executable, "-c", PY_DUCKDB_INGEST, jsonl, os.path.join(w, "duck.parquet")], "duckdb ingest")
        if peers:
            res["ingest polars"] = measure([sys.executable, "-c", PY_POLARS_INGEST, jsonl, os.path.join(w, "polars.parquet")], "polars ingest")
        res["metrics tdscale"] = measure([tds, "sql", corpus, "-f", os.path.join(ROOT, "queries", "bench_metrics.sql"), "--format", "csv"], "tdscale metrics")
        plans = ["stratified", "seeds"] if largest else []
        duck = measure([sys.executable, "-c", PY_DUCKDB_METRICS, os.path.join(w, "duck.parquet"), HERE] + plans, "duckdb metrics")
        if duck is not None:
            # The metrics figure leaves out the plans the same process ran afterwards.
            outs = [json.loads(o.strip().splitlines()[-1])["plans"] for o in duck[2]]
            plan_s = {p: median(o[p] for o in outs) for p in plans}
            res["metrics duckdb"] = (duck[0] - sum(plan_s.values()), duck[1])
            for p in plans:
                res[f"{p} duckdb"] = (res["metrics duckdb"][0] + plan_s[p], duck[1])
        if peers:
            res["metrics polars"] = measure([sys.executable, "-c", PY_POLARS_METRICS, os.path.join(w, "polars.parquet"), HERE], "polars metrics")
            res["metrics python"] = measure([sys.executable, os.path.join(HERE, "reference_metrics.py"), "--by", "domain", jsonl], "python metrics")
        if largest:
            res["stratified tdscale"] = measure([tds, "budget", corpus, "--budgets", "5000", "--strategies", "stratified", "--seeds", "1", "--no-training-files", "--out", os.path.join(w, "run"), "--json"], "tdscale budget")
            res["seeds tdscale"] = measure([tds, "sql", corpus, "-f", os.path.join(ROOT, "queries", "seeds_next_round.sql"), "-p", "n=200", "--format", "csv"], "tdscale seeds")
        res = {k: None if v is None else v[:2] for k, v in res.items()}
        rows.append((n, mb, res, peers))
        print(n, json.dumps(res), flush=True)
        shutil.rmtree(w, ignore_errors=True)

    lines = [
        "",
        f"## tdscale vs DuckDB {duckdb.__version__}, polars {polars.__version__}, plain Python ({datetime.date.today()})",
        "",
        f"`python3 benches/compare.py --sizes {args.sizes} --repeats {args.repeats}" + (f" --peers-up-to {args.peers_up_to}" if args.peers_up_to else "") + f"` on {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}.",
        f"Median of {', '.join(map(str, repeats))} run(s) per size (seconds) and largest peak memory (MiB); ratio = peer time / tdscale time (above 1: tdscale is faster).",
        "DuckDB and polars compute the reasoning mode and CAC with the Python reference functions (they",
        "have no such functions); the plain-Python reference does everything in Python. DuckDB's",
        "plan figures are its metrics time plus the plan's own time in the same process.",
        "",
        "| N | JSONL MB | step | tdscale s | tdscale MiB | peer | peer s | peer MiB | ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    def cells(m):
        return "failed | -" if m is None else f"{m[0]:.2f} | {m[1]:.0f}"

    def row(n, mb, step, ours, peer, theirs):
        ratio = "-" if ours is None or theirs is None else f"{theirs[0] / max(ours[0], 0.01):.1f}×"
        lines.append(f"| {n:,} | {mb:.0f} | {step} | {cells(ours)} | {peer} | {cells(theirs)} | {ratio} |")

    for n, mb, res, peers in rows:
        for step, names in (("ingest", ["duckdb", "polars"]), ("metrics", ["duckdb", "polars", "python"])):
            for p in names:
                if f"{step} {p}" in res:
                    row(n, mb, step, res[f"{step} tdscale"], p, res[f"{step} {p}"])
                else:
                    lines.append(f"| {n:,} | {mb:.0f} | {step} | {cells(res[f'{step} tdscale'])} | {p} | not run | - | - |")
        if "stratified tdscale" in res:
            row(n, mb, "stratified budget 5000 (tdscale: metrics, plan, manifest; DuckDB: metrics + plan)", res["stratified tdscale"], "duckdb", res.get("stratified duckdb"))
            row(n, mb, "seed selection, 200 seeds (tdscale: queries/seeds_next_round.sql; DuckDB: metrics + plan)", res["seeds tdscale"], "duckdb", res.get("seeds duckdb"))
    if any(not peers for *_, peers in rows):
        lines += ["", f"polars and the plain-Python reference were not run above {args.peers_up_to:,} trajectories."]
    lines += ["", "tdscale seconds per 10^5 trajectories (equal across sizes = linear scaling):", "", "| step | " + " | ".join(f"N = {n:,}" for n, *_ in rows) + " |", "|---|" + "---|" * len(rows)]
    for step in ("ingest", "metrics"):
        per = [res[f"{step} tdscale"] for _, _, res, _ in rows]
        lines.append(f"| {step} | " + " | ".join("-" if m is None else f"{m[0] / (n / 1e5):.2f}" for m, (n, *_) in zip(per, rows)) + " |")
    with open(os.path.join(HERE, "RESULTS.md"), "a") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
