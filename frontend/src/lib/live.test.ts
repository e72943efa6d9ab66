import { describe, expect, it, vi } from "vitest";
import { backoffDelay, buildWsUrl, LiveConnection, type LiveEvent, type LiveStatus, type SocketLike, type Timers } from "./live";
import { parseRetryAfter, resolveWsUrl } from "./api";

class FakeSocket implements SocketLike {
  onopen: SocketLike["onopen"] = null;
  onmessage: SocketLike["onmessage"] = null;
  onclose: SocketLike["onclose"] = null;
  onerror: SocketLike["onerror"] = null;
  closed = false;
  constructor(public url: string) {}
  open() { this.onopen?.({}); }
  send(msg: object) { this.onmessage?.({ data: JSON.stringify(msg) }); }
  drop() { this.onerror?.({}); this.onclose?.({ code: 1006 }); }
  close() { this.closed = true; }
}

class FakeTimers implements Timers {
  queue: { fn: () => void; ms: number; id: number }[] = [];
  next = 1;
  setTimeout(fn: () => void, ms: number) { const id = this.next++; this.queue.push({ fn, ms, id }); return id; }
  clearTimeout(id: unknown) { this.queue = this.queue.filter((t) => t.id !== id); }
  /** Runs the next timer; returns its delay. */
  fire(): number {
    const t = this.queue.shift();
    if (!t) throw new Error("no timer");
    t.fn();
    return t.ms;
  }
}

function setup(opts: { online?: () => boolean; token?: () => string | null } = {}) {
  const sockets: FakeSocket[] = [];
  const timers = new FakeTimers();
  const events: LiveEvent[] = [];
  const statuses: LiveStatus[] = [];
  const onResync = vi.fn();
  const onConnectFailures = vi.fn();
  const conn = new LiveConnection({
    url: "ws://127.0.0.1:8081/v1/ws",
    token: opts.token ?? (() => "tok en"),
    onEvent: (e) => events.push(e),
    onStatus: (s) => statuses.push(s),
    onResync,
    onConnectFailures,
    createSocket: (u) => { const s = new FakeSocket(u); sockets.push(s); return s; },
    timers,
    random: () => 0.5,
    isOnline: opts.online,
  });
  return { conn, sockets, timers, events, statuses, onResync, onConnectFailures };
}

describe("backoffDelay", () => {
  it("starts at 0.5 s, doubles, caps at 15 s, with jitter between half and all", () => {
    expect(backoffDelay(0, () => 1)).toBe(500);
    expect(backoffDelay(0, () => 0)).toBe(250);
    expect(backoffDelay(1, () => 1)).toBe(1000);
    expect(backoffDelay(2, () => 1)).toBe(2000);
    expect(backoffDelay(5, () => 1)).toBe(15000);
    expect(backoffDelay(100, () => 1)).toBe(15000);
    expect(backoffDelay(100, () => 0)).toBe(7500);
    for (let i = 0; i < 50; i++) {
      const d = backoffDelay(3);
      expect(d).toBeGreaterThanOrEqual(2000);
      expect(d).toBeLessThanOrEqual(4000);
    }
  });
});

describe("URLs", () => {
  it("puts the token (escaped) and since in the query", () => {
    expect(buildWsUrl("ws://h/v1/ws", "a b", null)).toBe("ws://h/v1/ws?access_token=a%20b");
    expect(buildWsUrl("ws://h/v1/ws", "t", "3.7")).toBe("ws://h/v1/ws?access_token=t&since=3.7");
    expect(buildWsUrl("ws://h/v1/ws?x=1", "t", null)).toBe("ws://h/v1/ws?x=1&access_token=t");
  });

  it("falls back to the same origin when the config has no ws_url", () => {
    expect(resolveWsUrl("ws://127.0.0.1:8081/v1/ws", { protocol: "http:", host: "x" })).toBe("ws://127.0.0.1:8081/v1/ws");
    expect(resolveWsUrl("", { protocol: "http:", host: "127.0.0.1:8080" })).toBe("ws://127.0.0.1:8080/v1/ws");
    expect(resolveWsUrl(undefined, { protocol: "https:", host: "bank.example" })).toBe("wss://bank.example/v1/ws");
  });

  it("reads Retry-After in seconds or as a date", () => {
    expect(parseRetryAfter("3")).toBe(3);
    expect(parseRetryAfter(null)).toBeNull();
    expect(parseRetryAfter("Sat, 28 Nov 2026 12:00:10 GMT", Date.parse("2026-11-28T12:00:00Z"))).toBe(10);
  });
});

