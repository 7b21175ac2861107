"""tdscale from Python: its SQL functions inside the ``datafusion`` package, corpora as
``datafusion.SessionContext`` objects, and its commands as calls.

    import tdscale

    ctx = tdscale.open("./corpus")                 # tables, views and functions of a corpus
    ctx.sql("SELECT domain, domain_entropy(domain) FROM trajectories GROUP BY domain").to_polars()

    mine = datafusion.SessionContext()
    fns = tdscale.register(mine)                   # every function, in SQL and as expressions

    tdscale.ingest("./corpus", ["runs.jsonl"])     # the commands, with the command line's flags
    tdscale.ingest("./corpus", polars_frame)       # rows of any Arrow data: pyarrow, polars, pandas,
                                                   # Hugging Face datasets

Functions and tables cross into ``datafusion`` through its foreign-function interface
(``datafusion-ffi`` 55), so the installed ``datafusion`` must be 55.x. Commands take the flags of
``tdscale <command>`` as keyword arguments (``--per-round 100`` is ``per_round=100``; a flag left at
None keeps the command line's default), return what ``--json`` prints as Python objects, and raise
a :class:`TdscaleError` subclass carrying the message the command line prints. They run with the
GIL released, show notebook progress bars (``progress=False`` hides them), and stop on Ctrl-C.
"""

from __future__ import annotations

import datetime as _datetime
import json as _json
import os as _os
from itertools import chain as _chain
from types import SimpleNamespace as _Namespace
from typing import Any as _Any

import datafusion as _datafusion

from . import _native

__all__ = [
    "TdscaleError",
    "UsageError",
    "RejectedError",
    "SqlError",
    "StorageError",
    "open",
    "register",
    "functions",
    "to_hf_dataset",
    "command",
    "ingest",
    "report",
    "budget",
    "ablation",
    "evolve",
    "rounds",
    "split",
    "decontaminate",
    "export_openai",
    "export_bfcl",
    "export_tau2",
    "clusters_build",
    "clusters_show",
    "gen",
]

_DATAFUSION_MAJOR = int(_datafusion.__version__.split(".")[0])
if _DATAFUSION_MAJOR != _native.DATAFUSION_FFI_MAJOR:
    raise ImportError(
        f"tdscale needs the datafusion package {_native.DATAFUSION_FFI_MAJOR}.x (functions and "
        f"tables cross into it through datafusion-ffi {_native.DATAFUSION_FFI_MAJOR}), but "
        f"datafusion {_datafusion.__version__} is installed: "
        f"pip install 'datafusion>={_native.DATAFUSION_FFI_MAJOR},<{_native.DATAFUSION_FFI_MAJOR + 1}'"
    )


class TdscaleError(Exception):
    """A command failed; the message is the one the command line prints after ``error:``."""

    exit_code = 1


class UsageError(TdscaleError, ValueError):
    """A wrong argument or value (the command line's exit code 2)."""

    exit_code = 2


class RejectedError(TdscaleError):
    """Records were rejected under ``strict=True`` (exit code 3); the accepted ones are stored."""

    exit_code = 3


class SqlError(TdscaleError):
    """A SQL statement failed to parse, plan or run (exit code 4)."""

    exit_code = 4


class StorageError(TdscaleError, OSError):
    """The local folder or S3 refused an operation (exit code 5)."""

    exit_code = 5


_ERRORS = {e.exit_code: e for e in (UsageError, RejectedError, SqlError, StorageError)}


def _call(f, *args):
    """Calls the native module, turning its errors into the classes above."""
    try:
        return f(*args)
    except _native.NativeError as e:
        code, message = e.args
        raise _ERRORS.get(code, TdscaleError)(message) from None


# ---- functions and sessions -------------------------------------------------------------------


def functions() -> _Namespace:
    """Every tdscale scalar and aggregate function as a ``datafusion`` function object, by name:
    call them on expressions in the DataFrame API of any session, e.g.
    ``df.aggregate([col("domain")], [functions().domain_entropy(col("domain"))])``."""
    out = {}
    for f in _native.scalar_functions():
        out[f.name] = _datafusion.ScalarUDF.from_pycapsule(f)
    for f in _native.aggregate_functions():
        out[f.name] = _datafusion.AggregateUDF.from_pycapsule(f)
    return _Namespace(**out)


def _register_functions(ctx: _datafusion.SessionContext) -> _Namespace:
    fns = functions()
    for f in vars(fns).values():
        if isinstance(f, _datafusion.AggregateUDF):
            ctx.register_udaf(f)
        else:
            ctx.register_udf(f)
    return fns


