# shellcheck shell=bash disable=SC2154  # dc, check, SECRETS_DIR...: set by deploy-test.sh
# Sourced by deploy-test.sh (after the transfer through the edge, which ran
# with these users): least privilege between the services, live. Uses its
# check(), dc(), ip_of() and SECRETS_DIR. Each refusal is printed as the
# server wrote it, next to an allowed call of the same user (so a refusal is
# the permission, not a wrong password).
#   NATS        the gateway's user cannot subscribe to the command subjects,
#               create a consumer on the command stream or read the
#               processor's inbox
#   PostgreSQL  the gateway's role cannot INSERT INTO entries or run DDL;
#               the processor's cannot read users
#   Redis       the notifier's user cannot write the event feed (NOPERM);
#               the default user is off

say "least privilege between the services (NATS users, PostgreSQL roles, Redis ACL users)"

# --- NATS: a raw protocol client from the host to the internal address.
nats_ip=$(ip_of nats)
nats_probe() { # user password command... : what the server answered
  python3 - "$nats_ip" "$1" "$2" "${@:3}" <<'PY'
import json, socket, sys
host, user, password, commands = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
s = socket.create_connection((host, 4222), timeout=5)
s.recv(4096)  # INFO
hello = {"user": user, "pass": password, "verbose": False, "pedantic": False, "headers": True}
s.settimeout(2)
out = b""
try:
    # One write: a refused user is disconnected at once, and a later
    # write would fail before its -ERR is read.
    lines = ["CONNECT " + json.dumps(hello)] + commands + ["PING"]
    s.sendall("".join(l + "\r\n" for l in lines).encode())
    while b"PONG" not in out or out.count(b"MSG") < sum(c.startswith("PUB") and "_INBOX" in c for c in commands):
        d = s.recv(65536)
        if not d:
            break
        out += d
except (socket.timeout, OSError):
    pass
print(out.decode(errors="replace").replace("\r", ""))
PY
  true
}
# (deploy-test runs with set -e: every probe below prints, none may exit)
gw_nats=$(cat "$SECRETS_DIR/nats_gateway_password")
out=$(nats_probe gateway "$gw_nats" "SUB bank.transfers.cmd.> 1")
echo "$out" | grep -m1 -- '-ERR' | sed 's/^/  nats gateway SUB bank.transfers.cmd.>: /' || true
check "NATS: the gateway's user cannot subscribe to the command subjects" \
  "$(grep -q "Permissions Violation for Subscription to \"bank.transfers.cmd.>\"" <<<"$out" && echo ok || echo "$out")"
out=$(nats_probe gateway "$gw_nats" "SUB _INBOX_gateway.probe 1" \
  'PUB $JS.API.CONSUMER.CREATE.BANK_TRANSFERS.probe _INBOX_gateway.probe 2' '{}' \
  'PUB $JS.API.CONSUMER.DURABLE.CREATE.BANK_TRANSFERS.processor _INBOX_gateway.probe 2' '{}')
echo "$out" | grep -- '-ERR' | sed 's/^/  nats gateway consumer create: /' || true
check "NATS: the gateway's user cannot create a consumer on the command stream" \
  "$([[ $(grep -c 'Permissions Violation for Publish to "$JS.API.CONSUMER.' <<<"$out") == 2 ]] && echo ok || echo "$out")"
out=$(nats_probe gateway "$gw_nats" "SUB _INBOX_processor.> 1" "SUB _INBOX.> 2")
echo "$out" | grep -- '-ERR' | sed 's/^/  nats gateway other inboxes: /' || true
check "NATS: the gateway's user cannot read the processor's (or the shared) reply inbox" \
  "$([[ $(grep -c 'Permissions Violation for Subscription' <<<"$out") == 2 ]] && echo ok || echo "$out")"
out=$(nats_probe gateway "$gw_nats" "SUB _INBOX_gateway.probe 1" 'PUB $JS.API.STREAM.INFO.BANK_TRANSFERS _INBOX_gateway.probe 0' '')
check "NATS: the same user may read the command stream's info (allowed, answered)" \
  "$(grep -q '"config":{"name":"BANK_TRANSFERS"' <<<"$out" && echo ok || echo "$out")"
out=$(nats_probe anonymous nothing "PING")
echo "$out" | grep -m1 -- '-ERR' | sed 's/^/  nats without a valid user: /' || true
check "NATS: no connection without a user" "$(grep -q 'Authorization Violation' <<<"$out" && echo ok || echo "$out")"

