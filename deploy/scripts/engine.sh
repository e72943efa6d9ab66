#!/usr/bin/env bash
# The container engine for the compose stack: Docker, installed from Debian
# and started by hand when it is missing (machines of this kind have no
# systemd and no engine; see deploy/README.md, "Engine").
#
# usage: deploy/scripts/engine.sh start|stop|status|compose
#   start    install docker.io and docker-compose from Debian when `docker`
#            or a compose is missing (--no-install-recommends), start dockerd
#            in the background when no daemon answers, and record its PID in
#            $ENGINE_STATE_DIR/dockerd.pid. Prints "engine: started PID" or
#            "engine: already running" (a daemon someone else started).
#   stop     stop the dockerd whose PID this script recorded, and nothing
#            else: a daemon it did not start is left alone.
#   status   whether a daemon answers, and whether this script started it.
#   compose  print the compose command to use: `docker compose` (v2 plugin)
#            when it exists, else `docker-compose` (v1, Debian's 1.29).
#
# ENGINE_STATE_DIR (default /run/bank-engine) holds dockerd.pid and
# dockerd.log; it is shared by every checkout on the machine so that two
# of them never start two daemons.
set -euo pipefail

STATE_DIR="${ENGINE_STATE_DIR:-/run/bank-engine}"
PIDFILE="$STATE_DIR/dockerd.pid"
LOGFILE="$STATE_DIR/dockerd.log"
# dockerd answers in < 8 s on this machine class; a minute covers a cold VM.
START_TIMEOUT_S=60
# dockerd stops its containers first (10 s each by default) before exiting.
STOP_TIMEOUT_S=60

log() { echo "engine: $*" >&2; }

have() { command -v "$1" >/dev/null 2>&1; }

sudo_() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

daemon_up() { have docker && docker info >/dev/null 2>&1; }

compose_cmd() {
  if have docker && docker compose version >/dev/null 2>&1; then
    echo "docker compose"
  elif have docker-compose; then
    echo "docker-compose"
  else
    return 1
  fi
}

recorded_pid() { # the PID this script recorded, if that process is still dockerd
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid=$(cat "$PIDFILE")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == dockerd ]] || return 1
  echo "$pid"
}

install_engine() {
  local pkgs=()
  have dockerd || pkgs+=(docker.io)
  compose_cmd >/dev/null || pkgs+=(docker-compose)
  ((${#pkgs[@]})) || return 0
  log "installing ${pkgs[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  sudo_ apt-get update -qq
  sudo_ apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
}

start() {
  install_engine
  if daemon_up; then
    log "already running ($(docker version -f '{{.Server.Version}}' 2>/dev/null || echo '?'))"
    return 0
  fi
  sudo_ mkdir -p "$STATE_DIR"
  log "starting dockerd (log: $LOGFILE)"
  # setsid --fork: the daemon must outlive this shell and its process group
  # (make and the test scripts kill their own groups on interrupt). dockerd
  # writes its own PID to PIDFILE (and removes it when it exits), so the file
  # names the daemon itself, not a wrapper.
  sudo_ setsid --fork dockerd --pidfile "$PIDFILE" >"$LOGFILE" 2>&1 < /dev/null
  local waited=0 pid
  until daemon_up; do
    ((waited++ < START_TIMEOUT_S)) || {
      log "dockerd did not answer in ${START_TIMEOUT_S}s; last lines of $LOGFILE:"
      tail -n 20 "$LOGFILE" >&2
      return 1
    }
    sleep 1
  done
  pid=$(recorded_pid) || { log "dockerd answers but $PIDFILE names no dockerd"; return 1; }
  log "started $pid ($(docker version -f '{{.Server.Version}}'))"
}

stop() {
  local pid
  if ! pid=$(recorded_pid); then
    if daemon_up; then log "not stopping: this script did not start the running daemon"; fi
    rm -f "$PIDFILE"
    return 0
  fi
  log "stopping dockerd $pid"
  kill -TERM "$pid"
  local waited=0
  while kill -0 "$pid" 2>/dev/null; do
    ((waited++ < STOP_TIMEOUT_S)) || { log "dockerd $pid still running after ${STOP_TIMEOUT_S}s"; return 1; }
    sleep 1
  done
  rm -f "$PIDFILE"
  log "stopped $pid"
}

status() {
  local pid
  if daemon_up; then
    if pid=$(recorded_pid); then echo "engine: running, started by this script (pid $pid)"
    else echo "engine: running, not started by this script"; fi
  else
    echo "engine: not running"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  compose) compose_cmd || { log "no compose (run: $0 start)"; exit 1; } ;;
  *) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
