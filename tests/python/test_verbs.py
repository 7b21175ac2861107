"""The commands as Python calls: the summaries `--json` prints, rows of any Arrow data through
the same parsers as files, errors as exceptions with the command line's messages, progress bars,
and the GIL released while they run."""

from __future__ import annotations

import json
import pathlib
import threading

import pyarrow as pa
import pytest

import tdscale
from conftest import OPENAI_CHAT, REPO, RETAIL, TAU_BENCH, chat_file, chat_rows, need

VOLATILE = {"seconds", "rejects_file"}


def stable(v):
    """A summary without its timings and run-named files."""
    if isinstance(v, dict):
        return {k: stable(x) for k, x in v.items() if k not in VOLATILE}
    if isinstance(v, list):
        return [stable(x) for x in v]
    return v


def rows_of(sql_rows, corpus, query):
    """Rows with JSON text columns parsed, so key order does not matter."""
    out = []
    for r in sql_rows(corpus, query):
        r = dict(r)
        if isinstance(r.get("metadata"), str):
            r["metadata"] = json.loads(r["metadata"])
        out.append(r)
    return out


def test_ingest_returns_the_command_lines_summary_and_adds_nothing_twice(tmp_path, cli_json):
    files = [TAU_BENCH, RETAIL, OPENAI_CHAT]
    py = tdscale.ingest(tmp_path / "py", files, progress=False)
    cl = cli_json("ingest", tmp_path / "cli", *files)
    assert stable(py) == stable(cl)
    assert py["ingested"] == py["read"] > 50
    again = tdscale.ingest(str(tmp_path / "py"), [str(f) for f in files], progress=False)
    assert again["ingested"] == 0 and again["duplicates"] == py["ingested"]


COLUMNS = "SELECT traj_id, source, format, domain, messages, tools, num_turns, num_tool_calls, num_tokens, metadata FROM trajectories ORDER BY traj_id"


@pytest.mark.parametrize("kind", ["pyarrow", "reader", "polars", "pandas", "datasets", "datafusion"])
def test_rows_of_arrow_data_land_exactly_like_the_file(kind, tmp_path, cli_json, sql_rows):
    import datafusion

    records = chat_rows()
    table = pa.Table.from_pylist(records)
    if kind == "pyarrow":
        data = table
    elif kind == "reader":
        data = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=1))
    elif kind == "polars":
        import polars as pl

        data = pl.from_arrow(table)
    elif kind == "pandas":
        data = table.to_pandas()
    elif kind == "datasets":
        import datasets

        data = datasets.Dataset(datasets.table.InMemoryTable(table))
    else:
        data = datafusion.SessionContext().from_arrow(table)
    file_corpus = str(tmp_path / "file")
    cli_json("ingest", file_corpus, chat_file(tmp_path))
    corpus = str(tmp_path / kind)
    s = tdscale.ingest(corpus, data, name="openai_chat", progress=False)
    assert (s["read"], s["ingested"], s["rejected"]) == (len(records), len(records), 0), s
    assert s["files"][0]["path"] == "openai_chat" and s["files"][0]["format"] == "openai"
    assert rows_of(sql_rows, corpus, COLUMNS) == rows_of(sql_rows, file_corpus, COLUMNS)


def test_a_hugging_face_selection_ingests_only_its_rows(tmp_path, sql_rows):
    import datasets

    records = chat_rows()
    ds = datasets.Dataset(datasets.table.InMemoryTable(pa.Table.from_pylist(records))).select([2, 0])
    s = tdscale.ingest(tmp_path / "c", ds, name="openai_chat", progress=False)
    assert s["ingested"] == 2
    ids = [r["traj_id"] for r in sql_rows(str(tmp_path / "c"), "SELECT traj_id FROM trajectories ORDER BY traj_id")]
    assert ids == sorted(f"openai_chat/{records[i]['id']}" for i in (0, 2))


