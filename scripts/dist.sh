#!/usr/bin/env bash
# The binary to ship: a release build with its debug information split off.
#
# The release profile keeps line tables (so that a crash report or `perf` names the source
# lines), which makes the linked binary several hundred MB. This copies it to
# `$CARGO_TARGET_DIR/dist/tdscale` without the debug sections (the file to ship) and
# `dist/tdscale.debug` with them (to keep beside crash reports), linked by a GNU debuglink so
# that gdb and perf find the debug file when it sits next to the binary or in
# /usr/lib/debug.
#
# usage: scripts/dist.sh        (prints the two sizes)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tdscale-target}"
command -v objcopy >/dev/null || { echo "scripts/dist.sh needs objcopy (Debian: apt-get install binutils)" >&2; exit 1; }

cargo build --release --locked
out="$CARGO_TARGET_DIR/dist"
mkdir -p "$out"
objcopy --only-keep-debug "$CARGO_TARGET_DIR/release/tdscale" "$out/tdscale.debug"
objcopy --strip-debug --strip-unneeded --add-gnu-debuglink="$out/tdscale.debug" \
    "$CARGO_TARGET_DIR/release/tdscale" "$out/tdscale"
"$out/tdscale" --version >/dev/null
du -h "$CARGO_TARGET_DIR/release/tdscale" "$out/tdscale" "$out/tdscale.debug"
