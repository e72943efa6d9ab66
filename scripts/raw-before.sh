#!/usr/bin/env bash
# The raw uniform ceiling of the commit before issue 19's apply work
# (ffd1ebe), measured once on this machine now: prints transfers/s on
# stdout, its progress on stderr. Issue 19 judges the raw ceiling "in a
# before/after pair of runs on one machine", and this VM's speed varies by
# up to 2x between days, so `make bench` (scripts/bench.sh) and `make
# bench-raw-pair` take the "before" from here rather than from another day.
#
#   scripts/raw-before.sh                 # build if needed, measure once
#   BEFORE_REV=<rev> scripts/raw-before.sh
#
# The first run builds the before commit (~9 min on 2 cores) into its own
# target folder, from a copy of its tree beside it (`git archive`: no
# worktree is registered, and the files keep the commit's time, so cargo
# finds them unchanged); a later run reuses both and builds nothing. Needs
# the git history (a shallow clone lacks the before commit), PostgreSQL,
# NATS and Redis; the before bench creates its own database, stream and key
# prefix and deletes them.
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE_REV=${BEFORE_REV:-ffd1ebe}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
BEFORE_TARGET=${BEFORE_TARGET_DIR:-$TARGET/before-$BEFORE_REV}

if ! rev=$(git rev-parse --verify --quiet "$BEFORE_REV^{commit}"); then
  echo "[raw-before] commit $BEFORE_REV is not in this clone (a shallow clone?): 'git fetch --unshallow' first" >&2
  exit 1
fi

tree="$BEFORE_TARGET/tree"
if [ "$(cat "$tree/.bench-raw-pair-rev" 2>/dev/null)" != "$rev" ]; then
  rm -rf "$tree"
  mkdir -p "$tree"
  git archive "$rev" | tar -x -C "$tree"
  echo "$rev" >"$tree/.bench-raw-pair-rev"
fi
echo "[raw-before] building $BEFORE_REV in $tree (target $BEFORE_TARGET)" >&2
(cd "$tree" && CARGO_TARGET_DIR="$BEFORE_TARGET" cargo build --release --quiet \
  -p bench -p admin -p gateway -p processor -p notifier) >&2
bin="$BEFORE_TARGET/release"

log=$(mktemp)
trap 'rm -f "$log" "$log.json"' EXIT
echo "[raw-before] measuring $BEFORE_REV's raw uniform ceiling (~2 min)" >&2
# The before version has no --raw-only: it also runs a uniform closed loop,
# which does not touch its raw figure (measured first, with the machine to
# itself).
BIN="$bin" "$bin/bench" --skip-hot --skip-open --skip-probe --out "$log.json" \
  >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
# The figure on the progress line after "raw ceiling, uniform"
# ("[bench]   14265 transfers/s ...").
rate=$(awk '/raw ceiling, uniform/ { getline; print $2; exit }' "$log")
if [ -z "$rate" ]; then
  echo "[raw-before] the before bench printed no raw figure; its log:" >&2
  cat "$log" >&2
  exit 1
fi
echo "$rate"
