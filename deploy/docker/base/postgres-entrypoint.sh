#!/bin/sh
# The stand-in PostgreSQL image's entrypoint (postgres.Dockerfile): on an
# empty data directory, initdb with the official image's variables, then run
# the command (default `postgres`). Runs as the image's user 70.
set -eu
case "${1:-postgres}" in -*) set -- postgres "$@" ;; esac
if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  user="${POSTGRES_USER:-postgres}"
  db="${POSTGRES_DB:-$user}"
  if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    password=$(cat "$POSTGRES_PASSWORD_FILE")
  else
    password="${POSTGRES_PASSWORD:-}"
  fi
  if [ -z "$password" ]; then
    echo "entrypoint: POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE is required" >&2
    exit 1
  fi
  pwfile=$(mktemp)
  printf '%s\n' "$password" > "$pwfile"
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of options
  initdb -D "$PGDATA" --username="$user" --pwfile="$pwfile" --auth-local=trust ${POSTGRES_INITDB_ARGS:-}
  rm -f "$pwfile"
  echo "host all all all ${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" >> "$PGDATA/pg_hba.conf"
  echo "listen_addresses = '*'" >> "$PGDATA/postgresql.auto.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
  if [ "$db" != postgres ]; then
    psql -v ON_ERROR_STOP=1 -U "$user" -d postgres -c "CREATE DATABASE \"$db\""
  fi
  pg_ctl -D "$PGDATA" -m fast -w stop
  echo "entrypoint: initialised $PGDATA (user $user, database $db)"
fi
exec "$@"