def test_bad_rows_are_rejected_with_their_row_number_and_nothing_is_lost(tmp_path, sql_rows):
    good = chat_rows()
    # Row 2 has a message with no role: it cannot be stored as a conversation.
    bad = {"id": "r-bad", "messages": [{"content": "a message with no role"}]}
    table = pa.Table.from_pylist([good[0], bad, good[1]])
    corpus = str(tmp_path / "c")
    s = tdscale.ingest(corpus, table, name="mixed", format="openai", progress=False)
    assert (s["read"], s["ingested"], s["rejected"]) == (3, 2, 1), s
    rejects = sql_rows(corpus, "SELECT file, line, reason, record FROM rejects")
    assert [(r["file"], r["line"]) for r in rejects] == [("mixed", 2)]
    assert "role" in rejects[0]["reason"]
    assert json.loads(rejects[0]["record"]) == bad
    ids = [r["traj_id"] for r in sql_rows(corpus, "SELECT traj_id FROM trajectories ORDER BY traj_id")]
    assert ids == sorted(f"mixed/{g['id']}" for g in good[:2])

    with pytest.raises(tdscale.RejectedError, match=r"^1 record\(s\) rejected and --strict is set") as e:
        tdscale.ingest(tmp_path / "strict", table, name="mixed", format="openai", strict=True, progress=False)
    assert "mixed:2:" in str(e.value)
    # The accepted records are stored even so, as on the command line.
    assert len(sql_rows(str(tmp_path / "strict"), "SELECT traj_id FROM trajectories")) == 2


def test_rows_that_are_not_arrow_data_are_a_type_error(tmp_path):
    with pytest.raises(TypeError, match="cannot ingest a dict"):
        tdscale.ingest(tmp_path / "c", {"messages": []})


def cli_error(cli, *args):
    p = cli(*args, check=False)
    assert p.returncode != 0
    first = p.stderr.strip().splitlines()[0]
    assert first.startswith("error: "), p.stderr
    return p.returncode, p.stderr.strip()[len("error: "):]


def test_errors_are_exceptions_with_the_command_lines_messages(tau_corpus, tmp_path, cli):
    code, message = cli_error(cli, "budget", tau_corpus, "--budgets", "100000", "--out", tmp_path / "o")
    with pytest.raises(tdscale.UsageError) as e:
        tdscale.budget(tau_corpus, budgets=[100000], out=tmp_path / "o")
    assert (e.value.exit_code, str(e.value)) == (code, message) == (2, message)
    assert isinstance(e.value, ValueError)

    code, message = cli_error(cli, "ingest", tmp_path / "c", "no/such/file.jsonl")
    with pytest.raises(tdscale.UsageError) as e:
        tdscale.ingest(tmp_path / "c", ["no/such/file.jsonl"])
    assert str(e.value) == message == "input `no/such/file.jsonl` does not exist"

    # A value clap refuses: the same message as the command line's, up to its usage hint.
    code, message = cli_error(cli, "budget", tau_corpus, "--budgets", "5", "--unit", "bogus")
    with pytest.raises(tdscale.UsageError) as e:
        tdscale.budget(tau_corpus, budgets=[5], unit="bogus")
    assert code == 2 and message.startswith(str(e.value).splitlines()[0])
    assert "invalid value 'bogus' for '--unit <UNIT>'" in str(e.value)

    code, message = cli_error(cli, "export", "openai", tau_corpus, "--out", tmp_path / "x.jsonl", "--where", "no_such_column = 1")
    with pytest.raises(tdscale.SqlError) as e:
        tdscale.export_openai(tau_corpus, out=tmp_path / "x.jsonl", where="no_such_column = 1")
    assert (code, str(e.value)) == (4, message)

    with pytest.raises(tdscale.UsageError, match="runs on the command line only"):
        tdscale.command("sql", tau_corpus, "SELECT 1")


def test_storage_errors_on_s3_are_storage_errors(s3_env, bucket, cli):
    code, message = cli_error(cli, "ingest", "s3://no-such-bucket/c", RETAIL)
    with pytest.raises(tdscale.StorageError) as e:
        tdscale.ingest("s3://no-such-bucket/c", [RETAIL], progress=False)
    # The same message up to the server's timing and request ids.
    head = "storage error at s3://no-such-bucket/c: cannot write the writer lease: the bucket does not exist"
    assert (code, e.value.exit_code) == (5, 5)
    assert message.startswith(head) and str(e.value).startswith(head), (message, str(e.value))
    assert "NoSuchBucket" in message and "NoSuchBucket" in str(e.value)
    assert isinstance(e.value, OSError)


