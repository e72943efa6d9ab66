#!/usr/bin/env bash
# Refuses (exit 1) unless every secret file compose needs is present and
# non-empty in DIR (default deploy/secrets, or $SECRETS_DIR): `make
# deploy-prod` runs it first, so a production stack never starts half
# configured. Make them with `make setup` (deploy/scripts/gen-secrets.sh).
#
# usage: deploy/scripts/check-secrets.sh [DIR]
set -euo pipefail
dir="${1:-${SECRETS_DIR:-$(cd "$(dirname "$0")/.." && pwd)/secrets}}"
case "$dir" in /*) ;; *) dir="$(cd "$(dirname "$0")/.." && pwd)/$dir" ;; esac
missing=()
# The first seven are shared; the rest are the per-service credentials
# (gen-service-creds.sh).
names=(postgres_password database_url redis_password redis_users.acl redis_url jwt_secret grafana_admin_password
  pg_gateway_password pg_processor_password database_url_gateway database_url_processor
  redis_url_gateway redis_url_processor redis_url_notifier
  nats_passwords.conf nats_gateway_password nats_processor_password)
for name in "${names[@]}"; do
  [[ -s "$dir/$name" ]] || missing+=("$name")
done
if ((${#missing[@]})); then
  echo "check-secrets: missing or empty in $dir: ${missing[*]}" >&2
  echo "check-secrets: run \`make setup\` (deploy/scripts/gen-secrets.sh) first" >&2
  exit 1
fi
echo "check-secrets: all ${#names[@]} secret files present in $dir"
