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

. scripts/private-stack.sh e2e "${E2E_PORT:-18080}"
# A person at the page: the default quotas (10 transfers/s, bursts of 20,
# 50 reads/s), set explicitly so a change of defaults shows up here.
export QUOTA_CUSTOMER_MOVES_PER_MINUTE=600 QUOTA_CUSTOMER_MOVES_PER_SECOND=20 \
  QUOTA_CUSTOMER_READS_PER_MINUTE=3000
private_stack_start
BASE_URL=http://$GATEWAY_ADDR node frontend/e2e/e2e.mjs || {
  echo "[e2e] failed; service logs follow" >&2
  tail -n 30 "$LOG_DIR"/*.log >&2 || true
  exit 1
}
