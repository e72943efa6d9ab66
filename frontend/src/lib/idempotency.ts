// One Idempotency-Key per transfer the person means to make. The key is kept
// in sessionStorage from the first try until the server gives a final answer,
// so a double click, a reload or a network retry re-sends the SAME key and the
// server makes the transfer at most once.

import type { TransferBody } from "./types";

export const PENDING_KEY = "transfer.pendingSubmission";

export interface PendingSubmission {
  key: string;
  body: TransferBody;
  startedAt: string;
}

export interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export function newIdempotencyKey(): string {
  if (typeof crypto !== "undefined" && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  // Old browsers: 128 random bits, hex (still visible ASCII, 32 chars).
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** 1–255 visible ASCII characters, as the server requires. */
export function isValidIdempotencyKey(key: string): boolean {
  return /^[\x21-\x7e]{1,255}$/.test(key);
}

function canonical(body: TransferBody): string {
  return JSON.stringify([
    body.from_account.toLowerCase(),
    body.to_account.toLowerCase(),
    body.amount,
    body.currency,
    body.reference ?? null,
  ]);
}

export function sameBody(a: TransferBody, b: TransferBody): boolean {
  return canonical(a) === canonical(b);
}

export function loadPending(store: KeyValueStore): PendingSubmission | null {
  const raw = store.getItem(PENDING_KEY);
  if (!raw) return null;
  try {
    const p = JSON.parse(raw) as PendingSubmission;
    if (p && typeof p.key === "string" && isValidIdempotencyKey(p.key) && p.body && typeof p.body.amount === "string") return p;
  } catch {
    /* fall through */
  }
  store.removeItem(PENDING_KEY);
  return null;
}

/**
 * The key for sending `body`: the stored one when the same transfer is still
 * awaiting a final answer, otherwise a new one (stored before it is sent).
 */
export function keyFor(
  body: TransferBody,
  store: KeyValueStore,
  generate: () => string = newIdempotencyKey,
  now: () => Date = () => new Date(),
): PendingSubmission {
  const existing = loadPending(store);
  if (existing && sameBody(existing.body, body)) return existing;
  const fresh: PendingSubmission = { key: generate(), body, startedAt: now().toISOString() };
  store.setItem(PENDING_KEY, JSON.stringify(fresh));
  return fresh;
}

/** Forget the key once the server answered for good (only if it is still ours). */
export function clearPending(store: KeyValueStore, key?: string): void {
  const existing = loadPending(store);
  if (!existing) return;
  if (key === undefined || existing.key === key) store.removeItem(PENDING_KEY);
}

/**
 * Whether an HTTP status is a final answer for a submission. Success and
 * client errors are final; no answer (0), timeouts, "in progress", throttling
 * and server errors are not: the same key must be sent again.
 */
export function isFinalStatus(status: number): boolean {
  if (status >= 200 && status < 300) return true;
  if (status === 0 || status === 408 || status === 409 || status === 425 || status === 429) return false;
  if (status === 401) return false; // sign in again, then resend the same key
  return status >= 400 && status < 500;
}