def test_a_corpus_on_s3_is_read_and_written_from_python(s3_env, bucket, sql_rows):
    root = f"s3://{bucket('pycorpus')}/c"
    s = tdscale.ingest(root, [RETAIL, OPENAI_CHAT], progress=False)
    ctx = tdscale.open(root)
    got = ctx.sql("SELECT traj_id, reasoning_mode(messages) AS mode FROM trajectories ORDER BY traj_id").to_pylist()
    assert len(got) == s["ingested"] > 0
    assert got == sql_rows(root, "SELECT traj_id, reasoning_mode(messages) AS mode FROM trajectories ORDER BY traj_id", env=s3_env)
    picked = ctx.sql("SELECT count(*) AS n FROM greedy_entropy(2)").to_pylist()
    assert picked == [{"n": 2}]


def test_the_verbs_round_trip(tmp_path, cli_json, sql_rows):
    corpus = str(tmp_path / "corpus")
    g = tdscale.gen(corpus, trajectories=300, seed=4, progress=False)
    assert g["trajectories"] == 300

    assert tdscale.report(corpus, by="domain") == cli_json("report", corpus, "--by", "domain")

    args = dict(budgets=[20, 40], strategies=["random", "greedy_entropy"], seeds=2)
    py = tdscale.budget(corpus, out=tmp_path / "py-run", progress=False, **args)
    cl = cli_json("budget", corpus, "--budgets", "20,40", "--strategies", "random,greedy_entropy", "--seeds", "2", "--out", tmp_path / "cli-run")
    assert py == cl and len(py) == 8
    assert (tmp_path / "py-run" / "summary.parquet").exists()
    tdscale.budget(corpus, budgets=[5], strategies="head", seeds=1, no_training_files=True, progress=False)
    assert len(list((pathlib.Path(corpus) / "runs").glob("budget-*/summary.parquet"))) == 1

    e = tdscale.evolve(corpus, rounds=1, per_round=8, params={"w_cluster": 8}, progress=False)
    assert len(e["batches"]) == 1
    assert tdscale.rounds(corpus) == cli_json("rounds", corpus)
    assert tdscale.rounds(corpus)[-1]["round"] == 1

    s = tdscale.split(corpus, by=["domain"], test=0.2, seed=1)
    assert s == cli_json("split", corpus, "--by", "domain", "--test", "0.2", "--seed", "1")

    n = sql_rows(corpus, "SELECT count(*) AS n FROM trajectories")[0]["n"]
    out = tdscale.export_openai(corpus, out=tmp_path / "all.jsonl")
    assert out == {"written": n, "out": str(tmp_path / "all.jsonl")}
    back = tdscale.ingest(tmp_path / "back", [tmp_path / "all.jsonl"], progress=False)
    assert back["ingested"] == n and back["rejected"] == 0
    q = "SELECT traj_id, reasoning_mode(messages) AS m FROM trajectories ORDER BY traj_id"
    assert sql_rows(str(tmp_path / "back"), q) == sql_rows(corpus, q)


def test_clusters_and_decontamination_answer_like_the_command_line(tmp_path, cli_json):
    catalogs = need(REPO / "testdata" / "catalogs", "the catalog fixtures")
    files = sorted(p for p in catalogs.iterdir() if p.is_file())
    py, cl = str(tmp_path / "py"), str(tmp_path / "cli")
    for corpus in (py, cl):
        tdscale.ingest(corpus, files, table="tools", progress=False)
    built = tdscale.clusters_build(py, max_cluster_size=6)
    assert stable(built) == stable(cli_json("clusters", "build", cl, "--max-cluster-size", "6"))
    assert built["clusters"] > 0
    # Keep the session while its DataFrames run: datafusion-python hands its tables only a
    # weak reference to it.
    ctx = tdscale.open(py)
    some = ctx.sql("SELECT cluster_id FROM clusters ORDER BY cluster_id LIMIT 1").to_pylist()[0]["cluster_id"]
    assert some in tdscale.clusters_show(py, some)

    corpus = str(tmp_path / "train")
    tdscale.ingest(corpus, [RETAIL, OPENAI_CHAT], progress=False)
    against = [OPENAI_CHAT]
    assert tdscale.decontaminate(corpus, against=against, threshold=0.5) == cli_json(
        "decontaminate", corpus, "--against", OPENAI_CHAT, "--threshold", "0.5"
    )


