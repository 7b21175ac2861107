#!/usr/bin/env bash
# The fixed-budget grid at scale: 4 budgets × 6 strategies × 3 seeds on a generated corpus of
# N trajectories (default 1,000,000). Prints wall time and peak memory of generation and of the
# budget run (GNU time), for benches/RESULTS.md.
#
# usage: benches/budget_1m.sh [N]     (WORK=/some/dir to choose where the corpus goes)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-1000000}"
WORK="${WORK:-${TMPDIR:-/tmp}/tdscale-budget-bench}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tdscale-target}"
cargo build --release --locked
BIN="$CARGO_TARGET_DIR/release/tdscale"
[ -x /usr/bin/time ] || { echo "error: GNU time is needed (apt-get install time)" >&2; exit 1; }
rm -rf "$WORK"
mkdir -p "$WORK"

measure() { # label, command...
    local label="$1"; shift
    /usr/bin/time -v "$@" > "$WORK/$label.out" 2> "$WORK/$label.time"
    local wall rss
    wall=$(grep "Elapsed (wall clock)" "$WORK/$label.time" | awk '{print $NF}')
    rss=$(grep "Maximum resident set size" "$WORK/$label.time" | awk '{print $NF}')
    printf '| %s | %s | %d MiB |\n' "$label" "$wall" "$((rss / 1024))"
}

echo "| step | wall time | peak RSS |"
echo "|---|---|---|"
measure "gen $N" "$BIN" gen "$WORK/corpus" --trajectories "$N" --seed 1 --json
measure "budget 4x6x3 (manifests, metrics, training files)" "$BIN" budget "$WORK/corpus" --budgets 500,1000,2000,5000 --seeds 3 --out "$WORK/run" --json
echo
echo "subsets written: $(ls -d "$WORK"/run/*/ | wc -l); corpus: $(du -sh "$WORK/corpus" | cut -f1); machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
