#!/usr/bin/env python3
"""tdscale against DuckDB, polars and plain Python on the same generated corpus, in one run.

For each size N it generates a corpus with `tdscale gen` (OpenAI JSONL), then times and
measures the peak memory (GNU time) of:
  1. ingest JSONL -> Parquet: tdscale ingest (which also computes and stores every trajectory's
     metrics), DuckDB COPY (read_json), polars scan_ndjson/sink_parquet;
  2. the metrics by domain and by round (DE, RME, mean and p90 CAC):
     - tdscale: queries/bench_metrics.sql over the stored `trajectory_metrics`, and the same SQL
       over the view `computed_trajectory_metrics` (every value computed from `messages`, as
       every query did before the metrics were stored);
     - DuckDB, natively: benches/duckdb_native.sql (reasoning mode and CAC in DuckDB's own SQL,
       checked trajectory by trajectory against the Python reference by
       benches/check_duckdb_native.py) over tdscale's `trajectories` files, then DE and RME from
       the label counts; and the same aggregation over tdscale's stored `trajectory_metrics`
       files (both engines reading the same flat columns);
     - DuckDB and polars with the reasoning mode and CAC as Python functions (the reference in
       benches/reference_metrics.py), and the plain-Python reference alone;
     The output of DuckDB's native query is compared with tdscale's (trajectories, DE, RME and
     mean CAC of every row; p90 is approximate in tdscale) and the run stops if they differ.
  3. the scan floor of both engines over tdscale's `trajectories` files (the number of messages
     and of tool calls, which decodes the nested `messages` column), and CAC with custom
     weights (`action_complexity(messages, [...])`), which must decode it;
  4. at the largest size, a stratified budget selection (tdscale budget vs the same window-function
     plan in DuckDB over the metrics it computed) and the seed selection of the next evolution
     round (queries/seeds_next_round.sql vs the same surprisal + CAC-median plan in DuckDB).
     DuckDB runs both plans in its metrics process and reports their own times, so its figure
     is its metrics time plus the plan's time.
Each step runs --repeats times (the ingests of the engines in interleaved rounds, the order
reversed every other round); the table reports the median time and the largest peak memory,
and a second table gives tdscale's seconds per 10^5 trajectories at each size (linear scaling
means equal numbers).
Every step runs in its own process, so the peak memory is that step's. Results are appended to
benches/RESULTS.md as a table of times, ratios (peer time / tdscale time) and peak memory.
Above --peers-up-to trajectories polars, the plain-Python reference and DuckDB with Python
functions are not run (polars holds the whole input in memory; the Python functions take
minutes per 10^6); the table says so. Each size's files are deleted once measured (10^7
trajectories are ~36 GB of JSONL).

Above --ingest-up-to trajectories there is no JSONL and no ingest step: `tdscale gen` writes the
corpus (the same trajectories, with their metrics) and the queries are measured on it, for sizes
whose JSONL would not fit the disk or the time at hand. --jsonl-dir keeps each size's JSONL
(`gen-<N>-seed1.jsonl`) for later runs instead of generating it again (10^7 trajectories take
about 15 minutes); --ingest-only measures the ingest step alone.

usage: python3 benches/compare.py [--sizes 100000,1000000] [--repeats 3 | 3,3,1] [--peers-up-to N] [--ingest-up-to N] [--jsonl-dir DIR] [--ingest-only] [--bin TDSCALE] [--work DIR]
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
    # Each run as it ends, so that the order and spread of the runs behind a median are on record.
    print(f"{label}: {float(secs):.2f} s, {int(kib) / 1024:.0f} MiB", file=sys.stderr, flush=True)
    return float(secs), int(kib) / 1024, out.stdout


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def summarize(runs):
    """(median seconds, largest peak MiB, the stdout of every run), or None when one failed."""
    if any(r is None for r in runs):
        return None
    return median(r[0] for r in runs), max(r[1] for r in runs), [r[2] for r in runs]


def measure(cmd, label, before=None):
    """Runs cmd REPEATS times under GNU time; returns what `summarize` does. `before` runs
    ahead of each repeat (e.g. to remove the previous output)."""
    return summarize([measure_once(cmd, label, before) for _ in range(REPEATS)])


def measure_interleaved(jobs):
    """Runs each of `jobs` ({key: (cmd, label, before)}) REPEATS times in interleaved rounds,
    the order reversed every other round: a run right after another engine's finds the page
    cache and the CPU's frequency as that one left them (measured: 5-6 % slower right after
    DuckDB's COPY), so no engine always goes first. Returns {key: what `summarize` does}."""
    runs = {key: [] for key in jobs}
    order = list(jobs)
    for r in range(REPEATS):
        for key in order if r % 2 == 0 else reversed(order):
            cmd, label, before = jobs[key]
            runs[key].append(measure_once(cmd, label, before))
    return {key: summarize(rs) for key, rs in runs.items()}


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
how, source, here = sys.argv[1:4]
plans = sys.argv[4:]
sys.path.insert(0, here)
con = duckdb.connect()
if how == 'udf':
    # The reasoning mode and CAC as Python functions (the reference), over DuckDB's own Parquet.
    import reference_metrics as ref
    con.create_function('rmode', lambda s: ref.reasoning_mode([m for m in json.loads(s) if m['role'] not in ('system', 'developer')]), ['VARCHAR'], 'VARCHAR')
    con.create_function('cac', lambda s: ref.action_complexity(json.loads(s)), ['VARCHAR'], 'DOUBLE')
    con.sql(f"CREATE TABLE m AS SELECT traj_id, domain, 0 AS round, rmode(to_json(messages)) AS mode, cac(to_json(messages)) AS cac FROM read_parquet('{source}')")
