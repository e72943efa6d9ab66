// The HTTP building blocks shared by api.ts and session.ts (the token
// refresh), kept apart so that those two do not import each other.

import type { Problem } from "./types";

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

export async function readProblem(res: Response): Promise<Problem> {
  try {
    const text = await res.text();
    if (!text) return { status: res.status, title: res.statusText };
    const body = JSON.parse(text) as Problem;
    return typeof body === "object" && body !== null ? body : { status: res.status };
  } catch {
    return { status: res.status, title: res.statusText || `HTTP ${res.status}` };
  }
}

/** The ApiError of a failed answer: its problem details and Retry-After. */
export async function errorOf(res: Response): Promise<ApiError> {
  return new ApiError(res.status, await readProblem(res), parseRetryAfter(res.headers.get("Retry-After")));
}

/** The ApiError of a request that got no answer (status 0, retryable). */
export function networkError(e: unknown): ApiError {
  return new ApiError(0, { title: "Network error", detail: e instanceof Error ? e.message : String(e) });
}

/** The session is over: the page goes back to the login form. */
export function signedOutError(): ApiError {
  return new ApiError(401, { title: "Signed out", detail: "Please sign in again." });
}

/** One fetch with the options every API call uses; network failures become ApiError(0). */
export async function send(path: string, init: RequestInit, token: string | null): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("Accept", "application/json");
  if (init.body != null && !headers.has("Content-Type")) headers.set("Content-Type", "application/json");
  if (token) headers.set("Authorization", `Bearer ${token}`);
  try {
    return await fetch(path, { ...init, headers, credentials: "same-origin", cache: "no-store" });
  } catch (e) {
    throw networkError(e);
  }
}
