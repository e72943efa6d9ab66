# shellcheck shell=bash disable=SC2154  # $scripts, $SECRETS_DIR ...: set by deploy-test.sh
# Encryption in transit, checked on the running production stack. Sourced by
# deploy-test.sh once the prod stack is healthy: it uses that script's dc_prod,
# check, say, $SECRETS_DIR, $WEB_PORT and $WEB_TLS_PORT.
#
#  - a transfer end to end through the HTTPS edge (edge_client.py over https
#    and wss, the certificate verified against the private CA); the services'
#    own connections to PostgreSQL and NATS shown encrypted
#  - HSTS on HTTPS answers; plain HTTP only redirects to https
#  - plaintext refused: psql sslmode=disable, a plain NATS client, redis-cli
#    without --tls (each refusal printed); with the CA each one works
#  - PostgreSQL verify-full fails for a name the certificate does not carry

tls_ca="$SECRETS_DIR/ca.crt"
tls_edge="https://127.0.0.1:$WEB_TLS_PORT"
tls_ip() { # service: its address on the backend network (the host reaches it)
  local id; id=$(dc_prod ps -q "$1" 2>/dev/null | head -n1)
  [[ -n "$id" ]] && docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$id" | awk '{ print $1 }'
}
tls_indent() { sed 's/^/    /' | cut -c1-200; }

say "TLS: a transfer through the HTTPS edge ($tls_edge, CA $tls_ca)"
dc_prod run --rm migrate seed-demo >/dev/null 2>&1 || dc_prod run --rm migrate seed-demo || check "prod: seed-demo over TLS" failed
if out=$(EDGE_CA_FILE="$tls_ca" python3 "$scripts/edge_client.py" "$tls_edge"); then rc=0; else rc=$?; fi
echo "$out" | sed '$d'
passes=$((passes + $(grep -c '^ok ' <<<"$out" || true)))
failures=$((failures + $(grep -c '^FAIL' <<<"$out" || true)))
check "prod: transfer end to end over https/wss, certificate verified (edge_client.py)" \
  "$([[ $rc == 0 ]] && echo ok || echo "exit $rc")"

say "TLS: the edge (HSTS, plain HTTP redirected)"
openssl s_client -connect "127.0.0.1:$WEB_TLS_PORT" -servername localhost -CAfile "$tls_ca" \
  -verify_return_error </dev/null 2>/dev/null | grep -E '^(Verify return code|New, )' | tls_indent || true