def register(ctx: _datafusion.SessionContext) -> _Namespace:
    """Adds every tdscale scalar, aggregate and table function to ``ctx`` (a
    ``datafusion.SessionContext``) for SQL, and returns them for the DataFrame API (see
    :func:`functions`). The table functions (``greedy_entropy``, ``deita_select``) read the
    ``trajectory_metrics`` view, which sessions from :func:`open` have."""
    fns = _register_functions(ctx)
    for f in _native.table_functions():
        ctx.register_udtf(_datafusion.TableFunction(f.name, f))
    return fns


def open(corpus: str | _os.PathLike, config: _datafusion.SessionConfig | None = None) -> _datafusion.SessionContext:  # noqa: A001
    """A ``datafusion.SessionContext`` over the corpus at ``corpus`` (a folder or
    ``s3://bucket/prefix``, with the ``AWS_*`` settings): every table of the corpus, the views
    ``tool_calls`` and ``trajectory_metrics``, and every tdscale function.

    Each table is tdscale's own table provider, registered through ``datafusion-ffi``: it reads
    the corpus with tdscale's object stores and lists the table's files again for each query, so
    the session sees what commands wrote after it was opened. The views are created in the
    returned session from tdscale's SQL, so ``datafusion`` plans them with the functions; the
    table functions compute their selection in the corpus's own session."""
    native = _call(_native.open_corpus, _os.fspath(corpus))
    if config is None:
        config = _datafusion.SessionConfig().with_information_schema(True)
    ctx = _datafusion.SessionContext(config)
    _register_functions(ctx)
    for table in _call(native.tables):
        ctx.register_table(table.name, table)
    for f in native.table_functions():
        ctx.register_udtf(_datafusion.TableFunction(f.name, f))
    for _name, sql in _native.views():
        ctx.sql(sql).collect()
    return ctx


# ---- interop ----------------------------------------------------------------------------------


def _arrow_table(data):
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    if hasattr(data, "__arrow_c_stream__"):
        return pa.table(data)
    raise TypeError(
        f"{type(data).__name__} is not Arrow data: pass a datafusion DataFrame, a pyarrow table "
        "or anything with __arrow_c_stream__ (polars and pandas frames)"
    )


def to_hf_dataset(data, **kwargs) -> _Any:
    """A Hugging Face ``datasets.Dataset`` of ``data`` (a datafusion DataFrame, e.g.
    ``ctx.sql(...)``, or any Arrow data), built from its Arrow columns with no per-row Python.
    ``kwargs`` go to ``datasets.Dataset`` (``info``, ``split``)."""
    import datasets

    return datasets.Dataset(datasets.table.InMemoryTable(_arrow_table(data)), **kwargs)


def _arrow_stream(data):
    """``data`` as an object with ``__arrow_c_stream__``, read batch by batch."""
    if hasattr(data, "__arrow_c_stream__"):
        return data
    module = type(data).__module__.split(".")[0]
    if module == "datasets":
        import pyarrow as pa

        if not hasattr(data, "with_format"):
            raise TypeError(
                f"a {type(data).__name__} holds several splits: pass one, e.g. data['train']"
            )
        tables = iter(data.with_format("arrow").iter(batch_size=8192))
        first = next(tables, None)
        if first is None:
            return pa.RecordBatchReader.from_batches(data.features.arrow_schema, iter(()))
        batches = _chain(first.to_batches(), (b for t in tables for b in t.to_batches()))
        return pa.RecordBatchReader.from_batches(first.schema, batches)
    if module == "polars" and hasattr(data, "collect"):
        raise TypeError("a polars LazyFrame is a query, not rows: pass frame.collect()")
    raise TypeError(
        f"cannot ingest a {type(data).__name__}: pass file paths, or rows as a pyarrow table or "
        "reader, a polars or pandas DataFrame, a datafusion DataFrame or a Hugging Face Dataset"
    )


# ---- commands ---------------------------------------------------------------------------------


def _value(v) -> str:
    if isinstance(v, _datetime.timedelta):
        return f"{v.total_seconds()}s"
    if isinstance(v, _os.PathLike):
        return _os.fspath(v)
    return str(v)


