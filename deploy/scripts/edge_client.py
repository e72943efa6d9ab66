#!/usr/bin/env python3
"""A customer's round trip through the nginx edge only (deploy-test).

usage: edge_client.py BASE_URL     e.g. http://127.0.0.1:18080
       EDGE_CA_FILE=ca.crt edge_client.py https://127.0.0.1:18443
         (HTTPS and wss://, the server verified against that CA)

Logs in as alice, opens the WebSocket /v1/ws through the proxy, POSTs a
transfer to bob, waits for the committed event on that socket, reads the
transfer back, asks the ops timeline for its trace id, and checks that the
services' own /healthz and /metrics are not reachable through the edge.
Prints one line per step and, last, a JSON line {"transfer_id","trace_id"}.
Exit 0 when every step passed.

Standard library only (a 60-line RFC 6455 client below): the test needs no
package from PyPI.
"""

import base64
import json
import os
import socket
import ssl
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

ALICE_EUR = "a11ce000-0000-4000-8000-000000000001"
BOB_EUR = "b0b00000-0000-4000-8000-000000000001"
# A transfer commits in milliseconds; a cold stack's first batch in a few seconds.
COMMIT_TIMEOUT_S = 30
HTTP_TIMEOUT_S = 10
# HTTPS edge: verify its certificate against this CA (hostname included).
TLS = ssl.create_default_context(cafile=os.environ["EDGE_CA_FILE"]) if os.environ.get("EDGE_CA_FILE") else None


def http(method, url, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S, context=TLS) as resp:
            raw = resp.read()
            return resp.status, dict(resp.headers), raw
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def login(base, user, password):
    status, _, raw = http("POST", f"{base}/v1/auth/login", {"username": user, "password": password})
    if status != 200:
        raise SystemExit(f"FAIL login {user}: {status} {raw[:200]!r}")
    return json.loads(raw)["access_token"]


class WebSocket:
    """Just enough RFC 6455 for a client that reads text frames."""

    def __init__(self, url, origin):
        parts = urllib.parse.urlsplit(url)
        secure = parts.scheme == "wss"
        port = parts.port or (443 if secure else 80)
        self.sock = socket.create_connection((parts.hostname, port), timeout=HTTP_TIMEOUT_S)
        if secure:
            ctx = TLS or ssl.create_default_context()
            self.sock = ctx.wrap_socket(self.sock, server_hostname=parts.hostname)
        key = base64.b64encode(os.urandom(16)).decode()
        path = parts.path + ("?" + parts.query if parts.query else "")
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            head += chunk
        head, self.buf = head.split(b"\r\n\r\n", 1)
        status_line = head.split(b"\r\n", 1)[0].decode()
        if " 101 " not in status_line + " ":
            raise ConnectionError(f"handshake answered {status_line!r}")

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("socket closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send(self, opcode, payload):
        mask = os.urandom(4)
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def recv_text(self, timeout):
        """The next text message, answering pings; None on timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                b0, b1 = self._read(2)
                opcode, n = b0 & 0x0F, b1 & 0x7F
                if n == 126:
                    (n,) = struct.unpack("!H", self._read(2))
                elif n == 127:
                    (n,) = struct.unpack("!Q", self._read(8))
                payload = self._read(n)
                if opcode == 0x9:
                    self._send(0xA, payload)
                elif opcode == 0x8:
                    raise ConnectionError(f"closed by the server: {payload[2:]!r}")
                elif opcode == 0x1:
                    return payload.decode()
        except socket.timeout:
            return None

    def close(self):
        try:
            self._send(0x8, struct.pack("!H", 1000))
        finally:
            self.sock.close()


def main():
    base = sys.argv[1].rstrip("/")
    failures = []

    def check(name, ok, detail=""):
        print(f"{'ok  ' if ok else 'FAIL'} - {name}" + (f" ({detail})" if detail else ""), flush=True)
        if not ok:
            failures.append(name)

    token = login(base, "alice", "alice-dev-password")
    check("login as alice through the edge", True)

    ws_url = base.replace("http", "ws", 1) + "/v1/ws?access_token=" + urllib.parse.quote(token)
    ws = WebSocket(ws_url, origin=base)
    first = ws.recv_text(HTTP_TIMEOUT_S)
    check("WebSocket upgraded through the proxy, ready", first is not None and '"ready"' in first, first or "")

    key = f"deploy-test-{uuid.uuid4()}"
    started = time.monotonic()
    status, headers, raw = http(
        "POST",
        f"{base}/v1/transfers",
        {"from_account": ALICE_EUR, "to_account": BOB_EUR, "amount": "12.50", "currency": "EUR"},
        {"authorization": f"Bearer {token}", "idempotency-key": key},
    )
    transfer = json.loads(raw) if raw else {}
    transfer_id = transfer.get("id", "")
    check("POST /v1/transfers answered 202 pending", status == 202 and transfer.get("status") == "pending", f"{status} {transfer_id}")

    event = None
    deadline = started + COMMIT_TIMEOUT_S
    while transfer_id and time.monotonic() < deadline:
        text = ws.recv_text(max(0.1, deadline - time.monotonic()))
        if text and transfer_id in text and "committed" in text:
            event = text
            break
    elapsed_ms = (time.monotonic() - started) * 1000
    check("committed event over the WebSocket through the proxy", event is not None, f"{elapsed_ms:.0f} ms after the POST")
    ws.close()

    status, _, raw = http("GET", f"{base}/v1/transfers/{transfer_id}", headers={"authorization": f"Bearer {token}"})
    body = json.loads(raw) if status == 200 else {}
    check("GET /v1/transfers/{id} reads it back committed", body.get("status") == "committed" and body.get("amount") in ("12.50", "12.5"), f"{status} {body.get('status')} {body.get('amount')}")

    ops = login(base, "ops", "ops-dev-password")
    status, _, raw = http("GET", f"{base}/v1/ops/transfers/{transfer_id}/timeline", headers={"authorization": f"Bearer {ops}"})
    timeline = json.loads(raw) if status == 200 else {}
    stages = [s.get("stage") for s in timeline.get("stages", [])]
    check("ops timeline through the edge", status == 200 and "committed" in stages, " -> ".join(stages))

    for path in ("/healthz", "/metrics"):
        status, _, _ = http("GET", f"{base}{path}")
        check(f"{path} of the services is not reachable through the edge", status == 404, str(status))

    print(json.dumps({"transfer_id": transfer_id, "trace_id": timeline.get("trace_id")}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
