#!/usr/bin/env bash
# Starts the 3-node cluster of nats-1..3.conf on loopback ports (this machine
# has no container engine), creates the R3 streams, publishes, stops one
# node, and checks that the stream still takes and serves messages.
#
# usage: deploy/nats/cluster/test-local-cluster.sh   (needs nats-server 2.9+, python3 + nats-py;
#        PYTHON=/path/to/python picks the interpreter)
# Ports used: 14221-14223 (clients), 16221-16223 (routes), 18221-18223 (monitoring).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
python="${PYTHON:-python3}"
# nats-py comes with the lint venv (deploy/scripts/lint-deploy.sh)
[[ -z "${PYTHON:-}" && -x "$repo/.dev/deploy-venv/bin/python" ]] && python="$repo/.dev/deploy-venv/bin/python"
command -v nats-server >/dev/null || { echo "skip: nats-server not installed"; exit 0; }
"$python" -c 'import nats' 2>/dev/null || { echo "skip: python module nats-py not installed"; exit 0; }

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for i in 1 2 3; do
  # The committed config with loopback ports and a private store directory.
  sed -e "s#listen: 0.0.0.0:4222#listen: 127.0.0.1:1422$i#" \
      -e "s#http: 0.0.0.0:8222#http: 127.0.0.1:1822$i#" \
      -e "s#listen: 0.0.0.0:6222#listen: 127.0.0.1:1622$i#" \
      -e "s#nats-route://nats-\([123]\):6222#nats-route://127.0.0.1:1622\1#" \
      -e "s#/data/jetstream#$work/n$i#" \
      "$here/nats-$i.conf" > "$work/nats-$i.conf"
  nats-server -c "$work/nats-$i.conf" > "$work/nats-$i.log" 2>&1 &
  pids+=($!)
done

echo "waiting for a JetStream meta leader"
for _ in $(seq 1 60); do
  leader="$(curl -fsS http://127.0.0.1:18221/jsz 2>/dev/null | "$python" -c 'import json,sys; print(json.load(sys.stdin).get("meta_cluster",{}).get("leader",""))' 2>/dev/null || true)"
  [[ -n "$leader" ]] && break
  sleep 0.5
done
[[ -n "$leader" ]] || { echo "FAIL: no meta leader"; tail -5 "$work"/nats-*.log; exit 1; }
echo "meta leader: $leader"

"$python" "$here/create_streams.py" nats://127.0.0.1:14221

"$python" - "$work" <<'PY'
import asyncio, json, os, signal, sys, time
import nats

async def main():
    nc = await nats.connect(["nats://127.0.0.1:14221", "nats://127.0.0.1:14222", "nats://127.0.0.1:14223"])
    js = nc.jetstream()
    for i in range(100):
        await js.publish(f"bank.transfers.cmd.t{i}", b"{}", headers={"Nats-Msg-Id": f"t{i}"})
    dup = await js.publish("bank.transfers.cmd.t0", b"{}", headers={"Nats-Msg-Id": "t0"})
    info = await js.stream_info("BANK_TRANSFERS")
    print(f"published 100 (+1 duplicate flagged={dup.duplicate}); stream has {info.state.messages}, "
          f"leader {info.cluster.leader}, replicas {[r.name for r in info.cluster.replicas]}")
    assert info.state.messages == 100 and dup.duplicate
    await nc.drain()
    print(info.cluster.leader)
    open(os.path.join(sys.argv[1], "leader"), "w").write(info.cluster.leader)

asyncio.run(main())
PY

leader="$(cat "$work/leader")"
n="${leader#nats-}"
echo "stopping the stream leader $leader"
kill "${pids[$((n - 1))]}"
sleep 3

survivors=()
for i in 1 2 3; do [[ $i == "$n" ]] || survivors+=("nats://127.0.0.1:1422$i"); done
"$python" - "${survivors[@]}" <<'PY'
import asyncio, sys
import nats

async def main():
    nc = await nats.connect(sys.argv[1:], max_reconnect_attempts=5)
    js = nc.jetstream()
    for _ in range(40):  # a new stream leader is elected within seconds
        try:
            await js.publish("bank.transfers.cmd.after", b"{}", timeout=2)
            break
        except Exception:
            await asyncio.sleep(0.5)
    info = await js.stream_info("BANK_TRANSFERS")
    sub = await js.pull_subscribe("bank.transfers.cmd.*", durable="processor", stream="BANK_TRANSFERS")
    got = 0
    while got < 101:
        msgs = await sub.fetch(50, timeout=5)
        for m in msgs:
            await m.ack()
        got += len(msgs)
    print(f"after losing a node: stream has {info.state.messages} messages, new leader {info.cluster.leader}; "
          f"consumer `processor` read and acked {got}")
    assert info.state.messages == 101 and got == 101
    await nc.drain()

asyncio.run(main())
PY
echo "nats-cluster: 1 passed, 0 failed"
