// Keeps the customer signed in with the gateway's refresh tokens: the access
// token lives 15 minutes, a refresh trades the refresh token for a new pair.
//
// The gateway rotates refresh tokens: a refresh uses the presented one up, and
// presenting a used one again revokes the whole login (theft detection), as
// does sending one token in two concurrent refreshes. Hence:
// - one refresh at a time for the whole page (single flight): the timer and
//   any number of calls answered 401 share it;
// - a refresh token the gateway has answered for (200 or a refusal) is never
//   sent again (`spent`);
// - the same token goes out again only after an answer that says it was not
//   used up: 429 (the rate limiter refuses before the refresh runs), 5xx or
//   no answer at all. (Had a lost answer used it up after all, the retry ends
//   the login: the same as not retrying, since its new token was lost too.)
// No token is ever logged; errors carry the gateway's problem details only.

import { clearToken, expireToken, hasSession, loadRefreshToken, loadToken, onTokenChange, saveTokens, sessionInfo } from "./auth";
import type { SessionInfo, TokenPair } from "./auth";
import { ApiError, errorOf, send, signedOutError } from "./http";
import { backoffDelay, type Timers } from "./live";

export const REFRESH_PATH = "/v1/auth/refresh";
export const LOGOUT_PATH = "/v1/auth/logout";
/** Refresh at 80 % of the access token's lifetime… */
export const REFRESH_AT_FRACTION = 0.8;
/** …or earlier, when less than this is left. */
export const REFRESH_MIN_LEFT_MS = 60_000;
/** A call refreshes first when less than this is left: the token must outlive the trip to the server. */
export const EXPIRY_MARGIN_MS = 5_000;
/** With the access token expired (callers are waiting), how long a refresh keeps retrying. */
export const EXPIRED_RETRY_WINDOW_MS = 10_000;

/**
 * When to refresh an access token issued at `issuedAt` that expires at
 * `expiresAt` (epoch ms): at 80 % of its lifetime or 60 s before it expires,
 * whichever comes first, but not before half of it, so that a short-lived
 * token does not make refreshes back to back.
 */
export function refreshDueAt(issuedAt: number, expiresAt: number): number {
  const lifetime = Math.max(0, expiresAt - issuedAt);
  const due = Math.min(issuedAt + lifetime * REFRESH_AT_FRACTION, expiresAt - REFRESH_MIN_LEFT_MS);
  return Math.max(issuedAt + lifetime / 2, due);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Refresh tokens the gateway has answered for: used up or refused, never to be sent again. */
const spent = new Set<string>();

/** Retrying cannot change these answers. 408, 429 and 5xx are worth another try. */
function final(status: number): boolean {
  return status !== 408 && status !== 429 && status < 500;
}

/**
 * Trades `presented` for a new pair, retrying after 429 (waiting out
 * Retry-After), 5xx and network failures with backoff while `keepTrying()`
 * and the access token (or, once it has expired, a short window) leave time.
 * A refusal (401, or a 4xx about the request) throws a 401: the login is over.
 */
async function exchange(presented: string, keepTrying: () => boolean): Promise<TokenPair> {
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    let error: ApiError;
    try {
      const res = await send(REFRESH_PATH, { method: "POST", body: JSON.stringify({ refresh_token: presented }) }, null);
      if (res.ok) {
        spent.add(presented);
        const pair = (await res.json().catch(() => null)) as TokenPair | null;
        // Used up, and nothing usable came back: the login cannot continue.
        if (!pair || typeof pair.access_token !== "string" || !pair.access_token) throw signedOutError();
        return pair;
      }
      error = await errorOf(res);
      if (final(res.status)) {
        spent.add(presented);
        throw res.status === 401 ? error : signedOutError();
      }
    } catch (e) {
      if (!(e instanceof ApiError) || !e.retryable) throw e;
      error = e;
    }
    const wait = error.status === 429 && error.retryAfter != null ? error.retryAfter * 1000 : backoffDelay(attempt);
    const expiresAt = sessionInfo()?.expiresAt ?? 0;
    const deadline = Math.max(expiresAt - EXPIRY_MARGIN_MS, started + EXPIRED_RETRY_WINDOW_MS);
    if (!keepTrying() || Date.now() + wait > deadline) throw error;
    await sleep(wait);
    if (!keepTrying()) throw signedOutError();
  }
}

interface Flight {
  pair: TokenPair;
  /** False when the session was ended (or replaced) while the refresh was on its way. */
  saved: boolean;
}

let inflight: Promise<Flight> | null = null;

async function fly(): Promise<Flight> {
  const presented = loadRefreshToken();
  if (!presented || spent.has(presented)) {
    clearToken();
    throw signedOutError();
  }
  // Still this session's token: not signed out (or in again) meanwhile.
  const ours = () => loadRefreshToken() === presented;
  let pair: TokenPair;
  try {
    pair = await exchange(presented, ours);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401 && ours()) clearToken();
    throw e;
  }
  // Signed out while the answer was on its way: do not bring the session back.
  if (!ours()) return { pair, saved: false };
  saveTokens(pair);
  return { pair, saved: true };
}

