import { describe, expect, it, vi } from "vitest";
import { ApiError } from "./api";
import { isFatalPollError, nextPollDelay, Poller } from "./poll";

function fakeTimers() {
  const queue: { fn: () => void; ms: number; id: number }[] = [];
  let next = 1;
  return {
    queue,
    setTimeout(fn: () => void, ms: number) {
      const id = next++;
      queue.push({ fn, ms, id });
      return id;
    },
    clearTimeout(h: unknown) {
      const i = queue.findIndex((t) => t.id === h);
      if (i >= 0) queue.splice(i, 1);
    },
    /** Runs the oldest timer; returns its delay. */
    async fire(): Promise<number> {
      const t = queue.shift();
      if (!t) throw new Error("no timer");
      t.fn();
      await flush();
      return t.ms;
    },
  };
}
const flush = () => new Promise((r) => setTimeout(r, 0));

describe("nextPollDelay", () => {
  it("polls at the interval while things work, doubles after failures up to the cap", () => {
    expect(nextPollDelay(2000, 0)).toBe(2000);
    expect(nextPollDelay(2000, 1)).toBe(4000);
    expect(nextPollDelay(2000, 2)).toBe(8000);
    expect(nextPollDelay(2000, 10)).toBe(30_000);
    expect(nextPollDelay(2000, 99, null, 10_000)).toBe(10_000);
  });
  it("never polls sooner than Retry-After", () => {
    expect(nextPollDelay(1000, 1, 5)).toBe(5000);
    expect(nextPollDelay(1000, 1, 0)).toBe(2000);
    expect(nextPollDelay(1000, 1, 100_000)).toBe(300_000);
  });
  it("knows which errors polling cannot fix", () => {
    expect(isFatalPollError(new ApiError(403, {}))).toBe(true);
    expect(isFatalPollError(new ApiError(401, {}))).toBe(true);
    expect(isFatalPollError(new ApiError(503, {}))).toBe(false);
    expect(isFatalPollError(new ApiError(0, {}))).toBe(false);
  });
});

describe("Poller", () => {
  it("polls after each answer, backs off on failures and recovers", async () => {
    const timers = fakeTimers();
    const results: (number | "err")[] = [1, "err", "err", 2];
    const fetch = vi.fn(async () => {
      const r = results.shift();
      if (r === "err") throw new ApiError(503, {});
      return r as number;
    });
    const onData = vi.fn();
    const onError = vi.fn();
    const p = new Poller({ fetch, intervalMs: 2000, onData, onError, timers });
    p.start();
    await flush();
    expect(onData).toHaveBeenLastCalledWith(1);
    expect(await timers.fire()).toBe(2000); // → error 1
    expect(onError).toHaveBeenLastCalledWith(expect.any(ApiError), 1);
    expect(await timers.fire()).toBe(4000); // → error 2
    expect(await timers.fire()).toBe(8000); // → 2
    expect(onData).toHaveBeenLastCalledWith(2);
    expect(p.failures).toBe(0);
    expect(timers.queue[0].ms).toBe(2000);
    p.stop();
    expect(timers.queue).toHaveLength(0);
  });

  it("honours Retry-After", async () => {
    const timers = fakeTimers();
    const p = new Poller({
      fetch: async () => {
        throw new ApiError(429, {}, 7);
      },
      intervalMs: 1000,
      onData: () => {},
      onError: () => {},
      timers,
    });
    p.start();
    await flush();
    expect(timers.queue[0].ms).toBe(7000);
    p.stop();
  });

  it("pauses while the tab is hidden and fetches at once when shown", async () => {
    const timers = fakeTimers();
    let hidden = false;
    const fetch = vi.fn(async () => 1);
    const p = new Poller({ fetch, intervalMs: 2000, onData: () => {}, onError: () => {}, timers, isHidden: () => hidden });
    p.start();
    await flush();
    expect(fetch).toHaveBeenCalledTimes(1);
    hidden = true;
    p.visibilityChanged();
    expect(p.isPaused).toBe(true);
    expect(timers.queue).toHaveLength(0); // nothing scheduled while hidden
    hidden = false;
    p.visibilityChanged();
    await flush();
    expect(fetch).toHaveBeenCalledTimes(2);
    expect(p.isPaused).toBe(false);
    expect(timers.queue).toHaveLength(1);
    p.stop();
  });

  it("stops when `until` says so, and on errors polling cannot fix", async () => {
    const timers = fakeTimers();
    const onStop = vi.fn();
    const values = [{ done: false }, { done: true }];
    const p = new Poller({
      fetch: async () => values.shift()!,
      intervalMs: 1000,
      until: (v) => v.done,
      onData: () => {},
      onError: () => {},
      onStop,
      timers,
    });
    p.start();
    await flush();
    await timers.fire();
    expect(p.stopped).toBe(true);
    expect(onStop).toHaveBeenCalledTimes(1);
    expect(timers.queue).toHaveLength(0);

    const q = new Poller({
      fetch: async () => {
        throw new ApiError(403, { title: "Forbidden" });
      },
      intervalMs: 1000,
      onData: () => {},
      onError: (_e, n) => expect(n).toBe(1),
      onStop,
      timers,
    });
    q.start();
    await flush();
    expect(q.stopped).toBe(true);
    expect(onStop).toHaveBeenCalledTimes(2);
    expect(timers.queue).toHaveLength(0);
  });

  it("never has two requests in flight (refresh while loading)", async () => {
    const timers = fakeTimers();
    let release: (v: number) => void = () => {};
    const fetch = vi.fn(() => new Promise<number>((r) => (release = r)));
    const p = new Poller({ fetch, intervalMs: 1000, onData: () => {}, onError: () => {}, timers });
    p.start();
    p.now();
    p.now();
    expect(fetch).toHaveBeenCalledTimes(1);
    release(1);
    await flush();
    expect(timers.queue).toHaveLength(1);
    p.stop();
  });
});
