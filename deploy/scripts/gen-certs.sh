#!/usr/bin/env bash
# A private CA and one server certificate per service, for encryption in
# transit in production (deploy/compose.prod.yaml, deploy/k8s). gen-secrets.sh
# (`make setup`) calls it; alone:
#
# usage: deploy/scripts/gen-certs.sh [--force] DIR
#
# Files in DIR (never committed: deploy/secrets/.gitignore):
#   ca.crt                 the CA the services verify servers against (0644)
#   ca.key                 its key (0600); only needed to issue more
#   postgres.crt/.key      SANs: postgres, bank-db-rw(.bank.svc...), localhost
#   redis.crt/.key         SANs: redis(.bank.svc...), localhost
#   nats.crt/.key          SANs: nats(.bank.svc...), localhost
#   edge.crt/.key          the HTTPS edge (nginx): localhost, web, $EDGE_HOSTNAMES
# plus 127.0.0.1 as an IP SAN in each. Keys are 0600 and, when run as root,
# owned by the UID of the container that reads them (PostgreSQL refuses a
# key others can read): postgres 70, redis 999, nats and nginx 65532.
#
# Provided certificates are kept: put your own ca.crt and <service>.crt/.key
# in DIR first (no ca.key is needed then). --force issues new ones.
# EDGE_HOSTNAMES: extra DNS names for the edge, comma-separated
# (e.g. bank.example.com).
set -euo pipefail

force=0
dir=""
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "gen-certs: unknown option $arg" >&2; exit 2 ;;
    *) dir="$arg" ;;
  esac
done
[[ -n "$dir" ]] || { echo "usage: gen-certs.sh [--force] DIR" >&2; exit 2; }
command -v openssl >/dev/null 2>&1 || { echo "gen-certs: openssl is needed (apt-get install openssl)" >&2; exit 1; }
mkdir -p "$dir"
chmod 0700 "$dir"

DAYS_CA=3650
DAYS_SERVER=825   # the longest browsers accept for a server certificate
k8s() { echo "DNS:$1,DNS:$1.bank,DNS:$1.bank.svc,DNS:$1.bank.svc.cluster.local"; }

# service|owner uid:gid of its key|SANs
SERVICES=(
  "postgres|70:70|DNS:postgres,$(k8s bank-db-rw),DNS:localhost,IP:127.0.0.1"
  "redis|999:1000|$(k8s redis),DNS:localhost,IP:127.0.0.1"
  "nats|65532:65532|$(k8s nats),DNS:localhost,IP:127.0.0.1"
  "edge|65532:65532|DNS:localhost,DNS:web,IP:127.0.0.1"
)

have() { [[ $force == 0 && -s "$dir/$1" ]]; }

key() { # path: a new P-256 key, 0600 from the start
  (umask 077; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null)
}

if have ca.crt; then
  echo "kept      $dir/ca.crt"
else
  key "$dir/ca.key"
  openssl req -x509 -new -key "$dir/ca.key" -sha256 -days "$DAYS_CA" \
    -subj "/CN=bank private CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$dir/ca.crt" 2>/dev/null
  chmod 0644 "$dir/ca.crt"
  echo "generated $dir/ca.crt (and ca.key)"
  force_servers=1
fi

for entry in "${SERVICES[@]}"; do
  IFS='|' read -r name owner sans <<<"$entry"
  [[ $name == edge && -n "${EDGE_HOSTNAMES:-}" ]] && sans+=",$(sed 's/\([^,]*\)/DNS:\1/g' <<<"$EDGE_HOSTNAMES")"
  if have "$name.crt" && have "$name.key" && [[ "${force_servers:-0}" == 0 ]]; then
    echo "kept      $dir/$name.crt"
    continue
  fi
  [[ -s "$dir/ca.key" ]] || {
    echo "gen-certs: $name.crt/.key missing and no ca.key to issue them: provide both, or remove ca.crt" >&2
    exit 1
  }
  key "$dir/$name.key"
  openssl req -new -key "$dir/$name.key" -subj "/CN=$name" -out "$dir/$name.csr" 2>/dev/null
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' \
    "$sans" > "$dir/$name.ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -sha256 -days "$DAYS_SERVER" -extfile "$dir/$name.ext" -out "$dir/$name.crt" 2>/dev/null
  rm -f "$dir/$name.csr" "$dir/$name.ext"
  chmod 0644 "$dir/$name.crt"
  echo "generated $dir/$name.crt ($sans)"
done
rm -f "$dir/ca.srl"

# The containers run as fixed non-root UIDs and docker mounts the files as
# they are: each key belongs to the one UID that reads it.
for entry in "${SERVICES[@]}"; do
  IFS='|' read -r name owner _ <<<"$entry"
  chmod 0600 "$dir/$name.key"
  if [[ $(id -u) == 0 ]]; then
    chown "$owner" "$dir/$name.key"
  elif [[ $(stat -c %u:%g "$dir/$name.key") != "$owner" ]]; then
    echo "gen-certs: as root: chown $owner $dir/$name.key (the container reads it as that UID)" >&2
  fi
done