/**
 * A new access token from the refresh token, shared by every caller while
 * one refresh is under way. Throws ApiError 401 when the session is over
 * (it is cleared, back to the login form), a retryable one when the gateway
 * could not be reached for now (the session is kept).
 */
export function refreshSession(): Promise<string> {
  inflight ??= fly().finally(() => {
    inflight = null;
  });
  return inflight.then((f) => {
    if (!f.saved) throw signedOutError();
    return f.pair.access_token;
  });
}

/**
 * The access token for a call: the current one, or a refreshed one when it
 * has (nearly) expired. Throws ApiError 401 when signed out.
 */
export async function accessToken(): Promise<string> {
  const now = Date.now();
  const token = loadToken(now);
  const info = sessionInfo(now);
  if (token && info && info.expiresAt - now > EXPIRY_MARGIN_MS) return token;
  if (!info || info.refreshExpiresAt === null) {
    if (token) return token; // nothing to renew it with: use it while it lasts
    clearToken();
    throw signedOutError();
  }
  try {
    return await refreshSession();
  } catch (e) {
    // Cannot refresh just now (no network, rate limited): a token that is
    // still valid does for this call.
    const still = loadToken();
    if (still && e instanceof ApiError && e.status !== 401) return still;
    throw e;
  }
}

/**
 * A call with `used` was answered 401. Returns the token to retry it with
 * once, or null when the session is over (then already cleared). Throws a
 * retryable ApiError when the refresh could not reach the gateway.
 */
export async function renewAfter401(used: string): Promise<string | null> {
  const current = loadToken();
  // Refreshed while this call was on its way: retry with the new token, no
  // second refresh.
  if (current && current !== used) return current;
  expireToken(used); // refused: as good as expired (shortens the refresh's retries too)
  if (!loadRefreshToken()) {
    clearToken();
    return null;
  }
  try {
    return await refreshSession();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return null;
    throw e;
  }
}

/**
 * Signs out here and now, then asks the gateway to revoke the login (best
 * effort: a failure there changes nothing here). Resolves when done.
 */
export async function signOut(): Promise<void> {
  let access = loadToken();
  let refresh = loadRefreshToken();
  const pending = inflight;
  clearToken();
  if (!refresh) return;
  try {
    if (!access) {
      // Logout needs a bearer token and ours has expired: get one with the
      // refresh token, from the refresh under way if there is one (its token
      // must not go out twice).
      const pair = pending
        ? (await pending).pair
        : spent.has(refresh)
          ? null
          : await exchange(refresh, () => false);
      if (!pair) return;
      access = pair.access_token;
      refresh = pair.refresh_token || refresh;
    }
    // Any token of the login names it, used or not.
    await send(LOGOUT_PATH, { method: "POST", body: JSON.stringify({ refresh_token: refresh }) }, access);
  } catch {
    /* best effort: signed out locally already */
  }
}

const defaultTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** When the keeper wakes next: the planned refresh, else the end of the session. */
function nextWake(info: SessionInfo | null): number | null {
  if (!info) return null;
  if (info.refreshExpiresAt !== null) {
    const due = refreshDueAt(info.issuedAt, info.expiresAt);
    if (due < info.refreshExpiresAt) return due;
  }
  // Nothing to refresh with (or the login ends first): the session ends
  // with the access token, and waking then clears it.
  return info.expiresAt;
}

/**
 * Refreshes the access token in the background before it expires, retries
 * with backoff when that fails for now, and signs out when nothing usable
 * is left. Returns the function that stops it.
 */
export function keepSessionFresh(options: { timers?: Timers; now?: () => number } = {}): () => void {
  const timers = options.timers ?? defaultTimers;
  const now = options.now ?? (() => Date.now());
  let timer: unknown = null;
  let failures = 0;
  let stopped = false;

  const disarm = () => {
    if (timer !== null) timers.clearTimeout(timer);
    timer = null;
  };
  const arm = (at: number) => {
    disarm();
    // Delays beyond 2^31-1 ms would fire at once.
    timer = timers.setTimeout(() => void wake(), Math.min(Math.max(0, at - now()), 2 ** 31 - 1));
  };
  const plan = () => {
    disarm();
    if (stopped) return;
    const at = nextWake(sessionInfo(now()));
    if (at !== null) arm(at);
  };
  const wake = async () => {
    timer = null;
    if (stopped) return;
    const t = now();
    const info = sessionInfo(t); // forgets a session with nothing usable left: signed out
    if (!info) return;
    if (info.refreshExpiresAt !== null && t >= refreshDueAt(info.issuedAt, info.expiresAt)) {
      try {
        await refreshSession(); // saving the new pair re-plans (onTokenChange)
        failures = 0;
      } catch (e) {
        if (stopped || !hasSession()) return; // the refresh was refused: signed out
        failures += 1;
        const retryAfter = e instanceof ApiError && e.retryAfter != null ? e.retryAfter * 1000 : 0;
        arm(now() + Math.max(retryAfter, backoffDelay(failures + 2)));
        return;
      }
    }
    plan();
  };

  const off = onTokenChange(plan);
  plan();
  return () => {
    stopped = true;
    off();
    disarm();
  };
}
