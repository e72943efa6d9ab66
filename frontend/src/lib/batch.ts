// Batch uploads: the Idempotency-Key derived from the file, progress, the
// server's per-line errors, and telling "no batch API here" from a failure.

import { ApiError } from "./api";
import { sha256Hex } from "./sha256";
import type { Batch, Problem } from "./types";

/**
 * The Idempotency-Key for a batch file: "batch-sha256-<hex of the text>".
 * The same file always gets the same key, so uploading it again (a retry, a
 * double click, a reload, or by mistake) never pays twice: the server answers
 * with the batch it already has. (Sending the same file in the other mode is
 * refused as a key reuse rather than paying again.) 77 visible ASCII chars.
 */
export async function batchIdempotencyKey(text: string, subtle?: SubtleCrypto | null): Promise<string> {
  return `batch-sha256-${await sha256Hex(text, subtle === undefined ? globalThis.crypto?.subtle : subtle)}`;
}

/** What is sent: the file's text, without a byte-order mark (the API reads the header literally). */
export function batchUploadText(fileText: string): string {
  return fileText.charCodeAt(0) === 0xfeff ? fileText.slice(1) : fileText;
}

export interface BatchProgress {
  processed: number;
  total: number;
  /** 0–100, whole numbers; 100 only when every payment is processed. */
  percent: number;
  done: boolean;
  text: string;
}

export function batchProgress(b: Pick<Batch, "count" | "pending" | "committed" | "rejected" | "done"> | null): BatchProgress {
  if (!b) return { processed: 0, total: 0, percent: 0, done: false, text: "Waiting for the first update…" };
  const total = Math.max(0, b.count);
  const processed = Math.min(total, Math.max(0, b.committed) + Math.max(0, b.rejected));
  const done = b.done || (total > 0 && processed >= total);
  let percent = total === 0 ? (done ? 100 : 0) : Math.floor((processed * 100) / total);
  if (!done && percent >= 100) percent = 99;
  if (done) percent = 100;
  const n = (k: number, one: string) => `${k} ${one}${k === 1 ? "" : "s"}`;
  const text = done
    ? `Done: ${n(total, "payment")}, ${b.committed} committed, ${b.rejected} rejected.`
    : `${processed} of ${n(total, "payment")} processed (${b.committed} committed, ${b.rejected} rejected, ${Math.max(0, b.pending)} pending).`;
  return { processed, total, percent, done, text };
}

/** The server does not offer `POST /v1/batches` (an older gateway). */
export function isBatchApiMissing(e: unknown): boolean {
  return e instanceof ApiError && (e.status === 404 || e.status === 405 || e.status === 501);
}

export interface LineErrors {
  line: number | null;
  messages: { field: string; message: string }[];
}

/** The 422 problem's `errors`, grouped by line (file-level ones first). */
export function groupLineErrors(problem: Problem | null | undefined): LineErrors[] {
  const byLine = new Map<number | null, LineErrors>();
  for (const e of problem?.errors ?? []) {
    const line = typeof e.line === "number" ? e.line : null;
    let g = byLine.get(line);
    if (!g) byLine.set(line, (g = { line, messages: [] }));
    g.messages.push({ field: e.field, message: e.message });
  }
  return [...byLine.values()].sort((a, b) => (a.line ?? -1) - (b.line ?? -1));
}

/**
 * A cursor pager: remembers the cursors of earlier pages so "Previous" works
 * with an API that only hands out "next".
 */
export interface PagerState {
  /** Cursor of each page seen so far; [0] is null (the first page). */
  cursors: (string | null)[];
  index: number;
}

export const firstPage = (): PagerState => ({ cursors: [null], index: 0 });

export function pagerNext(p: PagerState, nextCursor: string | null): PagerState {
  if (!nextCursor) return p;
  const cursors = p.cursors.slice(0, p.index + 1);
  cursors.push(nextCursor);
  return { cursors, index: p.index + 1 };
}

export function pagerPrevious(p: PagerState): PagerState {
  return p.index === 0 ? p : { cursors: p.cursors, index: p.index - 1 };
}

export const pagerCursor = (p: PagerState): string | null => p.cursors[p.index] ?? null;

const LAST_BATCH = "transfer.lastBatch";

/** The batch being watched survives a reload of the tab. */
export function rememberBatch(store: Pick<Storage, "setItem" | "removeItem"> | null, id: string | null): void {
  if (!store) return;
  try {
    if (id) store.setItem(LAST_BATCH, id);
    else store.removeItem(LAST_BATCH);
  } catch {
    /* storage full or blocked: only the reload convenience is lost */
  }
}

export function recallBatch(store: Pick<Storage, "getItem"> | null): string | null {
  try {
    const id = store?.getItem(LAST_BATCH) ?? null;
    return id && /^[0-9a-f-]{36}$/i.test(id) ? id : null;
  } catch {
    return null;
  }
}