elif how == 'native':
    # DuckDB's own SQL (benches/duckdb_native.sql) over tdscale's trajectories files.
    with open(here + '/duckdb_native.sql') as f:
        con.execute(f.read().replace('{trajectories}', source))
    con.sql("CREATE TABLE m AS SELECT * FROM native_metrics")
else:
    # tdscale's stored trajectory_metrics files: the same flat columns tdscale reads.
    con.sql(f"CREATE VIEW m AS SELECT traj_id, domain, round, mode, cac FROM read_parquet('{source}', hive_partitioning = true)")
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
if 'stratified' in plans:
    # The stratified budget plan, over the metrics computed above.
    t0 = time.perf_counter()
    con.sql('''
    SELECT traj_id FROM (
      SELECT traj_id, row_number() OVER (ORDER BY turn_in_domain, hash(domain)) pick FROM (
        SELECT *, row_number() OVER (PARTITION BY domain ORDER BY turn_in_cell, hash(mode)) turn_in_domain FROM (
          SELECT traj_id, domain, mode, row_number() OVER (PARTITION BY domain, mode ORDER BY hash(traj_id)) turn_in_cell FROM m)))
    WHERE pick <= 5000''').fetchall()
    timings['stratified'] = time.perf_counter() - t0
if 'seeds' in plans:
    # The seed plan: surprisal of the (domain, mode) cell plus a bonus above the CAC median.
    t0 = time.perf_counter()
    con.sql('''
    WITH cells AS (SELECT domain, mode, count(*) c FROM m GROUP BY domain, mode),
         t AS (SELECT count(*) total, median(cac) med FROM m)
    SELECT m.traj_id, -log2(cells.c / t.total) + CASE WHEN m.cac > t.med THEN 1 ELSE 0 END AS score
    FROM m JOIN cells USING (domain, mode) CROSS JOIN t
    ORDER BY score DESC, hash(m.traj_id) LIMIT 200''').fetchall()
    timings['seeds'] = time.perf_counter() - t0
print(json.dumps({'rows': rows, 'plans': timings}))
"""

PY_DUCKDB_SCAN = """
import duckdb, sys
print(duckdb.sql(f"SELECT sum(len(messages)), sum(num_tool_calls) FROM read_parquet('{sys.argv[1]}')").fetchall())
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


# Custom CAC weights (base, leaves, dep, new, par, code): not the defaults, so nothing stored applies.
CUSTOM_WEIGHTS = "[1.0, 0.25, 2.0, 1.0, 0.5, 2.0]"


