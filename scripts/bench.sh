#!/usr/bin/env bash
# make bench: throughput and latency of the whole transfer pipeline next to
# the raw PostgreSQL ceiling, measured in the same run (see issue 9 and
# bench/src/main.rs). Needs the release binaries in $BIN and PostgreSQL,
# NATS JetStream and Redis running (scripts/services.sh).
#
#   BIN=$CARGO_TARGET_DIR/release scripts/bench.sh            # full run (~6-8 min)
#   BIN=$CARGO_TARGET_DIR/release scripts/bench.sh --quick    # harness check (< 60 s)
#   scripts/bench.sh --help                                   # every option
#
# The table goes to stdout, the same as JSON to bench/results/latest.json
# (--quick: bench/results/quick.json). The bench creates its own database,
# stream prefix and Redis prefix and deletes them at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release}
for b in bench gateway processor notifier bankadmin; do
  if [ ! -x "$BIN/$b" ]; then
    echo "[bench] $BIN/$b is missing: run 'cargo build --release --workspace --bins' first" >&2
    exit 1
  fi
done
export BIN
exec "$BIN/bench" "$@"
