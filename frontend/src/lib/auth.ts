// The access token lives in memory and in sessionStorage (so a reload of this
// tab keeps the session, a new tab or a closed browser does not).

const TOKEN_KEY = "transfer.token";

interface Stored {
  token: string;
  expiresAt: number; // epoch ms
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

export function loadToken(now = Date.now()): string | null {
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
  if (current && current.expiresAt <= now) {
    clearToken();
    return null;
  }
  return current?.token ?? null;
}

/** When the current token expires (epoch ms), or null without one. */
export function tokenExpiresAt(): number | null {
  return loadToken() ? (current?.expiresAt ?? null) : null;
}

export function saveToken(token: string, expiresInSeconds: number, now = Date.now()): void {
  current = { token, expiresAt: now + Math.max(0, expiresInSeconds) * 1000 };
  storage()?.setItem(TOKEN_KEY, JSON.stringify(current));
  listeners.forEach((l) => l());
}

export function clearToken(): void {
  const had = current !== null || storage()?.getItem(TOKEN_KEY) != null;
  current = null;
  storage()?.removeItem(TOKEN_KEY);
  if (had) listeners.forEach((l) => l());
}

/** Called whenever the token is saved or cleared (e.g. on any 401). */
export function onTokenChange(l: () => void): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}
