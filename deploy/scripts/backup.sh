#!/usr/bin/env bash
# Backs up the ledger database with pg_dump (custom format) and writes a
# SHA-256 checksum beside it.
#
# usage: deploy/scripts/backup.sh [-o FILE] [DATABASE_URL]
#   DATABASE_URL  argument, or $DATABASE_URL, or the file named by
#                 $DATABASE_URL_FILE (e.g. deploy/secrets/database_url)
#   -o FILE       output (default: ./backups/bank-<UTC timestamp>.dump)
#   PG_DUMP       the pg_dump command (default: pg_dump). With compose, where
#                 PostgreSQL is not published, run it inside the container:
#                   PG_DUMP="docker compose -f deploy/compose.yaml exec -T postgres pg_dump" \
#                   deploy/scripts/backup.sh 'postgresql:///bank?host=/var/run/postgresql&user=bank'
#
# Writes FILE and FILE.sha256 (`sha256sum -c FILE.sha256` verifies it).
# The dump is consistent (one snapshot) while the services keep running.
#
# JetStream is not in this dump: commands still queued in BANK_TRANSFERS were
# not applied yet and are re-applied idempotently (transfer id = primary key)
# after a restore as long as the stream survives. To keep the queue too, back
# up the NATS volume or run `nats stream backup BANK_TRANSFERS <dir>` at the
# same time; see deploy/README.md "Backup and restore".
set -euo pipefail

out=""
url=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    -o) out="${2:?-o needs a file}"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "backup: unknown option $1" >&2; exit 2 ;;
    *) url="$1"; shift ;;
  esac
done

if [[ -z "$url" ]]; then
  if [[ -n "${DATABASE_URL_FILE:-}" ]]; then
    url="$(head -n1 "$DATABASE_URL_FILE")"
  else
    url="${DATABASE_URL:-}"
  fi
fi
[[ -n "$url" ]] || { echo "backup: no database: pass a URL or set DATABASE_URL / DATABASE_URL_FILE" >&2; exit 2; }

out="${out:-backups/bank-$(date -u +%Y%m%dT%H%M%SZ).dump}"
mkdir -p "$(dirname "$out")"
read -r -a pg_dump <<< "${PG_DUMP:-pg_dump}"
redacted="$(printf '%s' "$url" | sed -E 's#(://[^:/@]+):[^@]*@#\1:***@#')"

echo "backup: $redacted -> $out"
umask 077
# Written to a temporary name first: a failed dump never looks like a backup.
"${pg_dump[@]}" --format=custom --compress=6 --no-owner --no-privileges \
  --dbname="$url" > "$out.partial"
mv -f "$out.partial" "$out"
(cd "$(dirname "$out")" && sha256sum "$(basename "$out")" > "$(basename "$out").sha256")
echo "backup: $(wc -c < "$out") bytes, sha256 $(cut -d' ' -f1 "$out.sha256")"