def check_agreement(ours, peer_rows, peer):
    """Stops the run unless a DuckDB result has tdscale's rows: the same trajectories, DE, RME and
    mean CAC per domain and per round (p90 is approximate in tdscale, exact in DuckDB)."""
    if ours is None:
        return
    def key(domain, rnd):
        return (domain or None, None if rnd in (None, "") else int(rnd))
    mine = {}
    for r in (json.loads(line) for line in ours[2][0].splitlines() if line.strip()):
        mine[key(r.get("domain"), r.get("round"))] = (r["trajectories"], r["de_bits"], r["rme_bits"], r["cac_mean"])
    theirs = {key(d, rnd): (cnt, de, rme, mean) for d, rnd, cnt, de, rme, mean, _ in peer_rows}
    if mine.keys() != theirs.keys():
        sys.exit(f"{peer} returned other groups than tdscale: {sorted(map(str, theirs))} vs {sorted(map(str, mine))}")
    for k, a in mine.items():
        b = theirs[k]
        if a[0] != b[0] or any(abs(float(x) - float(y)) > 1e-6 * max(1.0, abs(float(y))) for x, y in zip(a[1:], b[1:])):
            sys.exit(f"{peer} disagrees with tdscale on {k}: {b} vs {a}")


INGEST_PEERS = [
    "Peers: DuckDB's `COPY (SELECT * FROM read_json(…)) TO '….parquet'` and polars' `scan_ndjson(…).sink_parquet(…)`",
    "over the same JSONL; tdscale's ingest also computes and stores every trajectory's metrics.",
]

