# shellcheck shell=bash
# Sourced by the browser test and the fuzzer: a private copy of the whole
# system (own database, stream prefix, Redis prefix and ports) that leaves
# nothing behind.   usage: . scripts/private-stack.sh NAME BASE_PORT
#   BIN          the service binaries
#   KEEP_LOGS=1  keep the services' logs under .dev/
# Exports GATEWAY_ADDR etc.; call `private_stack_start` after setting any
# extra environment (the cleanup runs on exit).
run=$1$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$run
export NATS_PREFIX=$run REDIS_PREFIX=$run
export GATEWAY_ADDR=127.0.0.1:$2
export NOTIFIER_ADDR=127.0.0.1:$(( $2 + 1 ))
export PROCESSOR_ADDR=127.0.0.1:$(( $2 + 2 ))
export LOG_DIR=.dev/$run STACK_PIDFILE=.dev/$run.pids RUST_LOG=${RUST_LOG:-warn}

private_stack_cleanup() {
  if [ -f "$STACK_PIDFILE" ]; then
    xargs kill -TERM <"$STACK_PIDFILE" 2>/dev/null || true
    sleep 1; xargs kill -KILL <"$STACK_PIDFILE" 2>/dev/null || true
    rm -f "$STACK_PIDFILE"
  fi
  "$BIN/bankadmin" teardown --yes-delete-everything >/dev/null || true
  [ "${KEEP_LOGS:-}" ] || rm -rf "$LOG_DIR"
}

private_stack_start() {
  trap private_stack_cleanup EXIT
  BIN=$BIN scripts/stack.sh --background >/dev/null
}
