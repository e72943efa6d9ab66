import { describe, expect, it } from "vitest";
import { ApiError } from "./api";
import {
  batchIdempotencyKey,
  batchProgress,
  batchUploadText,
  firstPage,
  groupLineErrors,
  isBatchApiMissing,
  pagerCursor,
  pagerNext,
  pagerPrevious,
  recallBatch,
  rememberBatch,
} from "./batch";
import { isValidIdempotencyKey } from "./idempotency";
import { sha256Hex, sha256HexSync } from "./sha256";

// Node 20 has WebCrypto as a global, like the browser.
const subtle = globalThis.crypto.subtle;

describe("SHA-256 and the batch Idempotency-Key", () => {
  it("matches the standard test vectors, with and without crypto.subtle", async () => {
    const empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    expect(sha256HexSync("")).toBe(empty);
    expect(sha256HexSync("abc")).toBe(abc);
    expect(await sha256Hex("abc", null)).toBe(abc); // plain http: no crypto.subtle
    expect(await sha256Hex("abc", subtle)).toBe(abc);
    // multi-block input and non-ASCII text agree with the platform's digest
    for (const text of ["a".repeat(55), "a".repeat(56), "a".repeat(64), "x".repeat(1000), "Zürich €5,\n日本"]) {
      expect(sha256HexSync(text)).toBe(await sha256Hex(text, subtle));
    }
  });

  it("derives the same valid key for the same file, another for another file", async () => {
    const csv = "from_account,to_account,amount,currency,reference\na,b,1.00,EUR,x\n";
    const k1 = await batchIdempotencyKey(csv, subtle);
    const k2 = await batchIdempotencyKey(csv, null);
    const k3 = await batchIdempotencyKey(csv.replace("1.00", "1.01"), subtle);
    expect(k1).toBe(k2);
    expect(k1).not.toBe(k3);
    expect(k1).toMatch(/^batch-sha256-[0-9a-f]{64}$/);
    expect(isValidIdempotencyKey(k1)).toBe(true);
  });

  it("sends the text without a byte-order mark", () => {
    expect(batchUploadText("\ufeffa,b")).toBe("a,b");
    expect(batchUploadText("a,b")).toBe("a,b");
  });
});

describe("batchProgress", () => {
  const b = (count: number, committed: number, rejected: number, done = false) => ({
    count,
    committed,
    rejected,
    pending: count - committed - rejected,
    done,
  });
  it("counts processed payments and says what happened", () => {
    const p = batchProgress(b(3, 1, 0));
    expect(p).toMatchObject({ processed: 1, total: 3, percent: 33, done: false });
    expect(p.text).toBe("1 of 3 payments processed (1 committed, 0 rejected, 2 pending).");
    const d = batchProgress(b(3, 2, 1, true));
    expect(d).toMatchObject({ processed: 3, percent: 100, done: true });
    expect(d.text).toBe("Done: 3 payments, 2 committed, 1 rejected.");
  });
  it("shows 100% only when done, and copes with odd numbers", () => {
    expect(batchProgress(b(1000, 999, 0)).percent).toBe(99);
    expect(batchProgress(b(3, 3, 0)).done).toBe(true);
    expect(batchProgress({ count: 2, committed: 5, rejected: 0, pending: 0, done: false }).processed).toBe(2);
    expect(batchProgress({ count: 0, committed: 0, rejected: 0, pending: 0, done: true }).percent).toBe(100);
    expect(batchProgress(null)).toMatchObject({ percent: 0, done: false });
    expect(batchProgress(b(1, 1, 0, true)).text).toBe("Done: 1 payment, 1 committed, 0 rejected.");
  });
});

describe("batch API answers", () => {
  it("tells a missing batch API from a failure", () => {
    expect(isBatchApiMissing(new ApiError(404, {}))).toBe(true);
    expect(isBatchApiMissing(new ApiError(405, {}))).toBe(true);
    expect(isBatchApiMissing(new ApiError(422, {}))).toBe(false);
    expect(isBatchApiMissing(new ApiError(0, {}))).toBe(false);
    expect(isBatchApiMissing(new Error("x"))).toBe(false);
  });
  it("groups per-line errors by line, file-level ones first", () => {
    const groups = groupLineErrors({
      status: 422,
      errors: [
        { line: 3, field: "amount", message: "too many decimals" },
        { line: 2, field: "to_account", message: "does not exist" },
        { line: 3, field: "currency", message: "unknown" },
        { field: "Idempotency-Key", message: "required" },
      ],
    });
    expect(groups.map((g) => g.line)).toEqual([null, 2, 3]);
    expect(groups[2].messages).toEqual([
      { field: "amount", message: "too many decimals" },
      { field: "currency", message: "unknown" },
    ]);
    expect(groupLineErrors(undefined)).toEqual([]);
  });
});

describe("cursor pager", () => {
  it("goes forward with next_cursor and back through remembered cursors", () => {
    let p = firstPage();
    expect(pagerCursor(p)).toBeNull();
    p = pagerNext(p, "50");
    p = pagerNext(p, "100");
    expect(pagerCursor(p)).toBe("100");
    p = pagerPrevious(p);
    expect(pagerCursor(p)).toBe("50");
    p = pagerNext(p, "100");
    expect(p.cursors).toEqual([null, "50", "100"]);
    expect(pagerNext(p, null)).toBe(p);
    expect(pagerPrevious(firstPage()).index).toBe(0);
  });
  it("remembers the watched batch across a reload", () => {
    const m = new Map<string, string>();
    const store = {
      getItem: (k: string) => m.get(k) ?? null,
      setItem: (k: string, v: string) => void m.set(k, v),
      removeItem: (k: string) => void m.delete(k),
    };
    rememberBatch(store, "0f0f0f0f-0000-4000-8000-000000000001");
    expect(recallBatch(store)).toBe("0f0f0f0f-0000-4000-8000-000000000001");
    store.setItem("transfer.lastBatch", "junk");
    expect(recallBatch(store)).toBeNull();
    rememberBatch(store, null);
    expect(recallBatch(store)).toBeNull();
    expect(recallBatch(null)).toBeNull();
  });
});
