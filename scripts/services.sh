#!/usr/bin/env bash
# Makes sure PostgreSQL, Redis and NATS (with JetStream) answer at the
# configured addresses; starts them (installing Debian's packages if needed)
# when they do not. Idempotent: does nothing when all three are up.
set -euo pipefail

PG_HOST=${PG_HOST:-127.0.0.1}
PG_PORT=${PG_PORT:-5432}
REDIS_PORT=${REDIS_PORT:-6379}
NATS_PORT=${NATS_PORT:-4222}
STATE_DIR=${BANK_STATE_DIR:-$HOME/.local/share/bank}

log() { printf '\033[1;34m[services]\033[0m %s\n' "$*"; }
up() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
wait_up() {
  for _ in $(seq 1 60); do up "$1" "$2" && return 0; sleep 0.5; done
  echo "error: $3 did not come up on $1:$2" >&2; exit 1
}
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "error: need root to run: $*" >&2; exit 1; fi
}
apt_install() {
  log "installing $* (Debian packages)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# --- PostgreSQL -------------------------------------------------------------
if ! up "$PG_HOST" "$PG_PORT"; then
  fresh=no
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    apt_install postgresql postgresql-client; fresh=yes
  fi
  log "starting PostgreSQL"
  if command -v pg_ctlcluster >/dev/null; then
    ver=$(ls /usr/lib/postgresql | sort -V | tail -1)
    [ -d "/etc/postgresql/$ver/main" ] || as_root pg_createcluster "$ver" main >/dev/null
    if [ "$fresh" = yes ]; then
      # A fresh dev install: local TCP connections as `postgres` without a
      # password, like the CI machine (never do this on a shared host).
      hba="/etc/postgresql/$ver/main/pg_hba.conf"
      as_root sed -i 's/^\(host\s\+all\s\+all\s\+127.0.0.1\/32\s\+\)\S\+/\1trust/' "$hba"
    fi
    as_root pg_ctlcluster "$ver" main start || as_root service postgresql start
  else
    as_root service postgresql start
  fi
  wait_up "$PG_HOST" "$PG_PORT" PostgreSQL
fi
log "PostgreSQL up on $PG_HOST:$PG_PORT"

# --- Redis ------------------------------------------------------------------
if ! up 127.0.0.1 "$REDIS_PORT"; then
  command -v redis-server >/dev/null || apt_install redis-server
  log "starting Redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes >/dev/null
  wait_up 127.0.0.1 "$REDIS_PORT" Redis
fi
log "Redis up on 127.0.0.1:$REDIS_PORT"

# --- NATS with JetStream ----------------------------------------------------
if ! up 127.0.0.1 "$NATS_PORT"; then
  command -v nats-server >/dev/null || apt_install nats-server
  log "starting nats-server with JetStream"
  mkdir -p "$STATE_DIR/nats"
  nohup nats-server -js -sd "$STATE_DIR/nats" -a 127.0.0.1 -p "$NATS_PORT" \
    >"$STATE_DIR/nats.log" 2>&1 &
  wait_up 127.0.0.1 "$NATS_PORT" nats-server
fi
log "NATS up on 127.0.0.1:$NATS_PORT"