describe("LiveConnection", () => {
  it("connects, resyncs once on the first open, and dispatches events", () => {
    const t = setup();
    t.conn.start();
    expect(t.sockets[0].url).toBe("ws://127.0.0.1:8081/v1/ws?access_token=tok%20en");
    t.sockets[0].open();
    expect(t.statuses).toEqual(["connected"]);
    expect(t.onResync).toHaveBeenCalledTimes(1);
    t.sockets[0].send({ type: "ready", id: "1.0" });
    t.sockets[0].send({ id: "1.1", type: "transfer.updated", transfer: { id: "t1", status: "committed" } });
    t.sockets[0].send({ id: "1.2", type: "account.updated", account: { id: "a1", version: 2 } });
    t.sockets[0].send({ type: "something.new" });
    t.sockets[0].onmessage?.({ data: "not json" });
    expect(t.events.map((e) => e.type)).toEqual(["transfer.updated", "account.updated"]);
    expect(t.conn.lastId).toBe("1.2");
  });

  it("dispatches hold.updated events with their hold", () => {
    const t = setup();
    t.conn.start();
    t.sockets[0].open();
    t.sockets[0].send({ id: "1.3", type: "hold.updated", hold: { id: "h1", status: "pending" } });
    t.sockets[0].send({ id: "1.4", type: "hold.updated" }); // no hold: ignored
    expect(t.events).toEqual([{ type: "hold.updated", id: "1.3", hold: { id: "h1", status: "pending" } }]);
    expect(t.conn.lastId).toBe("1.4");
  });

  it("reconnects with growing backoff and resumes with since = last event id", () => {
    const t = setup();
    t.conn.start();
    t.sockets[0].open();
    t.sockets[0].send({ type: "ready", id: "7.41" });
    t.sockets[0].drop();
    expect(t.statuses.at(-1)).toBe("reconnecting");
    expect(t.timers.fire()).toBe(375); // 500 * (0.5 + 0.5 * 0.5)
    expect(t.sockets[1].url).toContain("&since=7.41");
    t.sockets[1].drop();
    expect(t.timers.fire()).toBe(750);
    expect(t.sockets[2].url).toContain("&since=7.41");
    t.sockets[2].open();
    expect(t.statuses.at(-1)).toBe("connected");
    expect(t.onResync).toHaveBeenCalledTimes(1); // resumed, no refetch needed
    // after a successful open the backoff starts over
    t.sockets[2].drop();
    expect(t.timers.fire()).toBe(375);
  });

  it("asks for a refetch when the server says resync", () => {
    const t = setup();
    t.conn.start();
    t.sockets[0].open();
    t.sockets[0].send({ type: "resync" });
    expect(t.onResync).toHaveBeenCalledTimes(2);
  });

  it("drops a since the server keeps refusing, then refetches when connected", () => {
    const t = setup();
    t.conn.start();
    t.sockets[0].open();
    t.sockets[0].send({ type: "ready", id: "1.5" });
    t.sockets[0].drop();
    t.timers.fire();
    t.sockets[1].drop(); // refused before open (e.g. 422 for an old epoch)
    t.timers.fire();
    t.sockets[2].drop();
    t.timers.fire();
    expect(t.sockets[3].url).not.toContain("since=");
    t.sockets[3].open();
    expect(t.onResync).toHaveBeenCalledTimes(2);
  });

  it("reports repeated failures before open (maybe an expired session)", () => {
    const t = setup();
    t.conn.start();
    for (let i = 0; i < 3; i++) {
      t.sockets[i].drop();
      t.timers.fire();
    }
    expect(t.onConnectFailures).toHaveBeenCalledWith(3);
  });

  it("caps the delay at 15 s", () => {
    const t = setup();
    t.conn.start();
    let last = 0;
    for (let i = 0; i < 12; i++) {
      t.sockets[i].drop();
      last = t.timers.fire();
    }
    expect(last).toBe(11250); // 15000 * 0.75
  });

  it("shows offline when the browser is offline, and retries at once when back", () => {
    let online = false;
    const t = setup({ online: () => online });
    t.conn.start();
    t.sockets[0].drop();
    expect(t.statuses.at(-1)).toBe("offline");
    expect(t.timers.queue).toHaveLength(1);
    online = true;
    t.conn.online();
    expect(t.timers.queue).toHaveLength(0);
    expect(t.sockets).toHaveLength(2);
    t.sockets[1].open();
    expect(t.statuses.at(-1)).toBe("connected");
  });

  it("drops a live-looking socket when the browser goes offline and resumes when back", () => {
    let online = true;
    const t = setup({ online: () => online });
    t.conn.start();
    t.sockets[0].open();
    t.sockets[0].send({ type: "ready", id: "2.9" });
    online = false;
    t.conn.offline();
    expect(t.sockets[0].closed).toBe(true);
    expect(t.statuses.at(-1)).toBe("offline");
    online = true;
    t.conn.online();
    expect(t.sockets).toHaveLength(2);
    expect(t.sockets[1].url).toContain("since=2.9");
    t.sockets[1].open();
    expect(t.statuses.at(-1)).toBe("connected");
  });

  it("stops cleanly: no reconnect after stop", () => {
    const t = setup();
    t.conn.start();
    t.sockets[0].open();
    t.conn.stop();
    expect(t.sockets[0].closed).toBe(true);
    t.sockets[0].drop();
    expect(t.timers.queue).toHaveLength(0);
  });

  it("connects with the new token once a refresh brings one, and leaves an open socket alone", () => {
    let token: string | null = null;
    const t = setup({ token: () => token });
    t.conn.start();
    expect(t.sockets).toHaveLength(0); // the old token expired before the refresh came
    token = "fresh";
    t.conn.tokenChanged();
    expect(t.sockets).toHaveLength(1);
    expect(t.sockets[0].url).toContain("access_token=fresh");
    t.sockets[0].open();
    token = "fresher";
    t.conn.tokenChanged();
    expect(t.sockets).toHaveLength(1);
    // The server closes it when its token expires: the reconnect uses the current one.
    t.sockets[0].drop();
    t.timers.fire();
    expect(t.sockets[1].url).toContain("access_token=fresher");
  });

  it("does not connect without a token", () => {
    const t = setup({ token: () => null });
    t.conn.start();
    expect(t.sockets).toHaveLength(0);
    expect(t.statuses).toEqual(["offline"]);
  });
});
