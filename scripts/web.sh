#!/usr/bin/env bash
# Builds or tests the web page (frontend/), installing Node.js and the npm
# packages when missing.   scripts/web.sh build | test
set -euo pipefail
cd "$(dirname "$0")/../frontend"
if ! command -v npm >/dev/null; then
  echo "[web] installing Node.js (Debian packages)"
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
case "${1:-build}" in
  build) npm run build --silent ;;
  test) npm test --silent ;;
  *) echo "usage: $0 build|test" >&2; exit 2 ;;
esac
