"""The issue's snippet, with a local corpus, runs in the virtual environment `pip install .`
made (scripts/test.sh creates it afresh on every run)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pyarrow.parquet as pq

from conftest import REPO

SNIPPET = textwrap.dedent(
    """
    import tdscale, datafusion, polars as pl

    ctx = tdscale.open("./corpus")          # a datafusion.SessionContext: tables, views, functions
    df = ctx.sql("SELECT domain, domain_entropy(domain), reasoning_mode_entropy(reasoning_mode(messages)) "
                 "FROM trajectories GROUP BY domain").to_polars()

    mine = datafusion.SessionContext(); tdscale.register(mine)   # the functions in any session of theirs
    mine.register_parquet("hf", "hf_dump/train-*.parquet")

    tdscale.ingest("./corpus", ["runs.jsonl"]); tdscale.evolve("./corpus", rounds=2, per_round=100)
    subsets = tdscale.budget("./corpus", budgets=[500, 1000], strategies=["random", "greedy_entropy"])
    ds = tdscale.to_hf_dataset(ctx.sql("SELECT * FROM trajectories WHERE round > 0"))   # datasets.Dataset
    """
)

CHECKS = textwrap.dedent(
    """
    import datasets, json
    after = ctx.sql("SELECT domain, domain_entropy(domain) AS de FROM trajectories GROUP BY domain").to_polars()
    hf = mine.sql("SELECT count(*) AS n, reasoning_mode_entropy(reasoning_mode(messages)) AS rme FROM hf").to_pylist()[0]
    print(json.dumps({
        "before": df.height, "after": after.height, "subsets": len(subsets),
        "sizes": sorted({s["trajectories"] for s in subsets}),
        "dataset": isinstance(ds, datasets.Dataset), "evolved": len(ds),
        "rounds": sorted(set(ds["round"])), "hf_rows": hf["n"], "hf_rme": hf["rme"],
        "module": tdscale.__file__,
    }))
    """
)


def test_the_issue_snippet_runs(tmp_path, cli):
    import json

    # runs.jsonl: 1,200 generated trajectories as OpenAI chat lines; hf_dump: the same rows as a
    # Hugging Face style Parquet shard (messages as nested lists).
    cli("gen", tmp_path / "seed", "--trajectories", "1200", "--seed", "3", "--jsonl", tmp_path / "runs.jsonl")
    import pyarrow.json as pj

    (tmp_path / "hf_dump").mkdir()
    pq.write_table(pj.read_json(tmp_path / "runs.jsonl"), tmp_path / "hf_dump" / "train-00000-of-00001.parquet")

    p = subprocess.run(
        [sys.executable, "-c", SNIPPET + CHECKS],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["before"] == 0, "the corpus was empty when the snippet first queried it"
    assert out["after"] > 1
    assert out["subsets"] == 12 and out["sizes"] == [500, 1000]
    assert out["dataset"] and out["evolved"] > 0 and out["rounds"] == [1, 2]
    assert out["hf_rows"] == 1200 and out["hf_rme"] > 0
    # The package imported is the installed one, not the source folder.
    assert "site-packages" in out["module"] and not out["module"].startswith(str(REPO)), out["module"]
