#!/usr/bin/env bash
# Runs the whole test suite: the Rust tests, then the Python package's tests (pytest) in a virtual
# environment made afresh, where the package is installed with `pip install .`. The S3 tests start
# a local moto_server themselves; this script makes sure moto (and curl, used to create test
# buckets), BFCL's checker, and the viewer's browser (Debian's chromium) and its driver (Playwright
# for Python) are installed first. Arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v moto_server >/dev/null 2>&1; then
    echo "installing the S3 test server: pip install 'moto[server]'" >&2
    python3 -m pip install --quiet 'moto[server]' || { echo "error: could not install moto[server]; the S3 tests need it" >&2; exit 1; }
fi
# BFCL's AST checker judges the BFCL export. Only the checker is used, so the package goes in
# without its dependencies (model SDKs, torch); tests/tools/bfcl_check.py stands in for the one
# module that needs them.
if ! python3 -c "import importlib.metadata as m; assert m.version('bfcl-eval') == '2026.3.23'" 2>/dev/null; then
    echo "installing BFCL's checker: pip install --no-deps bfcl-eval==2026.3.23" >&2
    python3 -m pip install --quiet --no-deps 'bfcl-eval==2026.3.23' || { echo "error: could not install bfcl-eval; the BFCL export test needs it" >&2; exit 1; }
fi
command -v curl >/dev/null 2>&1 || { echo "error: curl is needed by the S3 tests (apt-get install curl)" >&2; exit 1; }
# The viewer's tests drive a real browser: Debian's chromium, through Playwright for Python (the
# package only — it is told to use /usr/bin/chromium and never downloads a browser of its own).
if [ ! -x /usr/bin/chromium ]; then
    echo "installing the browser of the viewer's tests: apt-get install -y chromium" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
        || { echo "error: could not install chromium (apt-get install -y chromium); the browser tests of tdscale serve need it" >&2; exit 1; }
fi
if ! python3 -c "import playwright" 2>/dev/null; then
    echo "installing the browser driver: pip install playwright" >&2
    python3 -m pip install --quiet playwright || { echo "error: could not install playwright (pip install playwright); the browser tests of tdscale serve need it" >&2; exit 1; }
fi
python3 -c 'import sys, venv, ensurepip; assert sys.version_info >= (3, 10)' 2>/dev/null \
    || { echo "error: the Python tests need python3 >= 3.10 with venv and ensurepip (apt-get install python3-venv)" >&2; exit 1; }

# Tests talk only to servers they start on 127.0.0.1; never let the S3 client probe the cloud.
export AWS_EC2_METADATA_DISABLED=true
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TARGET_DIR="$target_dir"

# The cluster tests need the `cluster` feature (the Ballista scheduler and executor). The whole
# workspace is resolved together, so the Python package's native module, built next with the
# same profile and features, reuses every dependency compiled here.
cargo test --locked --workspace --features cluster "$@"

venv="$target_dir/python-venv"
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip \
    || { echo "error: could not upgrade pip in $venv" >&2; exit 1; }
echo "installing the Python package: pip install '.[test]' (native module: dev profile, cluster feature)" >&2
MATURIN_PEP517_ARGS="--profile dev --features cluster" "$venv/bin/python" -m pip install --quiet '.[test]' \
    || { echo "error: could not build or install the Python package (pip install .) or its test dependencies" >&2; exit 1; }
TDSCALE_BIN="$target_dir/debug/tdscale" "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/python
