#!/usr/bin/env bash
# Fuzzes the API with schemathesis, driven by the gateway's own
# /openapi.json, against a private copy of the whole system (own database,
# stream prefix, Redis prefix and ports, like the browser test). Checks:
# no 5xx, every response's status documented and its body matching the
# documented schema. Leaves nothing behind.
#
#   scripts/fuzz.sh                      FUZZ_EXAMPLES=25 cases per operation (make fuzz-short)
#   FUZZ_EXAMPLES=500 scripts/fuzz.sh    the long run (make fuzz)
#   FUZZ_SEED=123 scripts/fuzz.sh        replay a run (the seed is printed)
#   KEEP_LOGS=1 scripts/fuzz.sh          keep the services' logs under .dev/
#   FUZZ_ARGS='--include-operation-id login' scripts/fuzz.sh   more schemathesis options
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/debug}
SCHEMATHESIS_VERSION=4.32.5
VENV=.dev/fuzz-venv
EXAMPLES=${FUZZ_EXAMPLES:-25}
SEED=${FUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}

if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  echo "[fuzz] installing python3-venv (Debian package)"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
fi
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -qF "$SCHEMATHESIS_VERSION"; then
  echo "[fuzz] installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

. scripts/private-stack.sh fuzz "${FUZZ_PORT:-18090}"
export WEB_DIR=/nonexistent
# Thousands of requests from one address and one user, and logins with
# made-up credentials: the quotas and the lockout would otherwise answer
# most of them with 429 (documented, but it would hide the handlers).
export RATE_LIMIT_USER_PER_MINUTE=100000000 RATE_LIMIT_IP_PER_MINUTE=100000000
for role in CUSTOMER BATCH OPS REVERSER; do
  for budget in MOVES_PER_MINUTE MOVES_PER_SECOND READS_PER_MINUTE; do
    export "QUOTA_${role}_${budget}=100000000"
  done
done
export LOGIN_FAILURES_MAX=100000000 LOGIN_IP_FAILURES_MAX=100000000

private_stack_start
API=http://$GATEWAY_ADDR

token() {
  curl -sf "$API/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"username\":\"$1\",\"password\":\"$1-dev-password\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}

# One pass per role whose view differs: a customer covers every operation
# (the ops ones answer it 403); ops gets into the ops endpoints' handlers;
# the batch role into the money-moving ones with its own accounts and
# budget (batch lines).
fuzz() {
  local user=$1; shift
  echo "[fuzz] as $user: $EXAMPLES examples per operation, seed $SEED"
  # From .dev/: schemathesis keeps its cache of failures (replayed first
  # next time) in .schemathesis/ of the working directory. One worker:
  # reproducible with the seed, and CPython 3.11's ast module (which
  # hypothesis uses to describe its filters) fails spuriously now and then
  # when threads parse at once ("AST constructor recursion depth mismatch",
  # CPython issue 106905).
  (cd .dev && "../$VENV/bin/schemathesis" run "$API/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples "$EXAMPLES" --seed "$SEED" --workers 1 \
    --header "Authorization: Bearer $(token "$user")" \
    --generation-database none --no-color --output-truncate false \
    ${FUZZ_ARGS:-} "$@")
}

status=0
fuzz alice || status=1
fuzz ops --include-path-regex '^/v1/ops/' || status=1
fuzz batch || status=1
if [ $status != 0 ]; then
  echo "[fuzz] failed (seed $SEED); gateway log tail:" >&2
  tail -n 30 "$LOG_DIR/gateway.log" >&2 || true
  exit 1
fi
echo "[fuzz] no 5xx, every response as documented (seed $SEED)"