hsts=$(curl -sS -o /dev/null -D - --cacert "$tls_ca" "$tls_edge/v1/config" | tr -d '\r' | grep -i '^strict-transport-security:' || true)
echo "    $hsts"
check "prod: HTTPS answers carry HSTS" "$([[ $hsts == *max-age=* ]] && echo ok || echo "no HSTS header")"
plain=$(curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' "http://127.0.0.1:$WEB_PORT/v1/config" || true)
echo "    plain http://127.0.0.1:$WEB_PORT/v1/config -> $plain"
check "prod: plain HTTP answers only a redirect to https" "$([[ $plain == 301\ https://* ]] && echo ok || echo "$plain")"

# --- PostgreSQL ---------------------------------------------------------------
pg_ip=$(tls_ip postgres || true)
pg_pass=$(head -n1 "$SECRETS_DIR/postgres_password")
say "TLS: PostgreSQL ($pg_ip)"
out=$(PGPASSWORD="$pg_pass" PGCONNECT_TIMEOUT=5 psql -XAtq \
  "host=$pg_ip port=5432 user=bank dbname=bank sslmode=disable" -c 'select 1' 2>&1 || true)
echo "  psql sslmode=disable:"; echo "$out" | tls_indent
check "prod: PostgreSQL refuses a plaintext connection" \
  "$([[ $out == *"no encryption"* ]] && echo ok || echo "not refused: $out")"
out=$(PGPASSWORD="$pg_pass" PGCONNECT_TIMEOUT=5 psql -XAtq \
  "host=postgres hostaddr=$pg_ip port=5432 user=bank dbname=bank sslmode=verify-full sslrootcert=$tls_ca" \
  -c 'select version, cipher from pg_stat_ssl where pid = pg_backend_pid()' 2>&1 || true)
echo "  psql sslmode=verify-full (host name postgres): $out"
check "prod: PostgreSQL over TLS, certificate and host name verified" \
  "$([[ $out == TLSv1.[23]* ]] && echo ok || echo "$out")"
out=$(PGPASSWORD="$pg_pass" PGCONNECT_TIMEOUT=5 psql -XAtq \
  "host=impostor hostaddr=$pg_ip port=5432 user=bank dbname=bank sslmode=verify-full sslrootcert=$tls_ca" \
  -c 'select 1' 2>&1 || true)
echo "  psql sslmode=verify-full (host name impostor):"; echo "$out" | tls_indent
check "prod: verify-full refuses a host name the certificate does not carry" \
  "$([[ $out == *"does not match"* ]] && echo ok || echo "$out")"
# The services' own sessions (every client address is another container).
out=$(PGPASSWORD="$pg_pass" psql -XAtq -F ' ' \
  "host=postgres hostaddr=$pg_ip user=bank dbname=bank sslmode=verify-full sslrootcert=$tls_ca" -c "
    select a.usename, a.client_addr, s.ssl, s.version
    from pg_stat_activity a join pg_stat_ssl s using (pid)
    where a.client_addr is not null and a.pid <> pg_backend_pid()
    order by 1, 2" 2>&1 || true)
echo "  the services' sessions (user, address, ssl, version):"; echo "$out" | tls_indent
check "prod: every service session to PostgreSQL is TLS ($(grep -c . <<<"$out") sessions)" \
  "$([[ -n "$out" ]] && ! grep -qv ' t TLSv1' <<<"$out" && echo ok || echo "plaintext or none")"

# --- NATS ---------------------------------------------------------------------
nats_ip=$(tls_ip nats || true)
say "TLS: NATS ($nats_ip)"
out=$(python3 - "$nats_ip" <<'PY' 2>&1 || true
import socket, sys
s = socket.create_connection((sys.argv[1], 4222), timeout=5)
info = s.recv(4096).decode().strip()
print("server:", info[:60] + " ... tls_required:", '"tls_required":true' in info)
s.sendall(b'CONNECT {"verbose":false,"name":"plaintext-probe"}\r\nPING\r\n')
try:
    answer = s.recv(4096).decode(errors="replace").strip()
    print("answer to a plaintext CONNECT + PING:", answer or "none, connection closed")
except OSError as e:
    print("answer to a plaintext CONNECT + PING: connection", e)
PY
)
echo "  plain client:"; echo "$out" | tls_indent
dc_prod logs --no-color --tail=100 nats 2>/dev/null | grep -m1 'TLS handshake error\|TLS Required' | sed 's/^/    server log: /' | cut -c1-200 || true
check "prod: NATS refuses a plaintext client (TLS required, no PONG)" \
  "$(grep -q 'tls_required: True' <<<"$out" && ! grep -q PONG <<<"$out" && echo ok || echo "not refused")"
out=$(python3 - "$nats_ip" <<'PY' 2>&1 || true
import json, sys, urllib.request
conns = json.load(urllib.request.urlopen(f"http://{sys.argv[1]}:8222/connz", timeout=5))["connections"]
for c in conns:
    print(c.get("name", "?"), c.get("tls_version", "plaintext"), c.get("tls_cipher_suite", ""))
PY
)
echo "  the services' connections (monitoring /connz: name, TLS version, cipher):"; echo "$out" | tls_indent
check "prod: every NATS client connection is TLS ($(grep -c . <<<"$out") connections)" \
  "$([[ -n "$out" ]] && ! grep -q plaintext <<<"$out" && echo ok || echo "plaintext or none")"

# --- Redis --------------------------------------------------------------------
redis_ip=$(tls_ip redis || true)
redis_pass=$(head -n1 "$SECRETS_DIR/redis_password")
say "TLS: Redis ($redis_ip)"
out=$(REDISCLI_AUTH="$redis_pass" timeout 10 redis-cli -h "$redis_ip" -p 6379 ping 2>&1 || true)
echo "  redis-cli without --tls:"; grep -v '^$' <<<"${out:-(no answer)}" | tls_indent || true
check "prod: Redis refuses a plaintext connection" \
  "$([[ $out != *PONG* ]] && echo ok || echo "answered PONG in plaintext")"
tls_redis() { REDISCLI_AUTH="$redis_pass" timeout 10 redis-cli --user admin --tls --cacert "$tls_ca" --sni redis -h "$redis_ip" -p 6379 "$@" 2>&1; }
out="$(tls_redis config get port | paste -sd' ') $(tls_redis config get tls-port | paste -sd' ')"
echo "  redis-cli --tls --cacert ca.crt: config get port, tls-port -> $out"
check "prod: Redis over TLS with the CA; its plaintext port is 0" \
  "$([[ $out == "port 0 tls-port 6379" ]] && echo ok || echo "$out")"
clients=$(tls_redis client list | grep -c 'cmd=' || true)
echo "  connected clients (all on the TLS port): $clients"

# --- Least privilege, again on the production stack (over TLS) ----------------
# deploy-test-privs.sh shows every refusal on the dev stack; the prod overlay
# runs the same users, so the two the issue names are repeated here, over TLS.
say "prod: the gateway's NATS user and PostgreSQL role, refused over TLS"
out=$(python3 - "$nats_ip" "$tls_ca" "$(cat "$SECRETS_DIR/nats_gateway_password")" <<'PY' || true
import json, socket, ssl, sys
host, ca, password = sys.argv[1:4]
raw = socket.create_connection((host, 4222), timeout=5)
raw.recv(4096)  # INFO, in plaintext; then the TLS handshake (NATS 2.9)
ctx = ssl.create_default_context(cafile=ca)
s = ctx.wrap_socket(raw, server_hostname="nats")
hello = {"user": "gateway", "pass": password, "verbose": False, "pedantic": False}
s.sendall(("CONNECT " + json.dumps(hello) + "\r\nSUB bank.transfers.cmd.> 1\r\nPING\r\n").encode())
s.settimeout(3)
out = b""
try:
    while b"PONG" not in out:
        d = s.recv(65536)
        if not d:
            break
        out += d
except (socket.timeout, OSError):
    pass
print(s.version(), out.decode(errors="replace").replace("\r", ""))
PY
)
echo "$out" | grep -m1 -- '-ERR' | sed 's/^/  nats (TLS) gateway SUB bank.transfers.cmd.>: /' || true
check "prod: over TLS the gateway's NATS user cannot subscribe to the command subjects" \
  "$(grep -q 'Permissions Violation for Subscription' <<<"$out" && grep -q TLSv1 <<<"$out" && echo ok || echo "$out")"
out=$(docker exec -e PGPASSWORD="$(cat "$SECRETS_DIR/pg_gateway_password")" -e PGSSLMODE=require \
  "$(dc_prod ps -q postgres)" psql -XAtq -h 127.0.0.1 -U bank_gateway -d bank \
  -c "INSERT INTO entries (transfer_id, account_id, amount, balance_after) SELECT id, id, 1, 1 FROM transfers LIMIT 1" 2>&1 || true)
echo "  postgres (TLS) bank_gateway INSERT INTO entries: $out"
check "prod: over TLS the gateway's PostgreSQL role cannot INSERT INTO entries" \
  "$(grep -q 'permission denied for table entries' <<<"$out" && echo ok || echo "$out")"
