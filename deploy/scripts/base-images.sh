#!/usr/bin/env bash
# Base and stand-in images made from Debian packages, for machines that reach
# Debian's mirror but no container registry. Each image is built only when
# `docker image inspect` does not find it (FORCE=1 rebuilds), so a second run
# takes seconds.
#
# usage: deploy/scripts/base-images.sh [--list]
#
#   bank/debian-base:bookworm   debootstrap --variant=minbase bookworm (with
#                               the mirror from /etc/apt/sources.list.d/
#                               debian.sources) -> docker import
#   bank/runtime-base:bookworm  glibc, libgcc, CA certificates, user 65532
#   bank/nginx-base:bookworm    Debian nginx, user 65532 (web's runtime)
#   and under the names deploy/compose.yaml uses, so the compose files run
#   unchanged: postgres:17-alpine (PostgreSQL 15), redis:7-alpine (Redis 7.0),
#   nats:2.11-alpine (nats-server 2.9), busybox:1.37, prom/prometheus:v3.5.0
#   (Prometheus 2.42); and bank/trace-backend:phoenix, the stand-in trace
#   backend (deploy/traces/build-image.sh: Arize Phoenix from PyPI).
# Each stand-in carries the label bank.stand-in=<what it really is>.
#
# Where a registry is reachable none of this is needed: the compose files
# pull the official images.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
dockerdir="$here/../docker/base"
DOCKER="${DOCKER:-docker}"
DEBIAN_BASE=bank/debian-base:bookworm
SUITE=bookworm

# name|Dockerfile|what it really is
STAND_INS=(
  "bank/runtime-base:bookworm|runtime-base.Dockerfile|Debian bookworm libc6 + libgcc-s1 + ca-certificates"
  "bank/nginx-base:bookworm|nginx.Dockerfile|Debian bookworm nginx-light 1.22"
  "busybox:1.37|busybox.Dockerfile|Debian bookworm busybox-static"
  "postgres:17-alpine|postgres.Dockerfile|Debian bookworm postgresql-15"
  "redis:7-alpine|redis.Dockerfile|Debian bookworm redis-server 7.0"
  "nats:2.11-alpine|nats.Dockerfile|Debian bookworm nats-server 2.9"
  "prom/prometheus:v3.5.0|prometheus.Dockerfile|Debian bookworm prometheus 2.42"
)

if [[ "${1:-}" == --list ]]; then
  echo "$DEBIAN_BASE"
  for entry in "${STAND_INS[@]}"; do echo "${entry%%|*}"; done
  exit 0
fi

log() { echo "base-images: $*" >&2; }

present() { [[ "${FORCE:-0}" != 1 ]] && $DOCKER image inspect "$1" >/dev/null 2>&1; }

mirror() { # the first Debian (not -security) URI of the machine's apt sources
  local uri=""
  if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
    uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' \
      /etc/apt/sources.list.d/debian.sources)
  fi
  if [[ -z "$uri" && -r /etc/apt/sources.list ]]; then
    uri=$(awk '$1 == "deb" && $3 !~ /security/ { print $2; exit }' /etc/apt/sources.list)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

debian_base() {
  if present "$DEBIAN_BASE"; then log "$DEBIAN_BASE present"; return; fi
  if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  fi
  local url root
  url=$(mirror)
  root=$(mktemp -d /tmp/bank-debootstrap.XXXXXX)
  # shellcheck disable=SC2064 # expand now: the trap must remove this very directory
  trap "rm -rf '$root'" EXIT
  log "debootstrap --variant=minbase $SUITE from $url (about a minute)"
  debootstrap --variant=minbase "$SUITE" "$root" "$url" >"$root.log" 2>&1 \
    || { tail -n 20 "$root.log" >&2; exit 1; }
  rm -f "$root.log"
  # No daemons start during package installs in image builds; keep no
  # package lists or caches in layers.
  printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
  chmod 0755 "$root/usr/sbin/policy-rc.d"
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
    > "$root/etc/apt/apt.conf.d/90bank-no-recommends"
  printf 'deb %s %s main\ndeb %s %s-updates main\n' "$url" "$SUITE" "$url" "$SUITE" \
    > "$root/etc/apt/sources.list"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | $DOCKER import \
    -c 'CMD ["/bin/bash"]' -c 'ENV LANG=C.UTF-8' \
    -c "LABEL bank.stand-in=\"debootstrap --variant=minbase $SUITE from $url\"" \
    - "$DEBIAN_BASE" >/dev/null
  rm -rf "$root"
  trap - EXIT
  log "$DEBIAN_BASE imported"
}

build() { # name dockerfile what
  local name="$1" file="$2" what="$3"
  if present "$name"; then log "$name present"; return; fi
  log "building $name ($what)"
  local start=$SECONDS out
  # The legacy builder: it needs neither buildx nor a frontend image, and
  # these files use no BuildKit-only syntax.
  if ! out=$(DOCKER_BUILDKIT=0 $DOCKER build -q --label "bank.stand-in=$what" \
      --build-arg "DEBIAN_BASE=$DEBIAN_BASE" -f "$dockerdir/$file" -t "$name" "$dockerdir" 2>&1); then
    echo "$out" >&2
    exit 1
  fi
  log "$name built in $((SECONDS - start))s"
}

debian_base
for entry in "${STAND_INS[@]}"; do
  IFS='|' read -r name file what <<<"$entry"
  build "$name" "$file" "$what"
done
"$here/../traces/build-image.sh"
log "all present"
