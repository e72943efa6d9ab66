#!/usr/bin/env bash
# Round-trip test of backup.sh / restore.sh against a real PostgreSQL.
#
# usage: deploy/scripts/test-backup-restore.sh [ADMIN_URL]
#   ADMIN_URL  a superuser URL on the server to use
#              (default: $TEST_DATABASE_URL or postgres://postgres@127.0.0.1:5432/postgres)
#
# Creates a scratch database, loads the real schema (migrations/*.sql) and a
# small consistent ledger plus 10 000 rows of filler, backs it up, drops the
# database, restores into a fresh one and compares a fingerprint of every
# table; then checks the ledger invariants (money is conserved, balances equal
# the sum of their entries), that new entries still get fresh ids, that a
# tampered dump is refused, that a non-empty target is refused without
# --clean, and that --clean restores over it. Leaves nothing behind.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
admin="${1:-${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}}"
db="bank_backup_test_$$_$(date +%s)"
url="${admin%/*}/$db"
work="$(mktemp -d)"
psql_admin=(psql -XAtq -v ON_ERROR_STOP=1 --dbname="$admin")
psql_db=(psql -XAtq -v ON_ERROR_STOP=1 --dbname="$url")
failures=0
passes=0

cleanup() {
  "${psql_admin[@]}" -c "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

check() { # name condition-result
  if [[ "$2" == ok ]]; then echo "ok   - $1"; passes=$((passes + 1)); else echo "FAIL - $1 ($2)"; failures=$((failures + 1)); fi
}

fingerprint() {
  # One md5 per table over its rows in primary-key order.
  "${psql_db[@]}" <<'SQL'
select 'users '     || md5(string_agg(u::text, '|' order by id)) from users u;
select 'accounts '  || md5(string_agg(a::text, '|' order by id)) from accounts a;
select 'transfers ' || md5(string_agg(t::text, '|' order by id)) from transfers t;
select 'entries '   || md5(string_agg(e::text, '|' order by id)) from entries e;
select 'filler '    || md5(string_agg(f::text, '|' order by id)) || ' ' || count(*) from filler f;
SQL
}

holds() { # prints ok, or the first violations
  local v; v="$(invariants)"
  if [[ -z "$v" ]]; then echo ok; else printf '%s' "$v" | head -3 | tr '\n' ';'; fi
}

invariants() {
  # Prints one line per violation; nothing when the ledger holds.
  "${psql_db[@]}" <<'SQL'
select 'not conserved ' || currency || ' ' || sum(balance) from accounts group by currency having sum(balance) <> 0;
select 'balance <> entries ' || a.id from accounts a
  left join entries e on e.account_id = a.id
  group by a.id, a.balance having a.balance <> coalesce(sum(e.amount), 0);
select 'transfer entries do not sum to zero ' || transfer_id from entries group by transfer_id having sum(amount) <> 0;
select 'below overdraft ' || id from accounts where balance < -overdraft_limit;
SQL
}

echo "# scratch database $db"
"${psql_admin[@]}" -c "create database \"$db\""
for m in "$repo"/migrations/*.sql; do "${psql_db[@]}" -f "$m"; done
"${psql_db[@]}" <<'SQL'
insert into users (id, username, password_hash, role) values
  ('00000000-0000-0000-0000-000000000001', 'system', 'x', 'system'),
  ('00000000-0000-0000-0000-00000000000a', 'alice',  'x', 'customer'),
  ('00000000-0000-0000-0000-00000000000b', 'bob',    'x', 'customer');
insert into accounts (id, owner_id, currency, balance, overdraft_limit, version, kind) values
  ('10000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001', 'EUR', -1000, 1000000000, 1, 'funding'),
  ('10000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-00000000000a', 'EUR',   750, 0, 2, 'customer'),
  ('10000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-00000000000b', 'EUR',   250, 0, 1, 'customer');
insert into transfers (id, owner_id, idempotency_key, fingerprint, from_account, to_account, amount, currency, status, reason, created_at) values
  ('20000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001', 'fund-alice', sha256('a'), '10000000-0000-0000-0000-000000000001', '10000000-0000-0000-0000-00000000000a', 1000, 'EUR', 'committed', null, now()),
  ('20000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-00000000000a', 'rent',       sha256('b'), '10000000-0000-0000-0000-00000000000a', '10000000-0000-0000-0000-00000000000b',  250, 'EUR', 'committed', null, now()),
  ('20000000-0000-0000-0000-000000000003', '00000000-0000-0000-0000-00000000000b', 'too-much',   sha256('c'), '10000000-0000-0000-0000-00000000000b', '10000000-0000-0000-0000-00000000000a', 9999, 'EUR', 'rejected', 'insufficient_funds', now());
insert into entries (transfer_id, account_id, amount, balance_after) values
  ('20000000-0000-0000-0000-000000000001', '10000000-0000-0000-0000-000000000001', -1000, -1000),
  ('20000000-0000-0000-0000-000000000001', '10000000-0000-0000-0000-00000000000a',  1000,  1000),
  ('20000000-0000-0000-0000-000000000002', '10000000-0000-0000-0000-00000000000a',  -250,   750),
  ('20000000-0000-0000-0000-000000000002', '10000000-0000-0000-0000-00000000000b',   250,   250);
create table filler (id int primary key, payload text not null);
insert into filler select g, md5(g::text) from generate_series(1, 10000) g;
SQL

before="$(fingerprint)"
check "ledger invariants hold before the backup" "$(holds)"

dump="$work/bank.dump"
"$here/backup.sh" -o "$dump" "$url"
check "backup file and checksum written" "$([[ -s "$dump" && -s "$dump.sha256" ]] && echo ok || echo missing)"

"${psql_admin[@]}" -c "drop database \"$db\" with (force)"
"${psql_admin[@]}" -c "create database \"$db\""
"$here/restore.sh" "$dump" "$url"

after="$(fingerprint)"
check "every table identical after restore" "$([[ "$before" == "$after" ]] && echo ok || echo "before=[$before] after=[$after]")"
check "ledger invariants hold after restore" "$(holds)"

next_id="$("${psql_db[@]}" -c "insert into entries (transfer_id, account_id, amount, balance_after) values ('20000000-0000-0000-0000-000000000009', '10000000-0000-0000-0000-00000000000b', 1, 251) returning id")"
check "identity sequence restored (next entry id 5)" "$([[ "$next_id" == 5 ]] && echo ok || echo "got $next_id")"
append_only="$("${psql_db[@]}" -c "delete from entries" 2>&1 || true)"
check "append-only triggers restored" "$([[ "$append_only" == *append-only* ]] && echo ok || echo "delete was not refused: $append_only")"

if "$here/restore.sh" "$dump" "$url" >/dev/null 2>&1; then r=accepted; else r=ok; fi
check "restore into a non-empty database refused without --clean" "$r"

"$here/restore.sh" --clean "$dump" "$url" >/dev/null
check "restore --clean over the database gives the backed-up state" "$([[ "$(fingerprint)" == "$before" ]] && echo ok || echo differs)"

cp "$dump" "$work/tampered.dump"; cp "$dump.sha256" "$work/tampered.dump.sha256"
sed -i "s/bank.dump/tampered.dump/" "$work/tampered.dump.sha256"
printf 'x' >> "$work/tampered.dump"
if "$here/restore.sh" --clean "$work/tampered.dump" "$url" >/dev/null 2>&1; then r=accepted; else r=ok; fi
check "tampered dump refused by the checksum" "$r"

echo "backup-restore: $passes passed, $failures failed"
[[ $failures -eq 0 ]]