def _flags(**options) -> list[str]:
    """Keyword arguments as command-line flags: ``per_round=100`` is ``--per-round 100``; True
    sets a switch; a list repeats its flag; ``params`` is ``-p NAME=VALUE`` per item; None and
    False leave the flag out."""
    out: list[str] = []
    for name, v in options.items():
        if v is None or v is False:
            continue
        if name == "params":
            for key, value in dict(v).items():
                out += ["-p", f"{key}={_value(value)}"]
            continue
        flag = "--" + name.replace("_", "-")
        if v is True:
            out.append(flag)
        elif isinstance(v, (list, tuple)):
            for item in v:
                out += [flag, _value(item)]
        else:
            out += [flag, _value(v)]
    return out


def _paths(v) -> list[str]:
    if isinstance(v, (str, _os.PathLike)):
        return [_os.fspath(v)]
    return [_os.fspath(p) for p in v]


def _wait(task, progress: bool):
    """Waits for a native task with the GIL released, drawing its progress bars."""
    bars: dict[int, _Any] = {}
    try:
        while not task.wait(0.1):
            if progress:
                _draw(bars, task.bars())
        if progress:
            _draw(bars, task.bars())
    except BaseException:
        task.cancel()
        raise
    finally:
        for bar in bars.values():
            bar.close()
    return _json.loads(_call(task.result))


def _draw(bars: dict, states) -> None:
    from tqdm.auto import tqdm

    for i, (label, is_bytes, position, length, finished) in enumerate(states):
        bar = bars.get(i)
        if bar is None:
            # A bar that ended between two looks is still drawn, full, once.
            kw = {"unit": "B", "unit_scale": True, "unit_divisor": 1024} if is_bytes else {}
            bar = bars[i] = tqdm(total=length, desc=label, **kw)
        if bar.disable:
            continue
        if length is not None and bar.total != length:
            bar.total = length
        bar.update(position - bar.n)
        if finished:
            bar.close()


def command(*args: str, progress: bool = True) -> _Any:
    """Runs ``tdscale <args>`` (e.g. ``command("rounds", "./corpus")``) and returns what
    ``--json`` prints. The named functions below are this with keyword arguments."""
    return _wait(_native.start([_value(a) for a in args], progress), progress)


def ingest(
    corpus: str | _os.PathLike,
    inputs,
    *,
    table: str | None = None,
    format: str | None = None,  # noqa: A002
    source: str | None = None,
    domain: str | None = None,
    round: int | None = None,  # noqa: A002
    strict: bool = False,
    name: str = "rows",
    progress: bool = True,
) -> dict:
    """``tdscale ingest``: ``inputs`` are file paths (one or a list), or rows — a pyarrow table or
    reader, a polars or pandas DataFrame, a datafusion DataFrame, a Hugging Face ``Dataset`` —
    read through Arrow as if each row were one JSON Lines record of a file called ``name``, so
    they go through the same format detection and parsers (``name`` is also the default
    ``source``). Returns the ingest summary; rejected records are in the ``rejects`` table."""
    flags = _flags(table=table, format=format, source=source, domain=domain, round=round, strict=strict)
    if isinstance(inputs, (str, _os.PathLike)) or (
        isinstance(inputs, (list, tuple)) and all(isinstance(p, (str, _os.PathLike)) for p in inputs)
    ):
        return command("ingest", _os.fspath(corpus), *_paths(inputs), *flags, progress=progress)
    stream = _arrow_stream(inputs)
    args = ["ingest", _os.fspath(corpus), name, *flags]
    return _wait(_call(_native.start_ingest_rows, args, stream, progress), progress)


def report(corpus, *, by: str | None = None, html=None, cluster: str | None = None) -> dict:
    """``tdscale report``: counts, DE, RME, CAC percentiles, top modes and the long tail per
    group (``by``: round, domain, source or cluster); ``html`` also writes the page."""
    return command("report", _os.fspath(corpus), *_flags(by=by, html=html, cluster=cluster), progress=False)


def budget(
    corpus,
    *,
    budgets,
    unit: str | None = None,
    strategies=None,
    seeds: int | None = None,
    out=None,
    threshold: float | None = None,
    no_training_files: bool = False,
    progress: bool = True,
) -> list:
    """``tdscale budget``: one subset per budget × strategy × seed, with their metrics (one
    dict each) and training files under ``out`` (default: ``runs/budget-<time>`` in the
    corpus)."""
    flags = _flags(
        budgets=list(budgets) if not isinstance(budgets, int) else [budgets],
        unit=unit,
        strategies=[strategies] if isinstance(strategies, str) else strategies,
        seeds=seeds,
        out=out,
        threshold=threshold,
        no_training_files=no_training_files,
    )
    return command("budget", _os.fspath(corpus), *flags, progress=progress)


