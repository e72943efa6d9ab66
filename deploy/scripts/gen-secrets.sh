#!/usr/bin/env bash
# Generates the compose secrets into deploy/secrets/ (git-ignored).
#
# usage: deploy/scripts/gen-secrets.sh [--force] [DIR]
#   DIR      where to write (default: deploy/secrets beside this script)
#   --force  replace existing files (rotates every secret: the PostgreSQL
#            password is only applied by initdb on an empty volume, so change
#            it in the database too: ALTER ROLE bank PASSWORD '...')
#
# Files: postgres_password, database_url, redis_password, redis_url (the
# operators' admin credentials), jwt_secret, grafana_admin_password, and the
# per-service ones of gen-service-creds.sh (redis_users.acl among them).
# Passwords are hex, so they need no escaping inside URLs. The directory is 0700 (only you on the host);
# the files are 0644 because Docker bind-mounts compose file secrets as they
# are and the containers run as non-root UIDs that must read them.
set -euo pipefail

force=0
dir=""
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "gen-secrets: unknown option $arg" >&2; exit 2 ;;
    *) dir="$arg" ;;
  esac
done
dir="${dir:-$(cd "$(dirname "$0")/.." && pwd)/secrets}"

rand_hex() { # bytes
  if command -v openssl >/dev/null 2>&1; then
    openssl rand -hex "$1"
  else
    od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
  fi
}

mkdir -p "$dir"
chmod 0700 "$dir"

write() { # name content
  local path="$dir/$1"
  if [[ -e "$path" && $force -eq 0 ]]; then
    echo "kept      $path"
    return
  fi
  (umask 022; printf '%s\n' "$2" > "$path.tmp")
  chmod 0644 "$path.tmp"
  mv -f "$path.tmp" "$path"
  echo "generated $path"
}

read_or() { # name default: existing value (when kept) or the default
  if [[ -e "$dir/$1" && $force -eq 0 ]]; then head -n1 "$dir/$1"; else printf '%s' "$2"; fi
}

pg_password=$(read_or postgres_password "$(rand_hex 24)")
redis_password=$(read_or redis_password "$(rand_hex 24)")

write postgres_password "$pg_password"
write database_url "postgres://bank:${pg_password}@postgres:5432/bank"
write redis_password "$redis_password"
write redis_url "redis://admin:${redis_password}@redis:6379"
write jwt_secret "$(rand_hex 32)"
write grafana_admin_password "$(rand_hex 16)"

# A PostgreSQL role, Redis ACL user and NATS user per service (and redis_users.acl).
creds_args=("$dir"); [[ $force == 1 ]] && creds_args=(--force "$dir")
"$(dirname "$0")/gen-service-creds.sh" "${creds_args[@]}"

# TLS between the services and at the edge (production): a CA and certificates.
certs_args=("$dir"); [[ $force == 1 ]] && certs_args+=(--force)
"$(dirname "$0")/gen-certs.sh" "${certs_args[@]}"

echo "secrets in $dir (deploy/secrets/.gitignore keeps them out of git)"
