#!/usr/bin/env bash
# Restores a backup made by backup.sh into a database with pg_restore.
#
# usage: deploy/scripts/restore.sh [--clean] FILE [DATABASE_URL]
#   FILE          a dump from backup.sh; FILE.sha256 is checked when present
#                 (set ALLOW_NO_CHECKSUM=1 to restore a dump without one)
#   DATABASE_URL  argument, or $DATABASE_URL, or the file named by
#                 $DATABASE_URL_FILE. The database must exist.
#   --clean       drop the objects of the dump first (restore over a damaged
#                 copy). Without it the target must hold no tables in `public`.
#   PG_RESTORE    the pg_restore command (default: pg_restore); with compose:
#                   PG_RESTORE="docker compose -f deploy/compose.yaml exec -T postgres pg_restore"
#   PSQL          the psql command used for the emptiness check (default: psql)
#
# Stop the gateway and processors first (docker compose stop gateway processor,
# or scale the Deployments to 0) so nothing writes during the restore; it runs
# in one transaction and either restores everything or nothing. Afterwards run
# `bankadmin check` to verify the ledger invariants.
set -euo pipefail

clean=0
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --clean) clean=1; shift ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "restore: unknown option $1" >&2; exit 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
file="${args[0]:-}"
url="${args[1]:-}"
[[ -n "$file" && -f "$file" ]] || { echo "restore: no backup file given or not found: '${file}'" >&2; exit 2; }
if [[ -z "$url" ]]; then
  if [[ -n "${DATABASE_URL_FILE:-}" ]]; then url="$(head -n1 "$DATABASE_URL_FILE")"; else url="${DATABASE_URL:-}"; fi
fi
[[ -n "$url" ]] || { echo "restore: no database: pass a URL or set DATABASE_URL / DATABASE_URL_FILE" >&2; exit 2; }

if [[ -f "$file.sha256" ]]; then
  (cd "$(dirname "$file")" && sha256sum --quiet -c "$(basename "$file").sha256") \
    || { echo "restore: checksum mismatch for $file" >&2; exit 1; }
  echo "restore: checksum ok"
elif [[ "${ALLOW_NO_CHECKSUM:-0}" != 1 ]]; then
  echo "restore: $file.sha256 missing (set ALLOW_NO_CHECKSUM=1 to restore anyway)" >&2
  exit 1
fi

read -r -a pg_restore <<< "${PG_RESTORE:-pg_restore}"
read -r -a psql <<< "${PSQL:-psql}"
redacted="$(printf '%s' "$url" | sed -E 's#(://[^:/@]+):[^@]*@#\1:***@#')"

if [[ $clean -eq 0 ]]; then
  tables="$("${psql[@]}" --dbname="$url" -XAtc "select count(*) from pg_tables where schemaname = 'public'")"
  if [[ "$tables" != 0 ]]; then
    echo "restore: $redacted already has $tables tables in public; use --clean to replace them" >&2
    exit 1
  fi
fi

echo "restore: $file -> $redacted"
opts=(--no-owner --no-privileges --single-transaction --exit-on-error)
[[ $clean -eq 1 ]] && opts+=(--clean --if-exists)
# The dump is fed on stdin so that PG_RESTORE may run inside a container.
"${pg_restore[@]}" "${opts[@]}" --dbname="$url" < "$file"
echo "restore: done; now run \`bankadmin check\` against the database"
