import { afterEach, describe, expect, it, vi } from "vitest";
import { api, ApiError, problemMessage } from "./api";
import { loadToken, onTokenChange, saveToken } from "./auth";

function respond(status: number, body: unknown, headers: Record<string, string> = {}) {
  return vi.fn(async () =>
    new Response(body === null ? null : JSON.stringify(body), {
      status,
      headers: { "content-type": status >= 400 ? "application/problem+json" : "application/json", ...headers },
    }),
  );
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("api", () => {
  it("sends the bearer token and the Idempotency-Key, and reads the replay header", async () => {
    saveToken("t0k", 60);
    const fetchMock = respond(200, { id: "x", status: "committed" }, { "Idempotent-Replayed": "true" });
    vi.stubGlobal("fetch", fetchMock);
    const body = { from_account: "a", to_account: "b", amount: "1.00", currency: "EUR" };
    const r = await api.createTransfer(body, "key-1");
    expect(r.replayed).toBe(true);
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    const h = new Headers(init.headers);
    expect(url).toBe("/v1/transfers");
    expect(h.get("Authorization")).toBe("Bearer t0k");
    expect(h.get("Idempotency-Key")).toBe("key-1");
    expect(JSON.parse(init.body as string)).toEqual(body);
  });

  it("uploads a batch as text/csv with its key and mode, and reads the replay header", async () => {
    saveToken("t0k", 60);
    const fetchMock = respond(202, { id: "b1", count: 3, mode: "atomic" }, { "Idempotent-Replayed": "true" });
    vi.stubGlobal("fetch", fetchMock);
    const r = await api.submitBatch("from_account,to_account,amount,currency\n", "batch-sha256-ab", "atomic");
    expect(r).toEqual({ batch: { id: "b1", count: 3, mode: "atomic" }, replayed: true });
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    const h = new Headers(init.headers);
    expect(url).toBe("/v1/batches?mode=atomic");
    expect(init.method).toBe("POST");
    expect(h.get("Content-Type")).toBe("text/csv");
    expect(h.get("Idempotency-Key")).toBe("batch-sha256-ab");
    expect(init.body).toBe("from_account,to_account,amount,currency\n");
  });

  it("builds the ops and batch read URLs", async () => {
    saveToken("t0k", 60);
    const fetchMock = respond(200, { items: [], next_cursor: null });
    vi.stubGlobal("fetch", fetchMock);
    await api.opsTransfers(50);
    await api.opsStats(60);
    await api.opsTimeline("t/1");
    await api.batchPayments("b1", { status: "rejected", cursor: "50" });
    await api.batchPayments("b1");
    const urls = fetchMock.mock.calls.map((c) => (c as unknown as [string])[0]);
    expect(urls).toEqual([
      "/v1/ops/transfers?limit=50",
      "/v1/ops/stats?window_seconds=60",
      "/v1/ops/transfers/t%2F1/timeline",
      "/v1/batches/b1/payments?status=rejected&limit=50&cursor=50",
      "/v1/batches/b1/payments?limit=50",
    ]);
  });

  it("signs out on any 401", async () => {
    saveToken("t0k", 60);
    const changed = vi.fn();
    const off = onTokenChange(changed);
    vi.stubGlobal("fetch", respond(401, { title: "Unauthorized", status: 401 }));
    await expect(api.accounts()).rejects.toBeInstanceOf(ApiError);
    expect(loadToken()).toBeNull();
    expect(changed).toHaveBeenCalled();
    off();
  });

  it("keeps problem details, field errors and Retry-After", async () => {
    saveToken("t0k", 60);
    vi.stubGlobal(
      "fetch",
      respond(
        422,
        { title: "Invalid request", detail: "see errors", status: 422, errors: [{ field: "amount", message: "must be greater than zero" }] },
      ),
    );
    const e = (await api.transfers().catch((x) => x)) as ApiError;
    expect(e.status).toBe(422);
    expect(e.problem.errors?.[0].field).toBe("amount");
    expect(e.retryable).toBe(false);

    vi.stubGlobal("fetch", respond(503, { title: "Service unavailable", detail: "retry shortly" }, { "Retry-After": "2" }));
    const u = (await api.transfers().catch((x) => x)) as ApiError;
    expect(u.retryAfter).toBe(2);
    expect(u.retryable).toBe(true);
    expect(problemMessage(u)).toBe("Service unavailable: retry shortly Try again in 2 s.");
  });

  it("reports a network failure as status 0 (retryable)", async () => {
    saveToken("t0k", 60);
    vi.stubGlobal("fetch", vi.fn(async () => { throw new TypeError("Failed to fetch"); }));
    const e = (await api.me().catch((x) => x)) as ApiError;
    expect(e.status).toBe(0);
    expect(e.retryable).toBe(true);
    expect(problemMessage(e)).toMatch(/Cannot reach the server/);
  });

  it("forgets an expired token", () => {
    saveToken("old", 10, Date.now() - 20_000);
    expect(loadToken()).toBeNull();
  });
});
