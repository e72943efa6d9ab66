#!/usr/bin/env bash
# Checks a running Prometheus the way an operator would trust it: every
# scrape target is up (and each expected job has one), the alert rules from
# deploy/prometheus/alerts.yml are loaded and healthy, and the transfer
# counters answer a query. Prints the number of committed transfers
# Prometheus has seen (sum of processor_transfers_total{outcome="committed"}
# over every processor replica) as the last line.
#
# usage: deploy/scripts/prom-check.sh [PROMETHEUS_URL]   (default http://127.0.0.1:9090)
#   MIN_COMMITTED=N   fail unless at least N committed transfers are counted (default 1)
#   EXPECT_JOBS="…"   jobs that must have at least one target up
#                     (default "gateway processor notifier prometheus")
#   WAIT_S=N          keep asking for up to N seconds before failing (default 60):
#                     targets appear one DNS refresh and one scrape after start
#
# Needs curl and python3 (JSON parsing). Exit 0 = all good, 1 = a check failed.
set -euo pipefail

PROM="${1:-${PROMETHEUS_URL:-http://127.0.0.1:9090}}"
PROM="${PROM%/}"
export PROM
export MIN_COMMITTED="${MIN_COMMITTED:-1}"
export EXPECT_JOBS="${EXPECT_JOBS:-gateway processor notifier prometheus}"
export WAIT_S="${WAIT_S:-60}"

exec python3 - <<'PY'
import json, os, sys, time, urllib.parse, urllib.request

PROM = os.environ["PROM"]
MIN_COMMITTED = float(os.environ["MIN_COMMITTED"])
EXPECT_JOBS = os.environ["EXPECT_JOBS"].split()
WAIT_S = float(os.environ["WAIT_S"])
# One round of checks every RETRY_S seconds: the scrape interval is 5 s.
RETRY_S = 2.0
COMMITTED = 'sum(processor_transfers_total{outcome="committed"})'


def get(path, **params):
    url = PROM + path + ("?" + urllib.parse.urlencode(params) if params else "")
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(f"{path}: {body}")
    return body["data"]


def check():
    """Returns (problems, report lines, committed count)."""
    problems, lines = [], []
    targets = get("/api/v1/targets", state="active")["activeTargets"]
    up_jobs = set()
    for t in sorted(targets, key=lambda t: (t["labels"].get("job", ""), t["labels"].get("instance", ""))):
        job, inst, health = t["labels"].get("job"), t["labels"].get("instance"), t["health"]
        lines.append(f"target {job:<15} {inst:<28} {health}")
        if health == "up":
            up_jobs.add(job)
        else:
            problems.append(f"target {job} {inst} is {health}: {t.get('lastError', '')}")
    for job in EXPECT_JOBS:
        if job not in up_jobs:
            problems.append(f"job {job} has no target up")
    groups = get("/api/v1/rules")["groups"]
    rules = [(g["name"], r) for g in groups for r in g["rules"]]
    for group, r in rules:
        lines.append(f"rule   {group}/{r['name']:<25} {r.get('health')} {r.get('state', '')}")
        if r.get("health") not in ("ok", "unknown"):
            problems.append(f"rule {r['name']}: {r.get('lastError')}")
    if not rules:
        problems.append("no alert rules loaded (rule_files)")
    result = get("/api/v1/query", query=COMMITTED)["result"]
    committed = float(result[0]["value"][1]) if result else 0.0
    by_outcome = get("/api/v1/query", query="sum by (outcome) (processor_transfers_total)")["result"]
    for s in by_outcome:
        lines.append(f"counter processor_transfers_total{{outcome=\"{s['metric'].get('outcome')}\"}} {s['value'][1]}")
    if committed < MIN_COMMITTED:
        problems.append(f"{COMMITTED} = {committed:g}, expected >= {MIN_COMMITTED:g}")
    return problems, lines, committed


deadline = time.monotonic() + WAIT_S
while True:
    try:
        problems, lines, committed = check()
    except Exception as e:  # not ready yet, or not Prometheus at all
        problems, lines, committed = [f"{PROM}: {e}"], [], 0.0
    if not problems or time.monotonic() >= deadline:
        break
    time.sleep(RETRY_S)

for line in lines:
    print(line)
for p in problems:
    print(f"FAIL {p}", file=sys.stderr)
if problems:
    sys.exit(1)
print(f"committed transfers: {committed:g}")
PY