# --- PostgreSQL: as each service's role, over TCP with its password.
pg_as() { # service sql
  docker exec -e PGPASSWORD="$(cat "$SECRETS_DIR/pg_$1_password")" "$(dc ps -q postgres)" \
    psql -XAtq -h 127.0.0.1 -U "bank_$1" -d bank -c "$2" 2>&1 || true   # refusals exit 1
}
out=$(pg_as gateway "INSERT INTO entries (transfer_id, account_id, amount, balance_after)
  SELECT id, id, 1, 1 FROM transfers LIMIT 1")
echo "  postgres bank_gateway INSERT INTO entries: $out"
check "PostgreSQL: the gateway's role cannot INSERT INTO entries" \
  "$(grep -q 'permission denied for table entries' <<<"$out" && echo ok || echo "$out")"
out=$(pg_as gateway "UPDATE accounts SET balance = balance + 1")
echo "  postgres bank_gateway UPDATE accounts: $out"
check "PostgreSQL: the gateway's role cannot UPDATE accounts" \
  "$(grep -q 'permission denied for table accounts' <<<"$out" && echo ok || echo "$out")"
out=$(pg_as gateway "CREATE TABLE probe (i int)")
echo "  postgres bank_gateway CREATE TABLE: $out"
check "PostgreSQL: the gateway's role cannot run DDL" \
  "$(grep -q 'permission denied for schema public' <<<"$out" && echo ok || echo "$out")"
out=$(pg_as processor "SELECT count(*) FROM users")
echo "  postgres bank_processor SELECT FROM users: $out"
check "PostgreSQL: the processor's role cannot read users" \
  "$(grep -q 'permission denied for table users' <<<"$out" && echo ok || echo "$out")"
out=$(pg_as gateway "SELECT count(*) FROM entries")
check "PostgreSQL: the gateway's role reads entries (allowed: $out rows)" "$([[ "$out" =~ ^[0-9]+$ ]] && echo ok || echo "$out")"

# --- Redis: as the notifier's ACL user, inside the redis container.
redis_as() { # user command...
  docker exec -e REDISCLI_AUTH="$(cat "$SECRETS_DIR/redis_$1_password")" "$(dc ps -q redis)" \
    redis-cli --user "$1" "${@:2}" 2>&1 || true
}
out=$(redis_as notifier HSET bank:seq 00000000-0000-0000-0000-000000000000 999)
echo "  redis notifier HSET bank:seq: $out"
check "Redis: the notifier's user cannot write the event feed's numbering (NOPERM)" \
  "$(grep -q '^NOPERM' <<<"$out" && echo ok || echo "$out")"
out=$(redis_as notifier XADD bank:ev:00000000-0000-0000-0000-000000000000 '*' f forged)
echo "  redis notifier XADD bank:ev:…: $out"
check "Redis: the notifier's user cannot append to a replay stream (NOPERM)" \
  "$(grep -q '^NOPERM' <<<"$out" && echo ok || echo "$out")"
out=$(redis_as notifier PUBLISH bank:feed forged)
echo "  redis notifier PUBLISH bank:feed: $out"
check "Redis: the notifier's user cannot publish events (NOPERM)" \
  "$(grep -q '^NOPERM' <<<"$out" && echo ok || echo "$out")"
out=$(redis_as notifier GET bank:epoch)
check "Redis: the same user reads the feed's epoch (allowed: $out)" "$([[ -n "$out" && "$out" != NOPERM* && "$out" != ERR* ]] && echo ok || echo "$out")"
out=$(redis_as gateway HSET bank:seq 00000000-0000-0000-0000-000000000000 999)
echo "  redis gateway HSET bank:seq: $out"
check "Redis: the gateway's user cannot write the event feed (NOPERM)" \
  "$(grep -q '^NOPERM' <<<"$out" && echo ok || echo "$out")"
out=$(docker exec "$(dc ps -q redis)" redis-cli PING 2>&1 || true)
echo "  redis default user PING: $out"
check "Redis: the default user is off" "$(grep -q 'NOAUTH' <<<"$out" && echo ok || echo "$out")"

# After `make restore --clean` (the dump carries no grants): the Makefile's
# `migrate --roles` must have granted the roles again, and no more.
privs_after_restore() {
  local out
  out="$(pg_as processor "SELECT count(*) FROM accounts") / $(pg_as gateway "SELECT count(*) FROM transfers")"
  check "after make restore: the services' roles read their tables again ($out rows)" \
    "$([[ "$out" =~ ^[0-9]+\ /\ [0-9]+$ ]] && echo ok || echo "$out")"
  out=$(pg_as gateway "INSERT INTO entries (transfer_id, account_id, amount, balance_after)
    SELECT id, id, 1, 1 FROM transfers LIMIT 1")
  check "after make restore: the gateway's role still cannot INSERT INTO entries" \
    "$(grep -q 'permission denied for table entries' <<<"$out" && echo ok || echo "$out")"
}
