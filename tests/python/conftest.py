"""Shared fixtures of the Python package's tests: the command-line binary the results are
compared with, the shared data, corpora, and a local S3 server.

A missing prerequisite fails the test with what to do; nothing is skipped.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import socket
import subprocess
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
TAU_BENCH = SHARED / "tau-bench" / "gpt-4o-airline.json"
RETAIL = REPO / "testdata" / "formats" / "tau_bench_retail.json"
OPENAI_CHAT = REPO / "testdata" / "formats" / "openai_chat.jsonl"


def _chat(i: int, city: str, forecast: str) -> dict:
    """One OpenAI-style chat record: a question, one tool call, its result and the answer."""
    return {
        "id": f"wx-{i}",
        "messages": [
            {"role": "user", "content": f"Weather in {city} tomorrow?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": f"call_{i}",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": json.dumps({"city": city})},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": f"call_{i}", "content": json.dumps({"forecast": forecast})},
            {"role": "assistant", "content": f"{city}: {forecast}."},
        ],
        "domain": "travel",
    }


def chat_rows() -> list[dict]:
    """Three chat records of one shape, so they make an Arrow table (the openai_chat fixture
    mixes shapes on purpose and does not)."""
    return [_chat(1, "Paris", "rain"), _chat(2, "Rome", "sun"), _chat(3, "Oslo", "snow")]


def chat_file(folder: pathlib.Path) -> pathlib.Path:
    """The records of :func:`chat_rows` as `openai_chat.jsonl` in `folder`."""
    path = folder / "openai_chat.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in chat_rows()))
    return path


def need(path: pathlib.Path, what: str) -> pathlib.Path:
    if not path.exists():
        pytest.fail(f"{what} is missing at {path}", pytrace=False)
    return path


@pytest.fixture(scope="session")
def tdscale_bin() -> str:
    """The tdscale binary of the same build (scripts/test.sh sets TDSCALE_BIN)."""
    path = os.environ.get("TDSCALE_BIN") or str(REPO / "target" / "debug" / "tdscale")
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"the tdscale binary is missing at {path}: run the tests with scripts/test.sh "
            "(or set TDSCALE_BIN to a built tdscale)",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def cli(tdscale_bin):
    """Runs the command line; returns the completed process."""

    def run(*args, env=None, check=True):
        p = subprocess.run(
            [tdscale_bin, *map(str, args)],
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
        )
        if check and p.returncode != 0:
            pytest.fail(f"tdscale {' '.join(map(str, args))} failed: {p.stderr}", pytrace=False)
        return p

    return run


@pytest.fixture(scope="session")
def cli_json(cli):
    """What `tdscale ... --json` prints, parsed."""

    def run(*args, env=None):
        return json.loads(cli(*args, "--json", env=env).stdout)

    return run


@pytest.fixture(scope="session")
def sql_rows(cli):
    """The rows of `tdscale sql CORPUS --format json QUERY`."""

    def run(corpus, query, env=None):
        out = cli("sql", corpus, "--format", "json", query, env=env).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    return run


@pytest.fixture(scope="session")
def tau_corpus(tmp_path_factory, cli_json) -> str:
    """A corpus of the tau-bench airline runs and the retail fixture (two domains), written by
    the command line: the Python side only reads it."""
    root = tmp_path_factory.mktemp("tau") / "corpus"
    need(TAU_BENCH, "the shared tau-bench data (../shared/data next to the repository)")
    s = cli_json("ingest", root, TAU_BENCH, need(RETAIL, "the retail fixture"))
    assert s["ingested"] > 50 and s["rejected"] == 0, s
    return str(root)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_env():
    """A moto S3 server on 127.0.0.1 and the AWS_* settings that reach it, set in this process
    for the duration of the session."""
    exe = shutil.which("moto_server")
    if exe is None:
        pytest.fail("moto_server is not installed: pip install 'moto[server]'", pytrace=False)
    port = _free_port()
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(f"moto_server did not listen on port {port}", pytrace=False)
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def bucket(s3_env):
    """Creates a bucket on the S3 server and returns its name."""
    import urllib.request

    def make(name: str) -> str:
        req = urllib.request.Request(f"{s3_env['AWS_ENDPOINT_URL']}/{name}", method="PUT")
        with urllib.request.urlopen(req) as r:
            assert r.status == 200
        return name

    return make
