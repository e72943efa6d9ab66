#!/usr/bin/env bash
# `make images`: the service images from host-built release binaries, for
# machines without a registry (or without a Rust toolchain in a container).
#
# usage: deploy/scripts/images.sh
#   1. base-images.sh: bank/runtime-base, bank/nginx-base and the stand-ins
#      (each only when absent)
#   2. cargo build --release of gateway, processor, notifier, bankadmin
#      (a no-op when up to date; SKIP_CARGO=1 uses $RELEASE as it is;
#      PROFILE=debug packages the debug build instead, for a quick look)
#   3. frontend/dist (scripts/web.sh build) when missing or older than the
#      sources, and deploy/docker/httpprobe.rs compiled with rustc
#   4. deploy/docker/runtime/*.Dockerfile, each in a context that holds
#      only what it copies, tagged ${REGISTRY:-bank}/NAME:${BANK_VERSION:-dev}
#      (the names deploy/compose.yaml runs)
# RELEASE: the binaries to package (default $CARGO_TARGET_DIR/release, or
# .../debug with PROFILE=debug).
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
DOCKER="${DOCKER:-docker}"
PROFILE="${PROFILE:-release}"
case "$PROFILE" in release|debug) ;; *) echo "images: PROFILE is release or debug" >&2; exit 2 ;; esac
RELEASE="${RELEASE:-${CARGO_TARGET_DIR:-$root/target}/$PROFILE}"
REGISTRY="${REGISTRY:-bank}"
BANK_VERSION="${BANK_VERSION:-dev}"
stage="$root/.dev/images"
BINS=(gateway processor notifier bankadmin)

log() { echo "images: $*" >&2; }

deploy/scripts/base-images.sh

if [[ "${SKIP_CARGO:-0}" != 1 ]]; then
  log "cargo build ($PROFILE: gateway, processor, notifier, bankadmin)"
  profile_flag=()
  [[ $PROFILE == release ]] && profile_flag=(--release)
  cargo build "${profile_flag[@]}" --locked -p gateway -p processor -p notifier -p admin --bins
fi
for bin in "${BINS[@]}"; do
  [[ -x "$RELEASE/$bin" ]] || { log "missing $RELEASE/$bin"; exit 1; }
done

if [[ ! -f frontend/dist/index.html ]] \
  || [[ -n "$(find frontend/src frontend/public frontend/index.html frontend/package.json \
        -newer frontend/dist/index.html -print -quit 2>/dev/null)" ]]; then
  log "building the web page (frontend/dist)"
  scripts/web.sh build
fi

rm -rf "$stage"
mkdir -p "$stage"
revision=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)

build() { # name dockerfile context
  local file="$2" context="$3" tag="$REGISTRY/$1:$BANK_VERSION" start=$SECONDS out
  # The legacy builder: no buildx, no frontend image; these files need neither.
  if ! out=$(DOCKER_BUILDKIT=0 $DOCKER build -q -f "$file" -t "$tag" \
      --label "org.opencontainers.image.revision=$revision" \
      --label "bank.built-from=host $PROFILE binaries (make images)" "$context" 2>&1); then
    echo "$out" >&2
    exit 1
  fi
  log "$tag ($(( SECONDS - start ))s, $($DOCKER image inspect -f '{{.Size}}' "$tag" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
}

for bin in "${BINS[@]}"; do
  mkdir -p "$stage/$bin"
  cp "$RELEASE/$bin" "$stage/$bin/$bin"
  build "$bin" "deploy/docker/runtime/$bin.Dockerfile" "$stage/$bin"
done

mkdir -p "$stage/web"
cp -r frontend/dist "$stage/web/dist"
cp deploy/nginx/nginx.conf "$stage/web/nginx.conf"
rustc --edition 2021 -C opt-level=s -C strip=symbols -o "$stage/web/httpprobe" deploy/docker/httpprobe.rs
build web deploy/docker/runtime/web.Dockerfile "$stage/web"
log "done"