def test_progress_bars_are_drawn_for_long_work(tmp_path, capsys):
    tdscale.ingest(tmp_path / "c", [TAU_BENCH])
    err = capsys.readouterr().err
    assert "ingest" in err and "100%" in err, err
    tdscale.gen(tmp_path / "g", trajectories=50)
    assert "generate" in capsys.readouterr().err
    tdscale.ingest(tmp_path / "q", [TAU_BENCH], progress=False)
    assert capsys.readouterr().err == ""


def test_a_command_runs_with_the_gil_released(tmp_path):
    records = chat_rows()
    table = pa.Table.from_pylist(records)

    def batches():
        # Runs on tdscale's reader thread, which needs the GIL for each batch.
        yield from table.to_batches(max_chunksize=1)

    reader = pa.RecordBatchReader.from_batches(table.schema, batches())
    task = tdscale._native.start_ingest_rows(["ingest", str(tmp_path / "c"), "rows"], reader, False)
    # One wait: the generator can only run while this thread has let go of the GIL.
    assert task.wait(120.0)
    assert json.loads(task.result())["ingested"] == len(records)


def test_a_cancelled_command_ends_with_an_error(tmp_path):
    records = chat_rows()
    table = pa.Table.from_pylist(records)
    release = threading.Event()

    def batches():
        yield table.to_batches()[0]
        release.wait()

    reader = pa.RecordBatchReader.from_batches(table.schema, batches())
    task = tdscale._native.start_ingest_rows(["ingest", str(tmp_path / "c"), "rows"], reader, False)
    assert not task.wait(0.2)
    task.cancel()
    try:
        assert task.wait(120.0)
        with pytest.raises(tdscale.TdscaleError, match="stopped without an answer"):
            tdscale._call(task.result)
    finally:
        release.set()


def written(summary):
    """An export's summary without the hash of its manifest, which holds the moment of writing."""
    files = [{k: v for k, v in f.items() if not (k == "sha256" and f["path"].endswith("manifest.json"))} for f in summary["files"]]
    return {**summary, "files": files}


def test_the_exports_and_the_ablation_answer_like_the_command_line(tmp_path, cli_json):
    corpus = str(tmp_path / "corpus")
    tdscale.gen(corpus, trajectories=300, seed=4, progress=False)
    tdscale.split(corpus, by=["domain"], test=0.2, seed=1)
    for kind, py_flags, cli_flags in (("bfcl", {}, []), ("tau2", {"domain_name": "d"}, ["--domain-name", "d"])):
        py_dir, cli_dir = tmp_path / f"py-{kind}", tmp_path / f"cli-{kind}"
        py = getattr(tdscale, f"export_{kind}")(corpus, to=py_dir, **py_flags)
        assert written(py) == written(cli_json("export", kind, corpus, "--to", cli_dir, *cli_flags))
        files = sorted(p.relative_to(py_dir) for p in py_dir.rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(cli_dir) for p in cli_dir.rglob("*") if p.is_file())
        assert len(files) >= 4
        for f in files:
            if f.name == "manifest.json":
                # The same files, written at another moment.
                py_manifest, cli_manifest = (json.loads((d / f).read_text()) for d in (py_dir, cli_dir))
                py_manifest.pop("created_at")
                cli_manifest.pop("created_at")
                assert py_manifest == cli_manifest
            else:
                assert (py_dir / f).read_bytes() == (cli_dir / f).read_bytes(), f

    run = tmp_path / "run"
    tdscale.budget(corpus, budgets=[20, 40], strategies="random", seeds=1, out=run, progress=False)
    scores = tmp_path / "scores.csv"
    scores.write_text("subset,benchmark,score\nrandom-b20-s0,bfcl,0.5\nrandom-b40-s0,bfcl,0.7\nno-such-subset,bfcl,0.1\n")
    py = tdscale.ablation(run, scores=scores)
    assert py == cli_json("ablation", run, "--scores", scores)
    assert [(c["budget"], c["score_mean"]) for c in py["cells"]] == [(20, 0.5), (40, 0.7)]
    assert len(py["unmatched"]) == 1