def ablation(run, *, scores, html=None) -> dict:
    """``tdscale ablation``: scores joined to the subsets of a budget run."""
    return command("ablation", _os.fspath(run), *_flags(scores=scores, html=html), progress=False)


def evolve(
    corpus,
    *,
    rounds: int | None = None,
    per_round: int | None = None,
    strategy: str | None = None,
    params: dict | None = None,
    backend: str | None = None,
    base_url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    concurrency: int | None = None,
    requests_per_minute: int | None = None,
    request_timeout=None,
    max_retries: int | None = None,
    retry_base=None,
    no_cache: bool = False,
    seed: int | None = None,
    code_timeout=None,
    progress: bool = True,
) -> dict:
    """``tdscale evolve``: rounds of long-tail seed selection and synthesis. Durations are
    strings such as ``"120s"``, seconds, or ``datetime.timedelta``."""
    flags = _flags(
        rounds=rounds,
        per_round=per_round,
        strategy=strategy,
        params=params,
        backend=backend,
        base_url=base_url,
        model=model,
        api_key=api_key,
        concurrency=concurrency,
        requests_per_minute=requests_per_minute,
        request_timeout=request_timeout,
        max_retries=max_retries,
        retry_base=retry_base,
        no_cache=no_cache,
        seed=seed,
        code_timeout=code_timeout,
    )
    return command("evolve", _os.fspath(corpus), *flags, progress=progress)


def rounds(corpus) -> list:
    """``tdscale rounds``: DE, RME, modes, CAC and acceptance per evolution round."""
    return command("rounds", _os.fspath(corpus), progress=False)


def split(corpus, *, by=None, test: float | None = None, seed: int | None = None, near_dup: float | None = None) -> dict:
    """``tdscale split``: the train / test assignment of every trajectory."""
    by = [by] if isinstance(by, str) else by
    return command("split", _os.fspath(corpus), *_flags(by=by, test=test, seed=seed, near_dup=near_dup), progress=False)


def decontaminate(corpus, *, against, threshold: float | None = None) -> dict:
    """``tdscale decontaminate``: ``{"summary": ..., "flagged": [...]}``."""
    flags = _flags(against=_paths(against), threshold=threshold)
    return command("decontaminate", _os.fspath(corpus), *flags, progress=False)


def export_openai(corpus, *, out, where: str | None = None) -> dict:
    """``tdscale export openai``: trajectories as OpenAI chat JSON Lines."""
    return command("export", "openai", _os.fspath(corpus), *_flags(out=out, where=where), progress=False)


def _eval_flags(to, split, query, params, retries, retry_timeout) -> list[str]:
    return _flags(to=to, split=split, query=query, params=params, retries=retries, retry_timeout=retry_timeout)


def export_bfcl(corpus, *, to, split: str | None = None, query=None, params=None, retries=None, retry_timeout=None) -> dict:
    """``tdscale export bfcl``: a split as BFCL question files and ground truth."""
    flags = _eval_flags(to, split, query, params, retries, retry_timeout)
    return command("export", "bfcl", _os.fspath(corpus), *flags, progress=False)


def export_tau2(corpus, *, to, domain_name: str, split: str | None = None, query=None, params=None, retries=None, retry_timeout=None) -> dict:
    """``tdscale export tau2``: a split as a tau² domain folder."""
    flags = _eval_flags(to, split, query, params, retries, retry_timeout) + _flags(domain_name=domain_name)
    return command("export", "tau2", _os.fspath(corpus), *flags, progress=False)


def clusters_build(corpus, *, max_cluster_size: int | None = None, select: int | None = None, domains=None) -> dict:
    """``tdscale clusters build``: business clusters of the tools table."""
    flags = _flags(max_cluster_size=max_cluster_size, select=select, domains=domains)
    return command("clusters", "build", _os.fspath(corpus), *flags, progress=False)


def clusters_show(corpus, cluster_id: str) -> str:
    """``tdscale clusters show``: a cluster's tools and edges, as text."""
    return command("clusters", "show", _os.fspath(corpus), cluster_id, progress=False)


def gen(corpus, *, trajectories: int, seed: int | None = None, domains: int | None = None, zipf: float | None = None, jsonl=None, progress: bool = True) -> dict:
    """``tdscale gen``: a synthetic corpus for tests and benchmarks."""
    flags = _flags(trajectories=trajectories, seed=seed, domains=domains, zipf=zipf, jsonl=jsonl)
    return command("gen", _os.fspath(corpus), *flags, progress=progress)
