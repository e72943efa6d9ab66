import { clearToken, saveTokens, type TokenPair } from "./auth";
import { ApiError, errorOf, parseRetryAfter, send } from "./http";
import { accessToken, renewAfter401 } from "./session";
import { filenameFrom, type StatementRange } from "./statement";
import type { Hold, HoldBody } from "./holds";
import type {
  Account,
  BalanceAsOf,
  Batch,
  BatchAccepted,
  BatchMode,
  BatchPayment,
  Entry,
  Me,
  OpsStats,
  OpsTransfer,
  Page,
  Statement,
  Timeline,
  Transfer,
  TransferBody,
} from "./types";

export { ApiError, parseRetryAfter };

export function problemMessage(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.status === 0) return "Cannot reach the server. Check your connection and try again.";
    const p = e.problem;
    const parts = [p.title, p.detail].filter((x): x is string => !!x && x.length > 0);
    let text = parts.length ? parts.join(": ") : `Request failed (HTTP ${e.status}).`;
    if (e.retryAfter != null) text += ` Try again in ${e.retryAfter} s.`;
    return text;
  }
  return e instanceof Error ? e.message : String(e);
}

export interface RawResult<T> {
  status: number;
  body: T;
  headers: Headers;
}

/**
 * One API call. An authenticated call uses the current access token
 * (refreshed first when it has expired); answered 401, it renews the token
 * once and is sent once more (bodies here are strings, so it can be); only
 * when that fails is the session over (back to the login form).
 */
export async function request<T>(
  path: string,
  init: RequestInit & { auth?: boolean } = {},
): Promise<RawResult<T>> {
  return finish<T>(await respond(path, init));
}

/** The answer to one call, whatever its body (see `request`). */
async function respond(path: string, init: RequestInit & { auth?: boolean }): Promise<Response> {
  const { auth = true, ...rest } = init;
  if (!auth) return send(path, rest, null);
  const token = await accessToken();
  let res = await send(path, rest, token);
  if (res.status === 401) {
    const refused = await errorOf(res);
    const fresh = await renewAfter401(token);
    if (!fresh) throw refused; // the session is over (cleared)
    res = await send(path, rest, fresh);
    // A token just issued and refused all the same: nothing more to try.
    if (res.status === 401) clearToken();
  }
  return res;
}

async function finish<T>(res: Response): Promise<RawResult<T>> {
  if (!res.ok) throw await errorOf(res);
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T, headers: res.headers };
}

const get = async <T>(path: string, auth = true) => (await request<T>(path, { auth })).body;

/** A JSON POST with an Idempotency-Key; the body and whether it was a replay. */
async function post<T>(path: string, body: unknown, idempotencyKey: string): Promise<{ body: T; replayed: boolean }> {
  const res = await request<T>(path, {
    method: "POST",
    headers: { "Idempotency-Key": idempotencyKey },
    body: JSON.stringify(body),
  });
  return { body: res.body, replayed: res.headers.get("Idempotent-Replayed") === "true" };
}

function query(params: Record<string, string | number | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v != null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}

