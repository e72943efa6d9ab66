import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { api, ApiError } from "./api";
import { clearToken, hasSession, loadRefreshToken, loadToken, onTokenChange, saveToken, saveTokens, type TokenPair } from "./auth";
import { keepSessionFresh, refreshDueAt, refreshSession, signOut } from "./session";

const T0 = Date.parse("2026-11-28T12:00:00Z");

/** sessionStorage for node: the tokens are kept there as in the browser. */
class MemoryStorage {
  items = new Map<string, string>();
  get length() { return this.items.size; }
  key(i: number) { return [...this.items.keys()][i] ?? null; }
  getItem(k: string) { return this.items.get(k) ?? null; }
  setItem(k: string, v: string) { this.items.set(k, String(v)); }
  removeItem(k: string) { this.items.delete(k); }
  clear() { this.items.clear(); }
}

interface Call { url: string; method: string; bearer: string | null; body: Record<string, unknown> | null }

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(body === null ? null : JSON.stringify(body), {
    status,
    headers: { "content-type": status >= 400 ? "application/problem+json" : "application/json", ...headers },
  });
const unauthorized = () => json(401, { title: "Unauthorized", status: 401 });

let gateways = 0;

/** What the fake gateway issues: every field present. */
type Pair = Required<{ [K in keyof TokenPair]: NonNullable<TokenPair[K]> }> & { token_type: string };

/**
 * The gateway's auth as the page sees it: rotation (a refresh uses the token
 * up), theft detection (a used token presented again revokes the login),
 * logout revoking the login. Tokens are unique per instance, because the
 * page remembers the refresh tokens it has spent.
 */
class FakeGateway {
  readonly id = ++gateways;
  private n = 0;
  /** Access tokens the gateway accepts. */
  access = new Set<string>();
  refresh = new Map<string, "live" | "used" | "revoked">();
  /** A used refresh token came back: the whole login was revoked. */
  reused = false;
  calls: Call[] = [];
  /** Answers /v1/auth/refresh gives before the real one: a Response, or an Error for no answer. */
  hiccups: (Response | Error)[] = [];
  /** The answers for a path wait for its gate while one is set. */
  gates = new Map<string, Promise<void>>();

  constructor() {
    vi.stubGlobal("fetch", vi.fn((url: string, init?: RequestInit) => this.handle(url, init ?? {})));
  }

  issue(): Pair {
    const n = ++this.n;
    const pair = {
      access_token: `g${this.id}-access-${n}`,
      token_type: "Bearer",
      expires_in: 900,
      refresh_token: `g${this.id}-refresh-${n}`,
      refresh_expires_in: 28_800,
    };
    this.access.add(pair.access_token);
    this.refresh.set(pair.refresh_token, "live");
    return pair;
  }

  login(): Pair {
    const pair = this.issue();
    saveTokens(pair);
    return pair;
  }

  /** The refresh tokens presented, in order. */
  presented(): unknown[] {
    return this.calls.filter((c) => c.url === "/v1/auth/refresh").map((c) => c.body?.refresh_token);
  }

  private revokeAll() {
    for (const k of this.refresh.keys()) this.refresh.set(k, "revoked");
  }

  private async handle(url: string, init: RequestInit): Promise<Response> {
    const bearer = new Headers(init.headers).get("Authorization");
    const body = typeof init.body === "string" && init.body ? (JSON.parse(init.body) as Record<string, unknown>) : null;
    this.calls.push({ url, method: init.method ?? "GET", bearer, body });
    // Processed now; a gate holds only the answer on its way back.
    const answer = this.answer(url, bearer, body);
    await this.gates.get(url);
    if (answer instanceof Error) throw answer;
    return answer;
  }

  private answer(url: string, bearer: string | null, body: Record<string, unknown> | null): Response | Error {
    const authorized = bearer !== null && this.access.has(bearer.replace(/^Bearer /, ""));
    switch (url) {
      case "/v1/auth/refresh": {
        const hiccup = this.hiccups.shift();
        if (hiccup) return hiccup;
        const token = String(body?.refresh_token);
        const state = this.refresh.get(token);
        if (state === "live") {
          this.refresh.set(token, "used");
          return json(200, this.issue());
        }
        if (state === "used") {
          this.reused = true;
          this.revokeAll();
        }
        return unauthorized();
      }
      case "/v1/auth/logout":
        if (!authorized) return unauthorized();
        this.revokeAll();
        return new Response(null, { status: 204 });
      case "/v1/accounts":
        return authorized ? json(200, [{ id: "acc-1" }]) : unauthorized();
      default:
        return json(404, { title: "Not Found", status: 404 });
    }
  }
}

