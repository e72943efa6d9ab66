#!/usr/bin/env bash
# make bench-raw-pair: issue 19's raw-ceiling target as the issue words it,
# "at least 2x today's in a before/after pair of runs on one machine".
#
# Alternates the raw uniform ceiling of the "before" commit (ffd1ebe, the
# last one before issue 19's apply work; scripts/raw-before.sh builds and
# measures it) with this checkout's, PAIRS times (default 3), on this
# machine in the same hour: machines differ by 2x (see README Performance),
# so a figure measured elsewhere proves nothing here. Prints each pair and
# the ratio of the means with met/NOT met. `make bench` measures one such
# "before" itself; more pairs here say how much one pair can be trusted.
#
#   BIN=$CARGO_TARGET_DIR/release scripts/bench-raw-pair.sh
#   PAIRS=5 BEFORE_REV=<rev> scripts/bench-raw-pair.sh
#
# Needs the release binaries in $BIN, PostgreSQL, NATS and Redis running,
# and the git history (a shallow clone lacks the before commit). Both
# benches create their own database, stream and key prefix and delete them.
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE_REV=${BEFORE_REV:-ffd1ebe}
PAIRS=${PAIRS:-3}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
BIN=${BIN:-$TARGET/release}

for b in bench gateway processor notifier bankadmin; do
  if [ ! -x "$BIN/$b" ]; then
    echo "[raw-pair] $BIN/$b is missing: run 'cargo build --release --workspace --bins' first" >&2
    exit 1
  fi
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The figure on the progress line after "raw ceiling, uniform"
# ("[bench]   27013 transfers/s ...").
raw_rate() {
  awk '/raw ceiling, uniform/ { getline; print $2; exit }' "$1"
}

befores=() afters=()
for i in $(seq 1 "$PAIRS"); do
  b=$(BEFORE_REV="$BEFORE_REV" scripts/raw-before.sh)
  BIN="$BIN" "$BIN/bench" --raw-only --skip-probe --scenarios uniform \
    --out "$work/after-$i.json" >"$work/after-$i.log" 2>&1 ||
    { cat "$work/after-$i.log" >&2; exit 1; }
  a=$(raw_rate "$work/after-$i.log")
  if [ -z "$a" ]; then
    echo "[raw-pair] pair $i printed no raw figure; log:" >&2
    cat "$work/after-$i.log" >&2
    exit 1
  fi
  befores+=("$b") afters+=("$a")
  awk -v i="$i" -v b="$b" -v a="$a" -v t="$(date -u +%H:%M)" -v rev="$BEFORE_REV" \
    'BEGIN { printf "pair %d (%s UTC): %s %6d/s   HEAD %6d/s   %.2f x\n", i, t, rev, b, a, a / b }'
done

awk -v bs="${befores[*]}" -v as="${afters[*]}" -v rev="$BEFORE_REV" 'BEGIN {
  n = split(bs, b, " "); split(as, a, " ");
  for (i = 1; i <= n; i++) { sb += b[i]; sa += a[i] }
  mb = sb / n; ma = sa / n; r = ma / mb;
  printf "mean of %d pairs: %s %d/s, HEAD %d/s: %.2f x (target >= 2 x) %s\n", n, rev, mb, ma, r, (r >= 2 ? "met" : "NOT met");
}'
