"""Query results reach polars, pandas, pyarrow and Hugging Face datasets through Arrow, with
nested messages intact."""

from __future__ import annotations

import json

import tdscale

QUERY = "SELECT traj_id, domain, num_turns, reward, messages FROM trajectories ORDER BY traj_id"


def without_nulls(v):
    """Values with null fields dropped: Arrow writers differ only in whether they print them."""
    if isinstance(v, dict):
        return {k: without_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [without_nulls(x) for x in v]
    return v


def test_results_reach_every_frame_library(tau_corpus, sql_rows):
    import datasets
    import pandas as pd
    import polars as pl
    import pyarrow as pa

    ctx = tdscale.open(tau_corpus)
    expected = [without_nulls(r) for r in sql_rows(tau_corpus, QUERY)]
    ids = [r["traj_id"] for r in expected]

    table = ctx.sql(QUERY).to_arrow_table()
    assert isinstance(table, pa.Table) and table.column("traj_id").to_pylist() == ids
    frame = ctx.sql(QUERY).to_polars()
    assert isinstance(frame, pl.DataFrame) and frame["traj_id"].to_list() == ids
    pdf = ctx.sql(QUERY).to_pandas()
    assert isinstance(pdf, pd.DataFrame) and pdf["traj_id"].tolist() == ids

    ds = tdscale.to_hf_dataset(ctx.sql(QUERY))
    assert isinstance(ds, datasets.Dataset) and ds["traj_id"] == ids
    assert [without_nulls(r) for r in ds] == expected
    assert [without_nulls(r) for r in frame.to_dicts()] == expected

    # Any Arrow data converts the same way.
    assert tdscale.to_hf_dataset(frame)["traj_id"] == ids


def test_to_hf_dataset_refuses_what_is_not_arrow_data():
    import pytest

    with pytest.raises(TypeError, match="is not Arrow data"):
        tdscale.to_hf_dataset([{"a": 1}])


def test_a_dataset_written_back_is_the_same_corpus(tau_corpus, tmp_path, sql_rows):
    """Corpus -> datasets.Dataset -> ingest: the same trajectories, through Arrow only."""
    ctx = tdscale.open(tau_corpus)
    ds = tdscale.to_hf_dataset(ctx.sql("SELECT traj_id AS id, messages, tools, domain FROM trajectories WHERE domain = 'retail'"))
    s = tdscale.ingest(tmp_path / "back", ds, name="retail", format="openai", progress=False)
    assert s["ingested"] == len(ds) > 0 and s["rejected"] == 0
    q = "SELECT reasoning_mode(messages) AS m, action_complexity(messages) AS cac, num_tool_calls FROM trajectories ORDER BY m, cac"
    original = sql_rows(tau_corpus, q.replace("FROM trajectories", "FROM trajectories WHERE domain = 'retail'"))
    assert sql_rows(str(tmp_path / "back"), q) == original
    assert json.dumps(original)  # plain JSON values
