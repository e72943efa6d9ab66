#!/usr/bin/env bash
# Per-service credentials (least privilege), run by gen-secrets.sh after it
# wrote the shared secrets. Each service gets its own PostgreSQL role, Redis
# ACL user and NATS user; the URLs are the operator's ones (database_url,
# redis_url: same host, scheme and parameters) with another user in them.
#
# usage: deploy/scripts/gen-service-creds.sh [--force] DIR
#
# Files (0644, like the others; the directory is 0700):
#   pg_gateway_password, pg_processor_password    set by `bankadmin migrate --roles`
#   database_url_gateway, database_url_processor  roles bank_gateway, bank_processor
#   redis_users.acl                               default off; admin, gateway, processor, notifier
#   redis_url_gateway, redis_url_processor, redis_url_notifier
#   nats_passwords.conf                           included by deploy/nats/users.conf
#   nats_gateway_password, nats_processor_password, nats_admin_password
set -euo pipefail

force=0
dir=""
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "gen-service-creds: unknown option $arg" >&2; exit 2 ;;
    *) dir="$arg" ;;
  esac
done
[[ -n "$dir" && -s "$dir/database_url" && -s "$dir/redis_url" && -s "$dir/redis_password" ]] \
  || { echo "gen-service-creds: run gen-secrets.sh first (needs database_url, redis_url, redis_password in DIR)" >&2; exit 2; }

rand_hex() {
  if command -v openssl >/dev/null 2>&1; then openssl rand -hex "$1"; else od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; fi
}
write() { # name content
  (umask 022; printf '%s\n' "$2" > "$dir/$1.tmp")
  chmod 0644 "$dir/$1.tmp"
  mv -f "$dir/$1.tmp" "$dir/$1"
}
password() { # name: kept unless --force
  if [[ -s "$dir/$1" && $force == 0 ]]; then head -n1 "$dir/$1"; else rand_hex 24; fi
}
with_user() { # url user password: the URL with its user:password replaced
  sed -E "s#^([a-z]+://)[^@/]*@#\\1$2:$3@#" <<<"$1"
}

db_url=$(head -n1 "$dir/database_url")
redis_url=$(head -n1 "$dir/redis_url")
redis_admin=$(head -n1 "$dir/redis_password")

# PostgreSQL: the grants are in admin/src/db_roles.sql.
for svc in gateway processor; do
  pw=$(password "pg_${svc}_password")
  write "pg_${svc}_password" "$pw"
  write "database_url_${svc}" "$(with_user "$db_url" "bank_${svc}" "$pw")"
done

# Redis: key patterns, channels and command categories per user (prefix
# `bank`, REDIS_PREFIX). `-@dangerous -@admin` last: no FLUSHALL, KEYS,
# CONFIG, DEBUG, CLIENT KILL… whatever the categories before allowed.
# Revocations (shared/src/revocation.rs): keys bank:revoked:sid:*,
# bank:revoked-before:user:*, the index bank:revocations:index (written in
# MULTI/EXEC by the gateway), announced on the channel bank:revocations.
common="-@all +@connection +@read"
safe="-@dangerous -@admin"
# Read by name below (${!rules}), which shellcheck cannot follow.
# shellcheck disable=SC2034
acl_gateway="resetkeys ~bank:rl:* ~bank:login:* ~bank:revoked* ~bank:revocations:* %R~bank:relayed:* resetchannels &bank:revocations $common +@write +@scripting +@transaction +time +publish +subscribe $safe"
# shellcheck disable=SC2034
acl_processor="resetkeys ~bank:epoch ~bank:seq ~bank:ev:* ~bank:relayed:* resetchannels &bank:feed &bank:events $common +@write +@scripting +time +publish $safe"
# shellcheck disable=SC2034
acl_notifier="resetkeys ~bank:epoch %R~bank:seq %R~bank:ev:* %R~bank:revoked* %R~bank:revocations:* resetchannels &bank:feed &bank:events &bank:revocations $common +set +subscribe +psubscribe +unsubscribe +punsubscribe $safe"
acl="user default off resetpass resetkeys resetchannels -@all
user admin on >${redis_admin} ~* &* +@all"
for svc in gateway processor notifier; do
  pw=$(password "redis_${svc}_password")
  write "redis_${svc}_password" "$pw"
  rules="acl_${svc}"
  acl+=$'\n'"user ${svc} on >${pw} ${!rules}"
  write "redis_url_${svc}" "$(with_user "$redis_url" "$svc" "$pw")"
done
write redis_users.acl "$acl"

# NATS: permissions in deploy/nats/users.conf, passwords here.
conf=""
for who in gateway processor admin; do
  pw=$(password "nats_${who}_password")
  write "nats_${who}_password" "$pw"
  conf+="${who^^}_NATS_PASSWORD: \"${pw}\""$'\n'
done
write nats_passwords.conf "${conf%$'\n'}"
echo "service credentials in $dir (PostgreSQL roles, Redis ACL users, NATS users)"
