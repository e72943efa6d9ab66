#!/usr/bin/env bash
# Saves a PNG of one trace as the trace backend's UI shows it: Debian's
# Chromium, headless, opens Phoenix's /redirects/traces/<trace id> (which
# lands on the trace's span tree) and takes a screenshot once the page's
# scripts have had their time. A fresh profile each run, no background
# networking: the picture depends on the backend only.
#
# usage: deploy/scripts/trace-screenshot.sh TRACE_ID [PHOENIX_URL] [PNG]
#   PHOENIX_URL  default http://127.0.0.1:6006
#   PNG          default docs/screenshots/trace.png
#   CHROMIUM     default chromium (Debian package `chromium`)
#   WINDOW       default 1600,1000;  RENDER_MS: time for the page, default 40000
#
# Exit 0 = a PNG of a rendered page was written. An empty dark page (the UI's
# scripts not done yet: about 7 kB) is retried once with twice the time.
set -euo pipefail

if [[ $# -lt 1 || ! "$1" =~ ^[0-9a-fA-F]{32}$ ]]; then
  echo "usage: $0 TRACE_ID(32 hex digits) [PHOENIX_URL] [PNG]" >&2
  exit 2
fi
trace="${1,,}"
url="${2:-${PHOENIX_URL:-http://127.0.0.1:6006}}"
url="${url%/}"
png="${3:-docs/screenshots/trace.png}"
CHROMIUM="${CHROMIUM:-chromium}"
WINDOW="${WINDOW:-1600,1000}"
# Virtual time: Chromium fast-forwards timers, so this costs less wall time
# than it says, but the page's data requests must have been answered; 15 s
# was too little for Phoenix's UI on a loaded two-core machine.
RENDER_MS="${RENDER_MS:-40000}"
# Below this the page is Phoenix's empty background; the trace view with its
# span tree is well over 100 kB.
MIN_PNG_BYTES=20000

command -v "$CHROMIUM" >/dev/null 2>&1 \
  || { echo "trace-screenshot: no $CHROMIUM (apt-get install --no-install-recommends chromium)" >&2; exit 1; }
profile=$(mktemp -d /tmp/bank-chromium.XXXXXX)
trap 'rm -rf "$profile"' EXIT
mkdir -p "$(dirname "$png")"
rm -f "$png"
out="$(cd "$(dirname "$png")" && pwd)/$(basename "$png")"

shoot() { # budget_ms
  rm -f "$out"
  # --no-sandbox: runs as root in CI; the page is our own backend's.
  timeout 180 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic \
    --no-first-run --disable-background-networking --disable-component-update \
    --disable-sync --disable-dev-shm-usage --hide-scrollbars \
    --user-data-dir="$profile" --window-size="$WINDOW" \
    --virtual-time-budget="$1" --screenshot="$out" \
    "$url/redirects/traces/$trace" >"$profile/chromium.log" 2>&1 || true
  [[ -s "$out" && $(stat -c %s "$out") -ge $MIN_PNG_BYTES ]]
}

if ! shoot "$RENDER_MS" && ! shoot $((RENDER_MS * 2)); then
  if [[ -s "$out" ]]; then
    echo "trace-screenshot: the page did not render ($(stat -c %s "$out") bytes)" >&2
  else
    echo "trace-screenshot: no screenshot written; chromium said:" >&2
    tail -n 20 "$profile/chromium.log" >&2
  fi
  exit 1
fi
echo "trace-screenshot: $out ($(stat -c %s "$out") bytes) for trace $trace"
