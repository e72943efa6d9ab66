#!/usr/bin/env bash
# The browser test: a private copy of the whole system (own database, stream
# prefix, Redis prefix and ports), driven by Playwright in Debian's Chromium.
# Leaves nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/debug}

if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  echo "[e2e] installing Chromium (Debian package)"
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

run=e2e$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$run
export NATS_PREFIX=$run REDIS_PREFIX=$run
export GATEWAY_ADDR=127.0.0.1:${E2E_PORT:-18080}
export NOTIFIER_ADDR=127.0.0.1:$(( ${E2E_PORT:-18080} + 1 ))
export PROCESSOR_ADDR=127.0.0.1:$(( ${E2E_PORT:-18080} + 2 ))
export LOG_DIR=.dev/$run STACK_PIDFILE=.dev/$run.pids RUST_LOG=${RUST_LOG:-warn}

cleanup() {
  if [ -f "$STACK_PIDFILE" ]; then
    xargs kill -TERM <"$STACK_PIDFILE" 2>/dev/null || true
    sleep 1; xargs kill -KILL <"$STACK_PIDFILE" 2>/dev/null || true
    rm -f "$STACK_PIDFILE"
  fi
  "$BIN/bankadmin" teardown --yes-delete-everything >/dev/null || true
  [ "${KEEP_LOGS:-}" ] || rm -rf "$LOG_DIR"
}
trap cleanup EXIT

BIN=$BIN scripts/stack.sh --background >/dev/null
BASE_URL=http://$GATEWAY_ADDR node frontend/e2e/e2e.mjs || {
  echo "[e2e] failed; service logs follow" >&2
  tail -n 30 "$LOG_DIR"/*.log >&2 || true
  exit 1
}