function deferred() {
  let release!: () => void;
  const promise = new Promise<void>((r) => (release = r));
  return { promise, release };
}

/** Moves the fake clock on, running due timers and letting pending answers arrive. */
async function tick(ms = 0) {
  await vi.advanceTimersByTimeAsync(ms);
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

let storage: MemoryStorage;

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"], now: T0 });
  storage = new MemoryStorage();
  vi.stubGlobal("sessionStorage", storage);
  clearToken();
});

afterEach(() => {
  clearToken();
  vi.useRealTimers();
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

describe("refreshDueAt", () => {
  it("is at 80 % of the lifetime, or 60 s before expiry, but not before halfway", () => {
    expect(refreshDueAt(0, 900_000)).toBe(720_000); // 15 min: after 12
    expect(refreshDueAt(0, 200_000)).toBe(140_000); // 60 s left comes first
    expect(refreshDueAt(0, 60_000)).toBe(30_000); // never back to back
  });
});

describe("login", () => {
  it("stores the refresh token and its expiry next to the access token", async () => {
    const gw = new FakeGateway();
    vi.stubGlobal("fetch", vi.fn(async () => json(200, gw.issue())));
    await api.login("alice", "pw");
    const stored = JSON.parse(storage.getItem("transfer.token") ?? "{}");
    expect(stored).toMatchObject({
      token: `g${gw.id}-access-1`,
      expiresAt: T0 + 900_000,
      refreshToken: `g${gw.id}-refresh-1`,
      refreshExpiresAt: T0 + 28_800_000,
    });
  });
});

describe("background refresh", () => {
  it("refreshes before the access token expires, with each new refresh token in turn", async () => {
    const gw = new FakeGateway();
    const first = gw.login();
    const stop = keepSessionFresh();
    await tick(719_000);
    expect(gw.presented()).toEqual([]);
    await tick(1_000); // 12 of 15 minutes
    expect(gw.presented()).toEqual([first.refresh_token]);
    expect(loadToken()).toBe(`g${gw.id}-access-2`);
    expect(JSON.parse(storage.getItem("transfer.token") ?? "{}").refreshToken).toBe(`g${gw.id}-refresh-2`);
    await tick(720_000);
    expect(gw.presented()).toEqual([first.refresh_token, `g${gw.id}-refresh-2`]);
    await tick(3 * 900_000); // well past any one access token: still signed in
    expect(hasSession()).toBe(true);
    expect(gw.reused).toBe(false);
    stop();
  });

  it("waits out Retry-After on 429 and tries again while the access token is valid", async () => {
    const gw = new FakeGateway();
    const first = gw.login();
    gw.hiccups.push(json(429, { title: "Too Many Requests", status: 429 }, { "Retry-After": "30" }));
    const stop = keepSessionFresh();
    await tick(720_000);
    expect(gw.presented()).toHaveLength(1);
    // Meanwhile calls go on with the still-valid token, without waiting.
    await expect(api.accounts()).resolves.toEqual([{ id: "acc-1" }]);
    expect(gw.calls.at(-1)?.bearer).toBe(`Bearer ${first.access_token}`);
    await tick(29_000);
    expect(gw.presented()).toHaveLength(1);
    await tick(1_000);
    // The 429 did not use the token up (refused before the refresh ran).
    expect(gw.presented()).toEqual([first.refresh_token, first.refresh_token]);
    expect(loadToken()).toBe(`g${gw.id}-access-2`);
    expect(gw.reused).toBe(false);
    stop();
  });

  it("a refresh answered 429 waits for Retry-After itself, then presents the unused token again", async () => {
    const gw = new FakeGateway();
    const first = gw.login();
    gw.hiccups.push(json(429, { title: "Too Many Requests", status: 429 }, { "Retry-After": "20" }));
    let token: string | null = null;
    void refreshSession().then((t) => (token = t));
    await tick(19_000);
    expect(gw.presented()).toHaveLength(1);
    expect(token).toBeNull();
    await tick(1_000);
    expect(gw.presented()).toEqual([first.refresh_token, first.refresh_token]);
    expect(token).toBe(`g${gw.id}-access-2`);
  });

  it("retries with backoff when the gateway cannot be reached", async () => {
    const gw = new FakeGateway();
    gw.login();
    gw.hiccups.push(new TypeError("Failed to fetch"), json(503, { title: "Service Unavailable", status: 503 }));
    const stop = keepSessionFresh();
    await tick(720_000);
    expect(gw.presented()).toHaveLength(1);
    await tick(500); // first backoff: 0.25–0.5 s
    expect(gw.presented()).toHaveLength(2);
    await tick(1_000); // second: 0.5–1 s
    expect(gw.presented()).toHaveLength(3);
    expect(loadToken()).toBe(`g${gw.id}-access-2`);
    stop();
  });

  it("tries again later when a refresh gives up for now (no network after the laptop slept)", async () => {
    const gw = new FakeGateway();
    const first = gw.login();
    vi.setSystemTime(T0 + 20 * 60_000); // the access token expired meanwhile
    gw.hiccups.push(...Array.from({ length: 50 }, () => new TypeError("Failed to fetch")));
    const stop = keepSessionFresh();
    await tick(12_000); // a few quick retries, then this refresh gives up
    const tried = gw.presented().length;
    expect(tried).toBeGreaterThan(2);
    expect(hasSession()).toBe(true); // not signed out for a network outage
    gw.hiccups.length = 0; // the network is back
    await tick(30_000);
    expect(gw.presented()).toHaveLength(tried + 1);
    expect(gw.presented().every((t) => t === first.refresh_token)).toBe(true);
    expect(loadToken()).toBe(`g${gw.id}-access-2`);
    stop();
  });

  it("ends the session when the refresh is refused", async () => {
    const gw = new FakeGateway();
    const first = gw.login();
    gw.refresh.set(first.refresh_token, "revoked"); // e.g. signed out elsewhere
    const changed = vi.fn();
    const off = onTokenChange(changed);
    const stop = keepSessionFresh();
    await tick(720_000);
    expect(gw.presented()).toHaveLength(1);
    expect(hasSession()).toBe(false);
    expect(storage.getItem("transfer.token")).toBeNull();
    expect(changed).toHaveBeenCalled();
    await tick(3_600_000);
    expect(gw.presented()).toHaveLength(1); // nothing more to try
    off();
    stop();
  });

  it("signs out when the access token expires and there is no refresh token", async () => {
    saveToken("only-access", 900);
    const stop = keepSessionFresh();
    await tick(899_000);
    expect(hasSession()).toBe(true);
    await tick(1_000);
    expect(hasSession()).toBe(false);
    stop();
  });

  it("keeps a session whose access token expired while the refresh token is valid, and renews it first", async () => {
    const gw = new FakeGateway();
    const first = gw.login();
    vi.setSystemTime(T0 + 20 * 60_000); // the laptop slept
    expect(hasSession()).toBe(true);
    expect(loadToken()).toBeNull();
    await expect(api.accounts()).resolves.toEqual([{ id: "acc-1" }]);
    // Refreshed first, then one call with the new token: no 401 round trip.
    expect(gw.calls.map((c) => c.url)).toEqual(["/v1/auth/refresh", "/v1/accounts"]);
    expect(gw.presented()).toEqual([first.refresh_token]);
    expect(gw.calls[1].bearer).toBe(`Bearer g${gw.id}-access-2`);
  });
});

describe("a call answered 401", () => {
  it("refreshes once and retries once with the new token", async () => {
    const gw = new FakeGateway();
    const first = gw.login();
    gw.access.delete(first.access_token); // refused although not expired here
    await expect(api.accounts()).resolves.toEqual([{ id: "acc-1" }]);
    expect(gw.calls.map((c) => [c.url, c.bearer])).toEqual([
      ["/v1/accounts", `Bearer ${first.access_token}`],
      ["/v1/auth/refresh", null],
      ["/v1/accounts", `Bearer g${gw.id}-access-2`],
    ]);
    expect(loadRefreshToken()).toBe(`g${gw.id}-refresh-2`);
  });

  it("shares one refresh between concurrent 401s", async () => {
    const gw = new FakeGateway();
    const first = gw.login();
    gw.access.delete(first.access_token);
    const gate = deferred();
    gw.gates.set("/v1/auth/refresh", gate.promise);
    const calls = Array.from({ length: 5 }, () => api.accounts());
    await tick();
    gate.release();
    const results = await Promise.all(calls);
    expect(results).toHaveLength(5);
    expect(gw.presented()).toEqual([first.refresh_token]);
    const retried = gw.calls.filter((c) => c.url === "/v1/accounts" && c.bearer === `Bearer g${gw.id}-access-2`);
    expect(retried).toHaveLength(5);
    expect(gw.reused).toBe(false);
  });

  it("ends the session when the refresh is refused, and does not retry the call", async () => {
    const gw = new FakeGateway();
    const first = gw.login();
    gw.access.delete(first.access_token);
    gw.refresh.set(first.refresh_token, "revoked");
    const changed = vi.fn();
    const off = onTokenChange(changed);
    const e = (await api.accounts().catch((x) => x)) as ApiError;
    expect(e).toBeInstanceOf(ApiError);
    expect(e.status).toBe(401);
    expect(hasSession()).toBe(false);
    expect(storage.getItem("transfer.token")).toBeNull();
    expect(changed).toHaveBeenCalled();
    expect(gw.calls.map((c) => c.url)).toEqual(["/v1/accounts", "/v1/auth/refresh"]);
    off();
  });

  it("keeps the session when the refresh cannot reach the gateway for now", async () => {
    const gw = new FakeGateway();
    const first = gw.login();
    gw.access.delete(first.access_token);
    gw.hiccups.push(...Array.from({ length: 50 }, () => new TypeError("Failed to fetch")));
    const pending = api.accounts().catch((x) => x);
    // Retried with backoff; the refused token counts as expired, so the call
    // gives up after a few seconds rather than at the token's expiry.
    await tick(15_000);
    const e = (await pending) as ApiError;
    expect(e.status).toBe(0); // "cannot reach the server", not "signed out"
    expect(hasSession()).toBe(true);
    expect(loadRefreshToken()).toBe(first.refresh_token);
    expect(gw.presented().length).toBeGreaterThan(2);
    // Once the gateway answers again, the next call refreshes and goes through.
    gw.hiccups.length = 0;
    await expect(api.accounts()).resolves.toEqual([{ id: "acc-1" }]);
    expect(gw.reused).toBe(false);
  });
});

describe("a refresh token is never presented twice", () => {
  it("not when a call refused with the old token is answered after the rotation", async () => {
    const gw = new FakeGateway();
    const first = gw.login();
    gw.access.delete(first.access_token);
    const answer = deferred();
    gw.gates.set("/v1/accounts", answer.promise);
    const call = api.accounts(); // sent with the old token, its 401 held back
    await tick();
    await refreshSession(); // meanwhile the token is rotated
    answer.release();
    await expect(call).resolves.toEqual([{ id: "acc-1" }]);
    // The late 401 retried with the new token instead of refreshing again.
    expect(gw.presented()).toEqual([first.refresh_token]);
    expect(gw.calls.filter((c) => c.url === "/v1/accounts").map((c) => c.bearer)).toEqual([
      `Bearer ${first.access_token}`,
      `Bearer g${gw.id}-access-2`,
    ]);
    expect(gw.reused).toBe(false);
  });

  it("not when a 401 arrives while the background refresh is under way", async () => {
    const gw = new FakeGateway();
    const first = gw.login();
    const gate = deferred();
    gw.gates.set("/v1/auth/refresh", gate.promise);
    const stop = keepSessionFresh();
    await tick(720_000); // the background refresh is on its way
    gw.access.delete(first.access_token);
    const call = api.accounts(); // 401: joins that refresh
    await tick();
    gate.release();
    await expect(call).resolves.toEqual([{ id: "acc-1" }]);
    expect(gw.presented()).toEqual([first.refresh_token]);
    expect(gw.reused).toBe(false);
    stop();
  });

  it("not after an answer that used it up but was unusable", async () => {
    const gw = new FakeGateway();
    const first = gw.login();
    gw.access.delete(first.access_token);
    gw.hiccups.push(json(200, { unexpected: true }));
    await expect(api.accounts()).rejects.toBeInstanceOf(ApiError);
    expect(hasSession()).toBe(false);
    // Even if the same token were stored again, it is not sent.
    saveTokens({ access_token: "x", expires_in: 1, refresh_token: first.refresh_token, refresh_expires_in: 3600 });
    await expect(refreshSession()).rejects.toMatchObject({ status: 401 });
    expect(gw.presented()).toEqual([first.refresh_token]);
  });

  it("not by timers, bursts of 401s and sign-out together, over hours", async () => {
    const gw = new FakeGateway();
    gw.login();
    const stop = keepSessionFresh();
    for (let round = 0; round < 6; round++) {
      await tick(600_000);
      const token = loadToken();
      if (token) gw.access.delete(token);
      await Promise.all(Array.from({ length: 4 }, () => api.accounts()));
    }
    await signOut();
    await tick(3_600_000);
    const presented = gw.presented();
    expect(presented.length).toBeGreaterThanOrEqual(6);
    expect(new Set(presented).size).toBe(presented.length);
    expect(gw.reused).toBe(false);
    stop();
  });
});

describe("sign out", () => {
  it("revokes the login with the refresh token and clears everything", async () => {
    const gw = new FakeGateway();
    const first = gw.login();
    const done = signOut();
    // Signed out here at once, whatever the gateway answers.
    expect(hasSession()).toBe(false);
    expect(storage.getItem("transfer.token")).toBeNull();
    await done;
    expect(gw.calls).toEqual([
      { url: "/v1/auth/logout", method: "POST", bearer: `Bearer ${first.access_token}`, body: { refresh_token: first.refresh_token } },
    ]);
    expect(gw.refresh.get(first.refresh_token)).toBe("revoked");
  });

  it("signs out locally even when the gateway cannot be reached", async () => {
    new FakeGateway().login();
    vi.stubGlobal("fetch", vi.fn(async () => { throw new TypeError("Failed to fetch"); }));
    await expect(signOut()).resolves.toBeUndefined();
    expect(hasSession()).toBe(false);
    expect(storage.getItem("transfer.token")).toBeNull();
  });

  it("with an expired access token, gets one to revoke the login with", async () => {
    const gw = new FakeGateway();
    const first = gw.login();
    vi.setSystemTime(T0 + 20 * 60_000);
    await signOut();
    expect(hasSession()).toBe(false);
    expect(gw.presented()).toEqual([first.refresh_token]);
    const logout = gw.calls.find((c) => c.url === "/v1/auth/logout");
    expect(logout?.bearer).toBe(`Bearer g${gw.id}-access-2`);
    expect(gw.refresh.get(`g${gw.id}-refresh-2`)).toBe("revoked");
  });

  it("does not bring the session back when a refresh under way answers afterwards", async () => {
    const gw = new FakeGateway();
    gw.login();
    const gate = deferred();
    gw.gates.set("/v1/auth/refresh", gate.promise);
    const refreshing = refreshSession().catch((x) => x);
    await tick();
    await signOut(); // the refresh was processed, its answer is on the way
    gate.release();
    expect(((await refreshing) as ApiError).status).toBe(401);
    expect(hasSession()).toBe(false);
    expect(storage.getItem("transfer.token")).toBeNull();
    expect(gw.presented()).toHaveLength(1);
    // The logout named the login with the old token: the new one is revoked too.
    expect(gw.refresh.get(`g${gw.id}-refresh-2`)).toBe("revoked");
  });
});

describe("logs", () => {
  it("never print a token", async () => {
    const spies = (["log", "info", "warn", "error", "debug"] as const).map((m) => vi.spyOn(console, m));
    const gw = new FakeGateway();
    const first = gw.login();
    gw.access.delete(first.access_token);
    const stop = keepSessionFresh();
    await api.accounts();
    await tick(720_000);
    gw.refresh.set(loadRefreshToken() ?? "", "revoked");
    await tick(720_000);
    await api.accounts().catch(() => undefined);
    await signOut();
    stop();
    const printed = spies.flatMap((s) => s.mock.calls.flat().map(String)).join("\n");
    expect(printed).not.toMatch(/access-|refresh-/);
  });
});
