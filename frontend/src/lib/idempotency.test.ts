import { describe, expect, it } from "vitest";
import {
  clearPending, isFinalStatus, isValidIdempotencyKey, keyFor, loadPending, newIdempotencyKey, PENDING_KEY,
  type KeyValueStore,
} from "./idempotency";
import type { TransferBody } from "./types";

class MemoryStore implements KeyValueStore {
  map = new Map<string, string>();
  getItem(k: string) { return this.map.get(k) ?? null; }
  setItem(k: string, v: string) { this.map.set(k, v); }
  removeItem(k: string) { this.map.delete(k); }
}

const body: TransferBody = {
  from_account: "a11ce000-0000-4000-8000-000000000001",
  to_account: "b0b00000-0000-4000-8000-000000000001",
  amount: "1.00",
  currency: "EUR",
};

function counter() {
  let n = 0;
  return () => `key-${++n}`;
}

describe("idempotency keys", () => {
  it("generates valid keys", () => {
    const k = newIdempotencyKey();
    expect(isValidIdempotencyKey(k)).toBe(true);
    expect(newIdempotencyKey()).not.toBe(k);
    expect(isValidIdempotencyKey("")).toBe(false);
    expect(isValidIdempotencyKey("has space")).toBe(false);
    expect(isValidIdempotencyKey("x".repeat(256))).toBe(false);
  });

  it("reuses the same key for the same transfer until a final answer (double click, retry)", () => {
    const store = new MemoryStore();
    const gen = counter();
    const a = keyFor(body, store, gen);
    const b = keyFor({ ...body }, store, gen);
    expect(a.key).toBe("key-1");
    expect(b.key).toBe("key-1");
  });

  it("survives a reload: the key is read back from storage", () => {
    const store = new MemoryStore();
    const first = keyFor(body, store, counter());
    // a "reload": new module state, same sessionStorage
    const restored = loadPending(store);
    expect(restored?.key).toBe(first.key);
    expect(restored?.body).toEqual(body);
    expect(keyFor(body, store, () => "other").key).toBe(first.key);
  });

  it("treats the same account ids in other letter case as the same transfer", () => {
    const store = new MemoryStore();
    const a = keyFor(body, store, counter());
    expect(keyFor({ ...body, to_account: body.to_account.toUpperCase() }, store, () => "new").key).toBe(a.key);
  });

  it("uses a new key for a different transfer", () => {
    const store = new MemoryStore();
    const gen = counter();
    keyFor(body, store, gen);
    expect(keyFor({ ...body, amount: "2.00" }, store, gen).key).toBe("key-2");
    expect(keyFor({ ...body, amount: "2.00", reference: "x" }, store, gen).key).toBe("key-3");
  });

  it("forgets the key after a final answer, so the next transfer gets a new one", () => {
    const store = new MemoryStore();
    const gen = counter();
    const a = keyFor(body, store, gen);
    clearPending(store, a.key);
    expect(loadPending(store)).toBeNull();
    expect(keyFor(body, store, gen).key).toBe("key-2");
  });

  it("does not clear someone else's key", () => {
    const store = new MemoryStore();
    const gen = counter();
    keyFor(body, store, gen);
    clearPending(store, "not-mine");
    expect(loadPending(store)?.key).toBe("key-1");
  });

  it("drops corrupt stored data", () => {
    const store = new MemoryStore();
    store.setItem(PENDING_KEY, "{not json");
    expect(loadPending(store)).toBeNull();
    expect(store.getItem(PENDING_KEY)).toBeNull();
    store.setItem(PENDING_KEY, JSON.stringify({ key: "bad key", body }));
    expect(loadPending(store)).toBeNull();
  });

  it("knows which answers are final", () => {
    for (const s of [200, 201, 202, 400, 403, 404, 422]) expect(isFinalStatus(s)).toBe(true);
    for (const s of [0, 401, 408, 409, 425, 429, 500, 502, 503, 504]) expect(isFinalStatus(s)).toBe(false);
  });
});
