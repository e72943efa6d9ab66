// The session's tokens live in memory and in sessionStorage (so a reload of
// this tab keeps the session, a new tab or a closed browser does not): the
// short-lived access token and the refresh token that gets the next one
// (see session.ts). Nothing here logs a token.

const TOKEN_KEY = "transfer.token";

interface Stored {
  token: string;
  expiresAt: number; // epoch ms
  /** When the access token was issued (epoch ms): the refresh is planned from its lifetime. */
  issuedAt?: number;
  /** Single use: the gateway rotates it on every refresh. */
  refreshToken?: string;
  refreshExpiresAt?: number; // epoch ms; the login's end, refreshing does not extend it
}

/** What login and refresh answer. */
export interface TokenPair {
  access_token: string;
  expires_in: number;
  refresh_token?: string | null;
  refresh_expires_in?: number | null;
}

/** The session's timings, without the tokens. */
export interface SessionInfo {
  issuedAt: number;
  expiresAt: number;
  /** Null when there is no usable refresh token: the session ends with the access token. */
  refreshExpiresAt: number | null;
}

let current: Stored | null = null;
const listeners = new Set<() => void>();

function storage(): Storage | null {
  try {
    return typeof sessionStorage === "undefined" ? null : sessionStorage;
  } catch {
    return null;
  }
}

function refreshValid(s: Stored, now: number): boolean {
  return typeof s.refreshToken === "string" && s.refreshToken !== "" && (s.refreshExpiresAt ?? 0) > now;
}

/**
 * The stored session, or null. Forgets it once nothing in it is usable any
 * more: an expired access token alone does not end it while the refresh
 * token can still get a new one (a tab reloaded after the laptop slept).
 */
function load(now: number): Stored | null {
  if (!current) {
    const raw = storage()?.getItem(TOKEN_KEY);
    if (raw) {
      try {
        const parsed = JSON.parse(raw) as Stored;
        if (typeof parsed.token === "string") current = parsed;
      } catch {
        storage()?.removeItem(TOKEN_KEY);
      }
    }
  }
  if (current && current.expiresAt <= now && !refreshValid(current, now)) {
    clearToken();
    return null;
  }
  return current;
}

/** The access token while it is valid, else null. */
export function loadToken(now = Date.now()): string | null {
  const s = load(now);
  return s && s.expiresAt > now ? s.token : null;
}

/** The refresh token while it is valid, else null. */
export function loadRefreshToken(now = Date.now()): string | null {
  const s = load(now);
  return s && refreshValid(s, now) ? (s.refreshToken as string) : null;
}

/** Signed in: a valid access token, or a refresh token to get one. */
export function hasSession(now = Date.now()): boolean {
  return load(now) !== null;
}

export function sessionInfo(now = Date.now()): SessionInfo | null {
  const s = load(now);
  if (!s) return null;
  const lifetimeGuess = 15 * 60_000; // sessions saved before issuedAt was stored
  return {
    issuedAt: s.issuedAt ?? s.expiresAt - lifetimeGuess,
    expiresAt: s.expiresAt,
    refreshExpiresAt: refreshValid(s, now) ? (s.refreshExpiresAt as number) : null,
  };
}

/** Saves what login or refresh answered, replacing the whole session. */
export function saveTokens(pair: TokenPair, now = Date.now()): void {
  const expiresIn = Number.isFinite(pair.expires_in) ? pair.expires_in : 3600;
  const next: Stored = { token: pair.access_token, expiresAt: now + Math.max(0, expiresIn) * 1000, issuedAt: now };
  if (pair.refresh_token) {
    next.refreshToken = pair.refresh_token;
    next.refreshExpiresAt = now + Math.max(0, pair.refresh_expires_in ?? 0) * 1000;
  }
  current = next;
  storage()?.setItem(TOKEN_KEY, JSON.stringify(current));
  listeners.forEach((l) => l());
}

/** An access token alone (no refresh token): the session ends when it expires. */
export function saveToken(token: string, expiresInSeconds: number, now = Date.now()): void {
  saveTokens({ access_token: token, expires_in: expiresInSeconds }, now);
}

/**
 * The gateway refused this access token (401): treat it as expired, so that
 * calls and the background refresh renew it at once instead of sending it
 * again. Without a refresh token that ends the session, as any 401 did.
 */
export function expireToken(token: string, now = Date.now()): void {
  const s = load(now);
  if (!s || s.token !== token || s.expiresAt <= now) return;
  current = { ...s, expiresAt: now };
  if (!refreshValid(current, now)) {
    clearToken();
    return;
  }
  storage()?.setItem(TOKEN_KEY, JSON.stringify(current));
  listeners.forEach((l) => l());
}

export function clearToken(): void {
  const had = current !== null || storage()?.getItem(TOKEN_KEY) != null;
  current = null;
  storage()?.removeItem(TOKEN_KEY);
  if (had) listeners.forEach((l) => l());
}

/** Called whenever the session is saved (login, every refresh) or cleared. */
export function onTokenChange(l: () => void): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}
