#!/usr/bin/env python3
"""Creates (or updates) the bank's JetStream streams from streams/*.json with
3 replicas, through the plain JetStream API ($JS.API.STREAM.CREATE/UPDATE).

usage: python3 create_streams.py [NATS_URL]   (default nats://127.0.0.1:4222)
Needs nats-py (pip install nats-py). The nats CLI does the same:
  nats stream add --config streams/BANK_TRANSFERS.json   (and the other two)

Run it before the services start on a cluster: they create missing streams
themselves, but with 1 replica. An existing stream is sent an update request
instead (raising num_replicas that way was not exercised here)."""
import asyncio
import json
import pathlib
import sys

import nats


async def main(url: str) -> int:
    nc = await nats.connect(url, connect_timeout=5)
    failures = 0
    for path in sorted((pathlib.Path(__file__).parent / "streams").glob("*.json")):
        cfg = json.loads(path.read_text())
        name = cfg["name"]
        for verb in ("CREATE", "UPDATE"):
            reply = await nc.request(f"$JS.API.STREAM.{verb}.{name}", json.dumps(cfg).encode(), timeout=10)
            answer = json.loads(reply.data)
            err = answer.get("error")
            if not err:
                state = answer.get("cluster", {})
                print(f"{name}: {verb.lower()}d, replicas={answer['config'].get('num_replicas')}, "
                      f"leader={state.get('leader')}, peers={[r['name'] for r in state.get('replicas', [])]}")
                break
            # 10058: stream name already in use -> update it instead
            if verb == "CREATE" and err.get("err_code") == 10058:
                continue
            print(f"{name}: {verb.lower()} failed: {err}", file=sys.stderr)
            failures += 1
            break
    await nc.drain()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "nats://127.0.0.1:4222")))
