"""tdscale's functions inside datafusion-python give the command line's numbers.

The corpus is written by the command line (tau-bench airline runs and the retail fixture); the
same queries run through `tdscale sql` and through datafusion-python sessions: the one
`tdscale.open` returns, and a session of the user's own with `tdscale.register` over the
Parquet files. DE, RME and the per-trajectory modes and CAC must be equal to the last bit (the
aggregates are exact whatever the partitioning; float sums are not, so CAC is compared per
trajectory).
"""

from __future__ import annotations

import pathlib

import datafusion
import pyarrow as pa
import pytest
from datafusion import col

import tdscale

GROUPS = """
SELECT coalesce(domain, '-') AS d, count(*) AS n,
       domain_entropy(domain) AS de,
       reasoning_mode_entropy(reasoning_mode(messages)) AS rme,
       normalized_entropy(reasoning_mode(messages)) AS nrme
FROM trajectories GROUP BY coalesce(domain, '-')
UNION ALL
SELECT 'all', count(*), domain_entropy(domain), reasoning_mode_entropy(reasoning_mode(messages)),
       normalized_entropy(reasoning_mode(messages))
FROM trajectories
ORDER BY d
"""

PER_TRAJECTORY = """
SELECT traj_id, reasoning_mode(messages) AS mode, action_complexity(messages) AS cac,
       tool_sequence(messages) AS tools
FROM trajectories ORDER BY traj_id
"""

EVERY_FUNCTION = {
    "entropy", "normalized_entropy", "domain_entropy", "reasoning_mode_entropy",
    "reasoning_mode", "action_complexity", "step_complexity", "tool_sequence", "tool_calls_of",
    "minhash", "jaccard", "args_valid", "seeded_hash", "user_text", "messages_text",
}


def as_number(v):
    """The command line prints wide integers and decimals as strings; text stays text."""
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    return v


def normalise(rows):
    """Numbers as Python numbers (the command line prints wide integers as strings)."""
    text = {"d", "traj_id", "mode", "tools"}
    return [{k: v if k in text else as_number(v) for k, v in r.items()} for r in rows]


def test_de_rme_and_cac_in_an_open_corpus_equal_the_command_line(tau_corpus, sql_rows):
    ctx = tdscale.open(tau_corpus)
    expected = normalise(sql_rows(tau_corpus, GROUPS))
    got = normalise(ctx.sql(GROUPS).to_pylist())
    assert [r["d"] for r in expected] == ["airline", "all", "retail"]
    assert expected[1]["de"] > 0, "two domains: DE is not trivially 0"
    assert got == expected

    expected = sql_rows(tau_corpus, PER_TRAJECTORY)
    got = ctx.sql(PER_TRAJECTORY).to_pylist()
    assert len(got) == len(expected) > 50
    assert [r["traj_id"] for r in got] == [r["traj_id"] for r in expected]
    assert [r["mode"] for r in got] == [r["mode"] for r in expected]
    assert [r["cac"] for r in got] == [as_number(r["cac"]) for r in expected]
    assert [r["tools"] for r in got] == [r["tools"] for r in expected]
    assert sum(r["cac"] for r in got) > 0


def test_the_views_and_the_table_functions_equal_the_command_line(tau_corpus, sql_rows):
    ctx = tdscale.open(tau_corpus)
    for q in [
        "SELECT count(*) AS n, sum(CASE WHEN is_error THEN 1 ELSE 0 END) AS errors FROM tool_calls",
        "SELECT mode, count(*) AS n FROM trajectory_metrics GROUP BY mode ORDER BY n DESC, mode",
        "SELECT traj_id, pick, cost, used FROM greedy_entropy(12, 3, 'trajectories') ORDER BY pick",
        "SELECT traj_id, pick FROM deita_select(7, 'trajectories', 0.6) ORDER BY pick",
    ]:
        expected = [{k: as_number(v) for k, v in r.items()} for r in sql_rows(tau_corpus, q)]
        got = [{k: as_number(v) for k, v in r.items()} for r in ctx.sql(q).to_pylist()]
        assert got == expected, q
        assert got, q


