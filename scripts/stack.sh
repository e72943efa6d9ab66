#!/usr/bin/env bash
# Starts the whole system from built binaries: migrations, demo data,
# processor, notifier and gateway (which serves the web page). Used by
# `make dev` (foreground, Ctrl-C stops everything) and by the browser test.
#
#   scripts/stack.sh             run until Ctrl-C
#   STACK_PIDFILE=f scripts/stack.sh --background   start and return
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-${CARGO_TARGET_DIR:-target}/debug}
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/bank}
export GATEWAY_ADDR=${GATEWAY_ADDR:-127.0.0.1:8080}
export NOTIFIER_ADDR=${NOTIFIER_ADDR:-127.0.0.1:8081}
export PROCESSOR_ADDR=${PROCESSOR_ADDR:-127.0.0.1:8082}
export PUBLIC_WS_URL=${PUBLIC_WS_URL:-ws://$NOTIFIER_ADDR/v1/ws}
export WEB_DIR=${WEB_DIR:-frontend/dist}
LOG_DIR=${LOG_DIR:-.dev/logs}
mkdir -p "$LOG_DIR"

"$BIN/bankadmin" migrate
"$BIN/bankadmin" seed-demo

pids=()
stop() {
  trap - INT TERM EXIT
  [ ${#pids[@]} -gt 0 ] && kill -TERM "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
for svc in processor notifier gateway; do
  "$BIN/$svc" >"$LOG_DIR/$svc.log" 2>&1 &
  pids+=($!)
done
ready() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
for addr in "$PROCESSOR_ADDR" "$NOTIFIER_ADDR" "$GATEWAY_ADDR"; do
  for _ in $(seq 1 100); do ready "$addr" && break; sleep 0.2; done
  ready "$addr" || { echo "error: nothing listening on $addr; see $LOG_DIR" >&2; stop; exit 1; }
done

if [ "${1:-}" = --background ]; then
  printf '%s\n' "${pids[@]}" > "${STACK_PIDFILE:-.dev/stack.pids}"
  exit 0
fi
trap 'stop; exit 0' INT TERM
trap stop EXIT
cat <<MSG

  The bank is up.
    Web page:   http://$GATEWAY_ADDR/
    API:        http://$GATEWAY_ADDR/v1/   (health: /healthz, /readyz, metrics: /metrics)
    WebSocket:  $PUBLIC_WS_URL
    Processor:  http://$PROCESSOR_ADDR/metrics
    Logs:       $LOG_DIR/{gateway,processor,notifier}.log
    Demo users: alice / alice-dev-password, bob / bob-dev-password (customers),
                batch / batch-dev-password, ops / ops-dev-password
  Ctrl-C stops everything.

MSG
wait -n "${pids[@]}" || true
echo "a service exited; stopping (see $LOG_DIR)" >&2
