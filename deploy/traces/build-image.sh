#!/usr/bin/env bash
# Builds the stand-in trace backend image bank/trace-backend:phoenix (Arize
# Phoenix, see README.md here) from the local Debian base image. Python
# packages are fetched on the host with pip (which has the host's network
# and TLS set-up) into a wheelhouse kept between runs, then copied into a
# throw-away build context: the build itself needs no network but Debian's
# mirror. Skips the build when the image exists (FORCE=1 rebuilds).
#
# usage: deploy/traces/build-image.sh
#   PYTHON=python3.11      host interpreter with pip; must be CPython 3.11 like
#                          Debian bookworm's python3, so the wheels fit the image
#   WHEELHOUSE=dir         default ~/.cache/bank-phoenix-wheels
#   DEBIAN_BASE=image      default bank/debian-base:bookworm
#   IMAGE=name             default bank/trace-backend:phoenix
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
dockerfile="$here/../docker/base/phoenix.Dockerfile"
DOCKER="${DOCKER:-docker}"
PYTHON="${PYTHON:-python3}"
IMAGE="${IMAGE:-bank/trace-backend:phoenix}"
DEBIAN_BASE="${DEBIAN_BASE:-bank/debian-base:bookworm}"
WHEELHOUSE="${WHEELHOUSE:-$HOME/.cache/bank-phoenix-wheels}"
# Pinned: the REST paths find-trace.sh uses and the UI route the screenshot
# opens were checked against this version.
PHOENIX_VERSION=20.26.1

log() { echo "trace-backend: $*" >&2; }

if [[ "${FORCE:-0}" != 1 ]] && $DOCKER image inspect "$IMAGE" >/dev/null 2>&1; then
  log "$IMAGE present"
  exit 0
fi
$DOCKER image inspect "$DEBIAN_BASE" >/dev/null 2>&1 \
  || { log "$DEBIAN_BASE missing: run deploy/scripts/base-images.sh first"; exit 1; }
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
  log "$PYTHON is not CPython 3.11 (the image's Python); set PYTHON=python3.11"
  exit 1
fi
"$PYTHON" -m pip --version >/dev/null 2>&1 \
  || { log "$PYTHON has no pip: apt-get install python3-pip"; exit 1; }

mkdir -p "$WHEELHOUSE"
log "wheels for arize-phoenix==$PHOENIX_VERSION into $WHEELHOUSE"
"$PYTHON" -m pip download -q --disable-pip-version-check --only-binary=:all: \
  -d "$WHEELHOUSE" "arize-phoenix==$PHOENIX_VERSION"

ctx=$(mktemp -d /tmp/bank-trace-backend.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
cp "$dockerfile" "$ctx/Dockerfile"
# Hard links when the wheelhouse is on the same file system: no copying.
cp -al "$WHEELHOUSE" "$ctx/wheels" 2>/dev/null || cp -a "$WHEELHOUSE" "$ctx/wheels"
start=$SECONDS
log "building $IMAGE"
DOCKER_BUILDKIT=0 $DOCKER build -q --force-rm \
  --label "bank.stand-in=Arize Phoenix $PHOENIX_VERSION (PyPI) on Debian bookworm python3" \
  --build-arg "DEBIAN_BASE=$DEBIAN_BASE" --build-arg "PHOENIX_VERSION=$PHOENIX_VERSION" \
  -t "$IMAGE" "$ctx" >/dev/null
log "$IMAGE built in $((SECONDS - start))s"
