#!/usr/bin/env bash
# The trace path without containers: the debug gateway, processor and
# notifier export OTLP/gRPC straight to a Phoenix already running on this
# host; one transfer goes through; its trace id comes from the ops
# timeline; find-trace.sh must find spans of all three services in that one
# trace; trace-screenshot.sh saves the UI's view of it.
#
# usage: deploy/traces/host-demo.sh        (after `cargo build -p gateway
#        -p processor -p notifier -p admin --bins`)
#   PHOENIX_URL   default http://127.0.0.1:6006 (UI/API)
#   OTLP          default http://127.0.0.1:4317 (Phoenix's gRPC port)
#   PNG           default docs/screenshots/trace.png
#   PROM_IMAGE    e.g. prom/prometheus:v3.5.0 (the stand-in): also run it on
#                 the host network, scraping the three services with
#                 deploy/prometheus/alerts.yml loaded, and run prom-check.sh
# Start Phoenix first, e.g. python3 -m venv /tmp/phoenix/venv &&
#   /tmp/phoenix/venv/bin/pip install arize-phoenix==20.26.1 &&
#   PHOENIX_WORKING_DIR=/tmp/phoenix/work /tmp/phoenix/venv/bin/phoenix serve
#
# Uses its own database (bank_traces_demo, recreated), NATS prefix and Redis
# prefix, and ports 18080-18082, so it disturbs nothing else on the machine.
set -euo pipefail
cd "$(dirname "$0")/../.."

PHOENIX_URL="${PHOENIX_URL:-http://127.0.0.1:6006}"
OTLP="${OTLP:-http://127.0.0.1:4317}"
PNG="${PNG:-docs/screenshots/trace.png}"
DB=bank_traces_demo
export BIN="${BIN:-${CARGO_TARGET_DIR:-target}/debug}"
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB"
export NATS_PREFIX=traces_demo REDIS_PREFIX=traces_demo
export GATEWAY_ADDR=127.0.0.1:18080 NOTIFIER_ADDR=127.0.0.1:18081 PROCESSOR_ADDR=127.0.0.1:18082
export WEB_DIR=/nonexistent LOG_DIR="${LOG_DIR:-/tmp/bank-traces-demo}"
export OTEL_EXPORTER_OTLP_ENDPOINT="$OTLP" OTEL_EXPORTER_OTLP_PROTOCOL=grpc
# Export within a fifth of a second, not the default five: the test waits.
export OTEL_BSP_SCHEDULE_DELAY=200
API="http://$GATEWAY_ADDR"

curl -fsS -m 5 "$PHOENIX_URL/healthz" >/dev/null \
  || { echo "host-demo: no Phoenix at $PHOENIX_URL" >&2; exit 1; }
psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" \
  -c "CREATE DATABASE $DB" postgres

