#!/usr/bin/env bash
# A profile-guided build of the tdscale binary: a build that counts how often each branch and
# call runs (`-Cprofile-generate`), a training run of it (scripts/pgo_train.sh), then the final
# build optimised with those counts (`-Cprofile-use`). Prints the final binary's path.
#
# Needs `llvm-profdata` of the LLVM that rustc uses (`rustc -vV` names it): rustup's
# `llvm-tools` component or Debian's `llvm-<major>` package. The two builds use `--target`, so
# the flags stay off build scripts and procedural macros, and the binary is
# $CARGO_TARGET_DIR/<host triple>/<profile>/tdscale; each is a full build of the dependencies
# (31-36 minutes on 2 cores for `release`).
#
# The counting build leaves out the line tables (`-Cdebuginfo=0`; the counts are of branches,
# not lines): with them, the counting build of `dist` (fat link-time optimisation, the whole
# instrumented program linked as one module) was killed at 24.3 GB on a 24 GiB machine; without
# them it peaked at 17.8 GB and took 46 minutes on 2 cores.
#
# usage: scripts/pgo.sh [PROFILE]      (default: release; `dist` for the shipped profile)
# PGO_DIR (default $CARGO_TARGET_DIR/pgo) holds the raw counts, the merged profile and the
# training's files.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-release}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tdscale-target}"
pgo=${PGO_DIR:-$CARGO_TARGET_DIR/pgo}

host=$(rustc -vV | sed -n 's/^host: //p')
llvm=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
profdata=
for candidate in "$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata" \
    "llvm-profdata-$llvm" "/usr/lib/llvm-$llvm/bin/llvm-profdata"; do
    if command -v "$candidate" >/dev/null 2>&1; then
        profdata=$candidate
        break
    fi
done
if [ -z "$profdata" ]; then
    echo "scripts/pgo.sh needs llvm-profdata of LLVM $llvm (the one rustc uses): run" \
        "\`rustup component add llvm-tools\` or, on Debian, \`apt-get install llvm-$llvm\`" >&2
    exit 1
fi
binary="$CARGO_TARGET_DIR/$host/$profile/tdscale"

echo "pgo: the counting build ($profile)" >&2
mkdir -p "$pgo"
rm -rf "$pgo/raw"
RUSTFLAGS="-Cprofile-generate=$pgo/raw -Cdebuginfo=0" \
    cargo build --profile "$profile" --locked --bin tdscale --target "$host"
echo "pgo: the training run" >&2
# `%m` merges the counts of every process into one file (80 MB) instead of one file each.
LLVM_PROFILE_FILE="$pgo/raw/tdscale_%m.profraw" scripts/pgo_train.sh "$binary" "$pgo/work"
rm -rf "$pgo/work"
"$profdata" merge -o "$pgo/merged.profdata" "$pgo/raw"
echo "pgo: the final build ($profile)" >&2
RUSTFLAGS="-Cprofile-use=$pgo/merged.profdata" \
    cargo build --profile "$profile" --locked --bin tdscale --target "$host"
echo "$binary"