def test_a_session_of_ones_own_gets_the_same_numbers_in_sql_and_dataframes(tau_corpus, sql_rows):
    mine = datafusion.SessionContext()
    fns = tdscale.register(mine)
    mine.register_parquet(
        "trajectories",
        str(pathlib.Path(tau_corpus) / "trajectories"),
        table_partition_cols=[("round", pa.int32())],
    )
    expected = normalise(sql_rows(tau_corpus, GROUPS))
    assert normalise(mine.sql(GROUPS).to_pylist()) == expected

    # The DataFrame API: the functions as expressions.
    df = mine.table("trajectories").aggregate(
        [col("domain")],
        [
            fns.domain_entropy(col("domain")).alias("de"),
            fns.reasoning_mode_entropy(fns.reasoning_mode(col("messages"))).alias("rme"),
        ],
    ).sort(col("domain"))
    got = {r["domain"]: (r["de"], r["rme"]) for r in df.to_pylist()}
    want = {r["d"]: (r["de"], r["rme"]) for r in expected if r["d"] != "all"}
    assert got == want

    cac = mine.table("trajectories").select(
        col("traj_id"), fns.action_complexity(col("messages")).alias("cac")
    ).sort(col("traj_id")).to_pylist()
    expected = sql_rows(tau_corpus, "SELECT traj_id, action_complexity(messages) AS cac FROM trajectories ORDER BY traj_id")
    assert [r["cac"] for r in cac] == [as_number(r["cac"]) for r in expected]


def test_every_function_is_registered(tau_corpus):
    mine = datafusion.SessionContext(datafusion.SessionConfig().with_information_schema(True))
    fns = tdscale.register(mine)
    assert set(vars(fns)) == EVERY_FUNCTION
    names = {r["routine_name"] for r in mine.sql("SELECT routine_name FROM information_schema.routines").to_pylist()}
    assert EVERY_FUNCTION <= names, EVERY_FUNCTION - names
    # The table functions answer in a session with the corpus's view (from `open`); in a
    # session without it they say what is missing.
    with pytest.raises(Exception, match="greedy_entropy reads trajectory_metrics and runs only in a corpus session"):
        mine.sql("SELECT * FROM greedy_entropy(3)").collect()


def test_a_function_error_arrives_as_an_exception(tau_corpus):
    ctx = tdscale.open(tau_corpus)
    with pytest.raises(Exception, match="'many'"):
        ctx.sql("SELECT * FROM greedy_entropy('many')").collect()
    with pytest.raises(Exception, match="unit must be 'trajectories' or 'tokens'"):
        ctx.sql("SELECT * FROM greedy_entropy(3, 0, 'rows')").collect()


def test_filters_on_round_reach_the_corpus_and_later_writes_are_seen(tmp_path, cli, cli_json):
    corpus = str(tmp_path / "c")
    ctx = tdscale.open(corpus)
    assert ctx.sql("SELECT count(*) AS n FROM trajectories").to_pylist() == [{"n": 0}]
    cli_json("ingest", corpus, "--round", "0", pathlib.Path(__file__).parents[2] / "testdata/formats/openai_chat.jsonl")
    cli_json("ingest", corpus, "--round", "2", pathlib.Path(__file__).parents[2] / "testdata/formats/tau_bench_retail.json")
    # The same session sees both ingests, and the round filter prunes partitions.
    rows = ctx.sql('SELECT "round", count(*) AS n FROM trajectories GROUP BY "round" ORDER BY "round"').to_pylist()
    assert [r["round"] for r in rows] == [0, 2]
    n2 = ctx.sql("SELECT count(*) AS n FROM trajectories WHERE round > 0").to_pylist()[0]["n"]
    assert n2 == rows[1]["n"]