pidfile=$(mktemp)
STACK_PIDFILE="$pidfile" scripts/stack.sh --background
# shellcheck disable=SC2046 # one pid per line
trap 'kill -TERM $(cat "$pidfile") 2>/dev/null || true; rm -f "$pidfile"' EXIT

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
token() {
  curl -fsS "$API/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"username\":\"$1\",\"password\":\"$1-dev-password\"}" | json '["access_token"]'
}
alice=$(token alice)
ops=$(token ops)
# Alice's WebSocket, open while the transfer runs: the notifier's "websocket
# push" span exists only when there is someone to push to. A bare RFC 6455
# handshake in Python's standard library; it says "ready" once upgraded and
# ends when a frame naming a committed transfer has come (or after 60 s).
ws_ready=$(mktemp)
python3 - "$NOTIFIER_ADDR" "$alice" "$ws_ready" <<'PY' &
import base64, os, socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=60)
key = base64.b64encode(os.urandom(16)).decode()
s.sendall((f"GET /v1/ws?access_token={sys.argv[2]} HTTP/1.1\r\nHost: {sys.argv[1]}\r\n"
           f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
seen = s.recv(65536)
assert seen.startswith(b"HTTP/1.1 101"), "no WebSocket upgrade"
open(sys.argv[3], "w").write("ready")
end = time.monotonic() + 60
while b'"committed"' not in seen and time.monotonic() < end:
    chunk = s.recv(65536)
    if not chunk:
        break
    seen += chunk
sys.exit(0 if b'"committed"' in seen else 1)
PY
ws_pid=$!
for _ in $(seq 1 100); do [[ -s "$ws_ready" ]] && break; sleep 0.1; done
[[ -s "$ws_ready" ]] || { echo "host-demo: the WebSocket did not open" >&2; exit 1; }
id=$(curl -fsS "$API/v1/transfers" -H "authorization: Bearer $alice" \
  -H 'content-type: application/json' -H "Idempotency-Key: traces-demo-$(date +%s%N)" \
  -d '{"from_account":"a11ce000-0000-4000-8000-000000000001","to_account":"b0b00000-0000-4000-8000-000000000001","amount":"1.00","currency":"EUR"}' \
  | json '["id"]')
echo "transfer $id"

# The timeline has all five stages once the notifier has pushed the commit.
trace=""
for _ in $(seq 1 60); do
  timeline=$(curl -fsS "$API/v1/ops/transfers/$id/timeline" -H "authorization: Bearer $ops" || true)
  if [[ -n "$timeline" ]] && [[ $(json '["stages"].__len__()' <<<"$timeline") == 5 ]]; then
    trace=$(json '["trace_id"]' <<<"$timeline")
    break
  fi
  sleep 0.5
done
[[ -n "$trace" && "$trace" != None ]] || { echo "host-demo: no complete timeline for $id" >&2; exit 1; }
echo "timeline trace_id $trace"

wait "$ws_pid" || { echo "host-demo: no committed event on the WebSocket" >&2; exit 1; }
rm -f "$ws_ready"
echo "committed event received on the WebSocket"
deploy/scripts/find-trace.sh "$trace" "$PHOENIX_URL"
deploy/scripts/trace-screenshot.sh "$trace" "$PHOENIX_URL" "$PNG"

[[ -n "${PROM_IMAGE:-}" ]] || exit 0
# The same image and rules as compose; only the targets differ (loopback
# ports here, Docker DNS names there).
prom_port=19090
cfg=$(mktemp -d)
cat >"$cfg/prometheus.yml" <<YML
global: {scrape_interval: 5s, evaluation_interval: 5s}
rule_files: [/etc/prometheus/alerts.yml]
scrape_configs:
  - {job_name: gateway, static_configs: [{targets: ["$GATEWAY_ADDR"]}]}
  - {job_name: processor, static_configs: [{targets: ["$PROCESSOR_ADDR"]}]}
  - {job_name: notifier, static_configs: [{targets: ["$NOTIFIER_ADDR"]}]}
  - {job_name: prometheus, static_configs: [{targets: ["127.0.0.1:$prom_port"]}]}
YML
chmod 0755 "$cfg" && chmod 0644 "$cfg/prometheus.yml"
prom=$(docker run -d --rm --network host --read-only --user 65534:65534 \
  --cap-drop ALL --security-opt no-new-privileges:true --tmpfs /prometheus:uid=65534 \
  -v "$cfg/prometheus.yml:/etc/prometheus/prometheus.yml:ro" \
  -v "$PWD/deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" \
  "$PROM_IMAGE" --config.file=/etc/prometheus/prometheus.yml \
  --storage.tsdb.path=/prometheus --web.listen-address="127.0.0.1:$prom_port")
# shellcheck disable=SC2046 # one pid per line
trap 'docker rm -f "$prom" >/dev/null 2>&1; rm -rf "$cfg"; kill -TERM $(cat "$pidfile") 2>/dev/null || true; rm -f "$pidfile"' EXIT
deploy/scripts/prom-check.sh "http://127.0.0.1:$prom_port"
