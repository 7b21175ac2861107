#!/usr/bin/env bash
# The training run of a profile-guided build (scripts/pgo.sh): the work users give tdscale,
# run by a binary built with `-Cprofile-generate`, so that the final build knows which paths are
# hot. Real dialects (every bundled format, catalogs, the demo's queries, report, clusters,
# budgets and evolution) and the benchmark's shape (OpenAI chat records repeating a domain's
# catalog: ingest, then the metrics queries); the generated corpus has its own seed.
#
# usage: scripts/pgo_train.sh BIN WORKDIR      (WORKDIR is emptied first; about 400 MB)
# PGO_TRAIN_ROUNDS (20) and PGO_TRAIN_TRAJECTORIES (50000) make it smaller, for its test.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: scripts/pgo_train.sh BIN WORKDIR" >&2; exit 2; }
bin=$(realpath "$1")
work=$2
cd "$(dirname "$0")/.."
rm -rf "$work"
mkdir -p "$work"

step() { echo "pgo training: $*" >&2; }

step "the demo (every format, catalogs, report, clusters, budgets, a short evolution)"
# (It reports the bundled bad records on stderr: shown only if it fails.)
"$bin" demo --corpus "$work/demo" --data testdata >"$work/demo.log" 2>&1 \
    || { cat "$work/demo.log" >&2; exit 1; }

# Each format's reader, many times over (a fresh corpus each time, so that every record is
# parsed, stored and measured). The bad inputs keep the reject paths in the profile.
formats=(testdata/formats/*.json testdata/formats/*.jsonl)
for d in adp anthropic claude_code codex compressed llamafactory_parts openai_parts \
    openai_responses openhands parquet swe_agent; do
    formats+=("testdata/formats/$d")
done
rounds=${PGO_TRAIN_ROUNDS:-20}
trajectories=${PGO_TRAIN_TRAJECTORIES:-50000}
step "${#formats[@]} format inputs and testdata/bad, $rounds times"
for _ in $(seq 1 "$rounds"); do
    rm -rf "$work/formats"
    "$bin" ingest "$work/formats" "${formats[@]}" --json >/dev/null
    # Rejects are what these files are for (reported, exit code 0 without --strict).
    "$bin" ingest "$work/formats" testdata/bad --json >/dev/null
    "$bin" ingest "$work/formats" testdata/catalogs --table tools --json >/dev/null
done
"$bin" sql "$work/formats" -f queries/corpus_summary.sql --format csv >/dev/null

step "a generated corpus of $trajectories trajectories: its JSONL ingested, then the metrics queries"
"$bin" gen "$work/gen" --trajectories "$trajectories" --seed 7 --jsonl "$work/gen.jsonl" >/dev/null
"$bin" ingest "$work/corpus" "$work/gen.jsonl" --json >/dev/null
for q in bench_metrics diversity_by_round corpus_summary; do
    "$bin" sql "$work/corpus" -f "queries/$q.sql" --format csv >/dev/null
done
"$bin" sql "$work/corpus" -f queries/budget_stratified.sql -p budget=5000 --format csv >/dev/null
"$bin" report "$work/corpus" --by domain --json >/dev/null
"$bin" export openai "$work/corpus" --out "$work/all.jsonl" >/dev/null
step "done"
