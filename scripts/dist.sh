#!/usr/bin/env bash
# The binary to ship: the `dist` profile (release settings, the whole program optimised as one
# module, see Cargo.toml) with its debug information split off.
#
# The profile keeps line tables (so that a crash report or `perf` names the source lines),
# which makes the linked binary several hundred MB. This copies it to
# `$CARGO_TARGET_DIR/dist/ship/tdscale` without the debug sections (the file to ship) and
# `dist/ship/tdscale.debug` with them (to keep beside crash reports), linked by a GNU debuglink
# so that gdb and perf find the debug file when it sits next to the binary or in
# /usr/lib/debug.
#
# usage: scripts/dist.sh        (prints the sizes; a cold build takes over an hour on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tdscale-target}"
command -v objcopy >/dev/null || { echo "scripts/dist.sh needs objcopy (Debian: apt-get install binutils)" >&2; exit 1; }

cargo build --profile dist --locked --bin tdscale
built="$CARGO_TARGET_DIR/dist/tdscale"
out="$CARGO_TARGET_DIR/dist/ship"
mkdir -p "$out"
objcopy --only-keep-debug "$built" "$out/tdscale.debug"
objcopy --strip-debug --strip-unneeded --add-gnu-debuglink="$out/tdscale.debug" "$built" "$out/tdscale"
"$out/tdscale" --version >/dev/null
du -h "$built" "$out/tdscale" "$out/tdscale.debug"
