import { clearToken, loadToken, saveToken } from "./auth";
import type {
  Account,
  Batch,
  BatchAccepted,
  BatchMode,
  BatchPayment,
  Entry,
  Me,
  OpsStats,
  OpsTransfer,
  Page,
  Problem,
  Timeline,
  Transfer,
  TransferBody,
} from "./types";

/** An HTTP answer that is not a success, or no answer at all (status 0). */
export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem;
  readonly retryAfter: number | null;

  constructor(status: number, problem: Problem, retryAfter: number | null = null) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem;
    this.retryAfter = retryAfter;
  }

  /** True when nothing reached the server or it could not answer for sure. */
  get retryable(): boolean {
    return this.status === 0 || this.status === 408 || this.status === 409 ||
      this.status === 425 || this.status === 429 || this.status >= 500;
  }
}

export function parseRetryAfter(value: string | null, now = Date.now()): number | null {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - now) / 1000));
}

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

async function readProblem(res: Response): Promise<Problem> {
  try {
    const text = await res.text();
    if (!text) return { status: res.status, title: res.statusText };
    const body = JSON.parse(text) as Problem;
    return typeof body === "object" && body !== null ? body : { status: res.status };
  } catch {
    return { status: res.status, title: res.statusText || `HTTP ${res.status}` };
  }
}

export interface RawResult<T> {
  status: number;
  body: T;
  headers: Headers;
}

export async function request<T>(
  path: string,
  init: RequestInit & { auth?: boolean } = {},
): Promise<RawResult<T>> {
  const headers = new Headers(init.headers);
  headers.set("Accept", "application/json");
  if (init.body != null && !headers.has("Content-Type")) headers.set("Content-Type", "application/json");
  const auth = init.auth ?? true;
  if (auth) {
    const token = loadToken();
    if (!token) {
      clearToken();
      throw new ApiError(401, { title: "Signed out", detail: "Please sign in again." });
    }
    headers.set("Authorization", `Bearer ${token}`);
  }
  let res: Response;
  try {
    res = await fetch(path, { ...init, headers, credentials: "same-origin", cache: "no-store" });
  } catch (e) {
    throw new ApiError(0, { title: "Network error", detail: e instanceof Error ? e.message : String(e) });
  }
  if (!res.ok) {
    const problem = await readProblem(res);
    // Any 401 on an authenticated call: the session is over, back to login.
    if (res.status === 401 && auth) clearToken();
    throw new ApiError(res.status, problem, parseRetryAfter(res.headers.get("Retry-After")));
  }
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T, headers: res.headers };
}

const get = async <T>(path: string, auth = true) => (await request<T>(path, { auth })).body;

function query(params: Record<string, string | number | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v != null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}

export const api = {
  async login(username: string, password: string): Promise<void> {
    const { body } = await request<{ access_token: string; expires_in: number }>("/v1/auth/login", {
      method: "POST",
      auth: false,
      body: JSON.stringify({ username, password }),
    });
    saveToken(body.access_token, body.expires_in ?? 3600);
  },
  me: () => get<Me>("/v1/me"),
  config: () => get<{ ws_url?: string | null }>("/v1/config", false),
  accounts: () => get<Account[]>("/v1/accounts"),
  account: (id: string) => get<Account>(`/v1/accounts/${encodeURIComponent(id)}`),
  entries: (id: string, cursor?: string | null, limit = 20) =>
    get<Page<Entry>>(`/v1/accounts/${encodeURIComponent(id)}/entries${query({ limit, cursor })}`),
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