export const api = {
  async login(username: string, password: string): Promise<void> {
    const { body } = await request<TokenPair>("/v1/auth/login", {
      method: "POST",
      auth: false,
      body: JSON.stringify({ username, password }),
    });
    saveTokens(body); // the access token and the refresh token that renews it
  },
  me: () => get<Me>("/v1/me"),
  config: () => get<{ ws_url?: string | null; atomic_max?: number }>("/v1/config", false),
  accounts: () => get<Account[]>("/v1/accounts"),
  account: (id: string) => get<Account>(`/v1/accounts/${encodeURIComponent(id)}`),
  entries: (id: string, cursor?: string | null, limit = 20) =>
    get<Page<Entry>>(`/v1/accounts/${encodeURIComponent(id)}/entries${query({ limit, cursor })}`),
  balanceAsOf: (id: string, asOf: string) =>
    get<BalanceAsOf>(`/v1/accounts/${encodeURIComponent(id)}/balance${query({ as_of: asOf })}`),
  statement: (id: string, range: StatementRange) =>
    get<Statement>(`/v1/accounts/${encodeURIComponent(id)}/statement${query({ ...range, format: "json" })}`),
  /** The statement as the server's CSV file, with the name it gives it. */
  async statementCsv(id: string, range: StatementRange, fallbackName: string): Promise<{ blob: Blob; filename: string }> {
    const res = await respond(`/v1/accounts/${encodeURIComponent(id)}/statement${query({ ...range, format: "csv" })}`, {});
    if (!res.ok) throw await errorOf(res);
    return { blob: await res.blob(), filename: filenameFrom(res.headers.get("Content-Disposition"), fallbackName) };
  },
  transfers: (cursor?: string | null, limit = 20) =>
    get<Page<Transfer>>(`/v1/transfers${query({ limit, cursor })}`),
  transfer: (id: string) => get<Transfer>(`/v1/transfers/${encodeURIComponent(id)}`),
  async createTransfer(body: TransferBody, idempotencyKey: string): Promise<{ transfer: Transfer; replayed: boolean }> {
    const res = await request<Transfer>("/v1/transfers", {
      method: "POST",
      headers: { "Idempotency-Key": idempotencyKey },
      body: JSON.stringify(body),
    });
    return { transfer: res.body, replayed: res.headers.get("Idempotent-Replayed") === "true" };
  },

  // holds (two-phase) and reversals
  holds: (account: string, status?: string | null, limit = 50) =>
    get<{ items: Hold[] }>(`/v1/holds${query({ account, status, limit })}`),
  createHold: (body: HoldBody, idempotencyKey: string) => post<Hold>("/v1/holds", body, idempotencyKey),
  captureHold: (id: string, amount: string | null, idempotencyKey: string) =>
    post<Hold>(`/v1/holds/${encodeURIComponent(id)}/capture`, amount ? { amount } : {}, idempotencyKey),
  voidHold: (id: string, idempotencyKey: string) =>
    post<Hold>(`/v1/holds/${encodeURIComponent(id)}/void`, {}, idempotencyKey),
  reverseTransfer: (id: string, body: { amount?: string; reason: string }, idempotencyKey: string) =>
    post<Transfer>(`/v1/transfers/${encodeURIComponent(id)}/reversals`, body, idempotencyKey),

  // ops role
  opsTransfers: (limit = 50) => get<OpsTransfer[]>(`/v1/ops/transfers${query({ limit })}`),
  opsStats: (windowSeconds = 60) => get<OpsStats>(`/v1/ops/stats${query({ window_seconds: windowSeconds })}`),
  opsTimeline: (id: string) => get<Timeline>(`/v1/ops/transfers/${encodeURIComponent(id)}/timeline`),

  // batch role
  async submitBatch(
    csv: string,
    idempotencyKey: string,
    mode: BatchMode = "independent",
  ): Promise<{ batch: BatchAccepted; replayed: boolean }> {
    const res = await request<BatchAccepted>(`/v1/batches${query({ mode })}`, {
      method: "POST",
      headers: { "Idempotency-Key": idempotencyKey, "Content-Type": "text/csv" },
      body: csv,
    });
    return { batch: res.body, replayed: res.headers.get("Idempotent-Replayed") === "true" };
  },
  batch: (id: string) => get<Batch>(`/v1/batches/${encodeURIComponent(id)}`),
  batchPayments: (id: string, opts: { status?: string | null; limit?: number; cursor?: string | null } = {}) =>
    get<Page<BatchPayment>>(
      `/v1/batches/${encodeURIComponent(id)}/payments${query({ status: opts.status, limit: opts.limit ?? 50, cursor: opts.cursor })}`,
    ),
};

/** Where the live events come from: the configured URL, else same origin. */
export function resolveWsUrl(configured: string | null | undefined, loc: { protocol: string; host: string }): string {
  const url = (configured ?? "").trim();
  if (url) return url;
  return `${loc.protocol === "https:" ? "wss:" : "ws:"}//${loc.host}/v1/ws`;
}
