#!/usr/bin/env bash
# Finds one trace in the trace backend by its id (the `trace_id` of
# GET /v1/ops/transfers/{id}/timeline) and prints its spans in start order:
# service, span name, span id, parent id. The backend is Arize Phoenix
# (deploy/traces/README.md says why): its REST API
# GET /v1/projects/{project}/spans?trace_id=… answers with the stored spans.
#
# usage: deploy/scripts/find-trace.sh TRACE_ID [PHOENIX_URL]   (default http://127.0.0.1:6006)
#   PHOENIX_PROJECT=name   the Phoenix project (default "default": spans
#                          without openinference.project.name land there)
#   EXPECT_SERVICES="…"    services that must each have a span in the trace
#                          (default "gateway processor notifier"; "" = any)
#   WAIT_S=N               keep asking for up to N seconds (default 30): the
#                          services export in batches, seconds after the work
#
# Needs python3 (standard library only). Exit 0 = found with every expected
# service, 1 = not found (or a service missing), 2 = usage.
set -euo pipefail

if [[ $# -lt 1 || ! "$1" =~ ^[0-9a-fA-F]{32}$ ]]; then
  echo "usage: $0 TRACE_ID(32 hex digits) [PHOENIX_URL]" >&2
  exit 2
fi
export TRACE_ID="${1,,}"
URL="${2:-${PHOENIX_URL:-http://127.0.0.1:6006}}"
export URL="${URL%/}"
export PHOENIX_PROJECT="${PHOENIX_PROJECT:-default}"
export EXPECT_SERVICES="${EXPECT_SERVICES-gateway processor notifier}"
export WAIT_S="${WAIT_S:-30}"

exec python3 - <<'PY'
import json, os, sys, time, urllib.error, urllib.parse, urllib.request

TRACE_ID, URL = os.environ["TRACE_ID"], os.environ["URL"]
PROJECT = os.environ["PHOENIX_PROJECT"]
EXPECT = set(os.environ["EXPECT_SERVICES"].split())
WAIT_S = float(os.environ["WAIT_S"])
RETRY_S = 1.0
# Phoenix's page size ceiling; one transfer's trace has about ten spans.
PAGE = 1000


def attr(attrs, dotted):
    """Phoenix returns attributes flat ("service.name") or nested."""
    if dotted in attrs:
        return attrs[dotted]
    node = attrs
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def spans():
    out, cursor = [], None
    while True:
        params = [("trace_id", TRACE_ID), ("limit", PAGE), ("sort", "start_time"), ("order", "asc")]
        if cursor:
            params.append(("cursor", cursor))
        url = f"{URL}/v1/projects/{urllib.parse.quote(PROJECT)}/spans?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        out.extend(body.get("data", []))
        cursor = body.get("next_cursor")
        if not cursor:
            return out


deadline = time.monotonic() + WAIT_S
found, error = [], None
while True:
    try:
        found, error = spans(), None
    except (urllib.error.URLError, OSError, ValueError) as e:
        found, error = [], e
    services = {attr(s.get("attributes", {}), "service.name") for s in found}
    if found and EXPECT <= services:
        break
    if time.monotonic() >= deadline:
        break
    time.sleep(RETRY_S)

if error is not None:
    print(f"find-trace: {URL}: {error}", file=sys.stderr)
    sys.exit(1)
if not found:
    print(f"find-trace: trace {TRACE_ID} not found in project {PROJECT!r} at {URL}", file=sys.stderr)
    sys.exit(1)
for s in found:
    svc = attr(s.get("attributes", {}), "service.name") or "?"
    ctx = s.get("context", {})
    print(f"{svc:<10} {s['name']:<36} span={ctx.get('span_id', '?')} parent={s.get('parent_id') or '-'}")
missing = EXPECT - services
if missing:
    print(f"find-trace: trace {TRACE_ID} has no span from: {' '.join(sorted(missing))}", file=sys.stderr)
    sys.exit(1)
print(f"trace {TRACE_ID}: {len(found)} spans from {', '.join(sorted(s for s in services if s))}")
PY