METRICS_PEERS = [
    "Peers: `duckdb native` is benches/duckdb_native.sql (mode and CAC in DuckDB's SQL from the nested",
    "`messages` of tdscale's files, DE and RME from label counts); `duckdb stored` runs the same",
    "aggregation over tdscale's stored `trajectory_metrics` files; `duckdb udf` and `polars` call the",
    "Python reference functions; `python` is the plain-Python reference. The native and stored DuckDB",
    "results were checked equal to tdscale's (trajectories, DE, RME, mean CAC of every row) in this run.",
    "DuckDB's plan figures are its native metrics time plus the plan's own time in the same process.",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--repeats", default="3", help="runs per step: K, or K1,K2,.. per size")
    ap.add_argument("--peers-up-to", type=int, default=None, help="run polars, plain Python and DuckDB with Python functions only up to this N")
    ap.add_argument("--bin", help="a tdscale release binary to measure (default: cargo build --release)")
    ap.add_argument("--ingest-up-to", type=int, default=None, help="above this N, `tdscale gen` writes the corpus itself: no JSONL, no ingest step, no peer that reads the JSONL")
    ap.add_argument("--jsonl-dir", help="keep each size's generated JSONL here (gen-<N>-seed1.jsonl) and reuse it when present")
    ap.add_argument("--ingest-only", action="store_true", help="measure the ingest step alone")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "tdscale-compare"))
    args = ap.parse_args()
    global REPEATS
    for p in ("duckdb", "polars", "numpy"):
        ensure(p)
    import duckdb
    import polars

    if args.bin:
        tds = os.path.abspath(args.bin)
    else:
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
        if args.jsonl_dir:
            os.makedirs(args.jsonl_dir, exist_ok=True)
            jsonl = os.path.join(args.jsonl_dir, f"gen-{n}-seed1.jsonl")
        else:
            jsonl = os.path.join(w, "data.jsonl")
        corpus = os.path.join(w, "corpus")
        ingest = args.ingest_up_to is None or n <= args.ingest_up_to
        peers = ingest and (args.peers_up_to is None or n <= args.peers_up_to)
        largest = n == max(sizes)
        res = {}
        if ingest:
            if not os.path.exists(jsonl):
                subprocess.run([tds, "gen", os.path.join(w, "generated"), "--trajectories", str(n), "--seed", "1", "--jsonl", jsonl, "--json"], check=True, capture_output=True)
            mb = os.path.getsize(jsonl) / 1e6
            # Every repeat ingests into an empty corpus (a second ingest would only find duplicates).
            jobs = {
                "ingest tdscale": ([tds, "ingest", corpus, jsonl, "--json"], "tdscale ingest", lambda: shutil.rmtree(corpus, ignore_errors=True)),
                "ingest duckdb": ([sys.executable, "-c", PY_DUCKDB_INGEST, jsonl, os.path.join(w, "duck.parquet")], "duckdb ingest", None),
            }
            if peers:
                jobs["ingest polars"] = ([sys.executable, "-c", PY_POLARS_INGEST, jsonl, os.path.join(w, "polars.parquet")], "polars ingest", None)
            res.update(measure_interleaved(jobs))
            if args.ingest_only:
                rows.append((n, mb, {k: None if v is None else v[:2] for k, v in res.items()}, peers, ingest))
                print(n, json.dumps(rows[-1][2]), flush=True)
                shutil.rmtree(w, ignore_errors=True)
                continue
        else:
            # The same trajectories (same generator, same seed), written by gen with their metrics.
            subprocess.run([tds, "gen", corpus, "--trajectories", str(n), "--seed", "1", "--json"], check=True, capture_output=True)
            mb = None
        trajectories = os.path.join(corpus, "trajectories", "**", "*.parquet")
        stored = os.path.join(corpus, "trajectory_metrics", "**", "*.parquet")
        bench_sql = [tds, "sql", corpus, "-f", os.path.join(ROOT, "queries", "bench_metrics.sql"), "--format", "json"]
        res["metrics tdscale"] = measure(bench_sql, "tdscale metrics")
        res["computed tdscale"] = measure(bench_sql + ["--computed-metrics"], "tdscale metrics, computed")
        res["scan tdscale"] = measure([tds, "sql", corpus, "SELECT sum(cardinality(messages)), sum(num_tool_calls) FROM trajectories", "--format", "csv"], "tdscale scan")
        res["custom cac tdscale"] = measure([tds, "sql", corpus, f"SELECT sum(action_complexity(messages, {CUSTOM_WEIGHTS})) FROM trajectories", "--format", "csv"], "tdscale custom-weight CAC")
        res["scan duckdb"] = measure([sys.executable, "-c", PY_DUCKDB_SCAN, trajectories], "duckdb scan")
        plans = ["stratified", "seeds"] if largest else []
        native = measure([sys.executable, "-c", PY_DUCKDB_METRICS, "native", trajectories, HERE] + plans, "duckdb native metrics")
        if native is not None:
            # The metrics figure leaves out the plans the same process ran afterwards.
            outs = [json.loads(o.strip().splitlines()[-1]) for o in native[2]]
            plan_s = {p: median(o["plans"][p] for o in outs) for p in plans}
            res["metrics duckdb native"] = (native[0] - sum(plan_s.values()), native[1])
            for p in plans:
                res[f"{p} duckdb"] = (res["metrics duckdb native"][0] + plan_s[p], native[1])
            check_agreement(res["metrics tdscale"], outs[0]["rows"], "DuckDB's native SQL")
        flat = measure([sys.executable, "-c", PY_DUCKDB_METRICS, "stored", stored, HERE], "duckdb over stored metrics")
        res["metrics duckdb stored"] = flat
        if flat is not None:
            check_agreement(res["metrics tdscale"], json.loads(flat[2][0].strip().splitlines()[-1])["rows"], "DuckDB over the stored metrics")
        if peers:
            res["metrics duckdb udf"] = measure([sys.executable, "-c", PY_DUCKDB_METRICS, "udf", os.path.join(w, "duck.parquet"), HERE], "duckdb metrics, Python functions")
            res["metrics polars"] = measure([sys.executable, "-c", PY_POLARS_METRICS, os.path.join(w, "polars.parquet"), HERE], "polars metrics")
            res["metrics python"] = measure([sys.executable, os.path.join(HERE, "reference_metrics.py"), "--by", "domain", jsonl], "python metrics")
        if largest:
            res["stratified tdscale"] = measure([tds, "budget", corpus, "--budgets", "5000", "--strategies", "stratified", "--seeds", "1", "--no-training-files", "--out", os.path.join(w, "run"), "--json"], "tdscale budget")
            res["seeds tdscale"] = measure([tds, "sql", corpus, "-f", os.path.join(ROOT, "queries", "seeds_next_round.sql"), "-p", "n=200", "--format", "csv"], "tdscale seeds")
        res = {k: None if v is None else v[:2] for k, v in res.items()}
        rows.append((n, mb, res, peers, ingest))
        print(n, json.dumps(res), flush=True)
        shutil.rmtree(w, ignore_errors=True)

    lines = [
        "",
        f"## {'Ingest: ' if args.ingest_only else ''}tdscale vs DuckDB {duckdb.__version__}, polars {polars.__version__}{'' if args.ingest_only else ', plain Python'} ({datetime.date.today()})",
        "",
        f"`python3 benches/compare.py --sizes {args.sizes} --repeats {args.repeats}" + (f" --peers-up-to {args.peers_up_to}" if args.peers_up_to is not None else "") + (f" --ingest-up-to {args.ingest_up_to}" if args.ingest_up_to is not None else "") + (f" --jsonl-dir {args.jsonl_dir}" if args.jsonl_dir else "") + (" --ingest-only" if args.ingest_only else "") + f"` on {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, " + (f"tdscale binary `{args.bin}`." if args.bin else "tdscale release build."),
        f"Median of {', '.join(map(str, repeats))} run(s) per size (seconds) and largest peak memory (MiB); ratio = peer time / tdscale time (above 1: tdscale is faster).",
    ] + (INGEST_PEERS if args.ingest_only else METRICS_PEERS) + [
        "",
        "| N | JSONL MB | step | tdscale s | tdscale MiB | peer | peer s | peer MiB | ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    def cells(m):
        return "failed | -" if m is None else f"{m[0]:.2f} | {m[1]:.0f}"

    def size(mb):
        return "-" if mb is None else f"{mb:.0f}"

    def row(n, mb, step, ours, peer, theirs):
        ratio = "-" if ours is None or theirs is None else f"{theirs[0] / max(ours[0], 0.01):.1f}×"
        lines.append(f"| {n:,} | {size(mb)} | {step} | {cells(ours)} | {peer} | {cells(theirs)} | {ratio} |")

    steps = [
        ("ingest", "ingest tdscale", [("duckdb", "ingest duckdb"), ("polars", "ingest polars")]),
        ("metrics: bench_metrics.sql, stored metrics", "metrics tdscale",
         [("tdscale, computed from messages", "computed tdscale"), ("duckdb native", "metrics duckdb native"),
          ("duckdb stored", "metrics duckdb stored"), ("duckdb udf", "metrics duckdb udf"),
          ("polars", "metrics polars"), ("python", "metrics python")]),
        ("metrics: bench_metrics.sql, computed from messages", "computed tdscale", [("duckdb native", "metrics duckdb native")]),
        ("scan floor: messages and calls counted", "scan tdscale", [("duckdb", "scan duckdb")]),
        (f"CAC with custom weights {CUSTOM_WEIGHTS} vs the peer's scan floor", "custom cac tdscale", [("duckdb scan", "scan duckdb")]),
        ("stratified budget 5000 (tdscale: plan, manifest; DuckDB: native metrics + plan)", "stratified tdscale", [("duckdb", "stratified duckdb")]),
        ("seed selection, 200 seeds (tdscale: queries/seeds_next_round.sql; DuckDB: native metrics + plan)", "seeds tdscale", [("duckdb", "seeds duckdb")]),
    ]
    for n, mb, res, peers, ingest in rows:
        if not ingest:
            lines.append(f"| {n:,} | - | ingest | not run: the corpus was written by `tdscale gen` (--ingest-up-to) | - | - | - | - | - |")
        for step, ours, peer_keys in steps:
            if ours not in res:
                continue
            for peer, key in peer_keys:
                if key in res:
                    row(n, mb, step, res[ours], peer, res[key])
                elif not peers:
                    lines.append(f"| {n:,} | {size(mb)} | {step} | {cells(res[ours])} | {peer} | not run | - | - |")
    if any(not peers for *_, peers, _ in rows):
        cut = min(x for x in (args.peers_up_to, args.ingest_up_to) if x is not None)
        peers_not_run = "polars was" if args.ingest_only else "polars, the plain-Python reference and DuckDB with Python functions were"
        lines += ["", f"{peers_not_run} not run." if cut == 0 else f"{peers_not_run} not run above {cut:,} trajectories."]
    lines += ["", "tdscale seconds per 10^5 trajectories (equal across sizes = linear scaling):", "", "| step | " + " | ".join(f"N = {n:,}" for n, *_ in rows) + " |", "|---|" + "---|" * len(rows)]
    per_size = (("ingest", "ingest tdscale"), ("bench_metrics.sql, stored", "metrics tdscale"), ("bench_metrics.sql, computed", "computed tdscale"), ("custom-weight CAC", "custom cac tdscale"))
    for step, key in per_size[:1] if args.ingest_only else per_size:
        per = [res.get(key) for _, _, res, _, _ in rows]
        lines.append(f"| {step} | " + " | ".join("-" if m is None else f"{m[0] / (n / 1e5):.3f}" for m, (n, *_) in zip(per, rows)) + " |")
    with open(os.path.join(HERE, "RESULTS.md"), "a") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
