// Polling with backoff: one request at a time, the next one `intervalMs` after
// the previous answer; after failures the wait doubles (capped), honouring
// Retry-After; nothing is fetched while the tab is hidden, and it fetches at
// once when the tab is shown again.

import { ApiError } from "./api";
import type { Timers } from "./live";

export const POLL_MAX_DELAY_MS = 30_000;

/**
 * Wait before the next poll: `intervalMs` while things work; after `failures`
 * failures in a row, intervalMs·2^failures capped at `maxMs`, but never less
 * than the server's Retry-After (seconds).
 */
export function nextPollDelay(
  intervalMs: number,
  failures: number,
  retryAfterSeconds: number | null = null,
  maxMs = POLL_MAX_DELAY_MS,
): number {
  const base =
    failures <= 0 ? intervalMs : Math.min(Math.max(maxMs, intervalMs), intervalMs * 2 ** Math.min(failures, 20));
  const ra = retryAfterSeconds != null && retryAfterSeconds > 0 ? Math.min(retryAfterSeconds, 300) * 1000 : 0;
  return Math.max(base, ra);
}

/** Errors that polling again will not fix: signed out, not allowed, gone. */
export function isFatalPollError(e: unknown): boolean {
  return e instanceof ApiError && (e.status === 401 || e.status === 403 || e.status === 404 || e.status === 405);
}

export interface PollerOptions<T> {
  fetch: () => Promise<T>;
  intervalMs: number;
  maxDelayMs?: number;
  onData: (value: T) => void;
  onError: (error: unknown, failures: number) => void;
  /** Stop for good after this answer (e.g. a batch that is done). */
  until?: (value: T) => boolean;
  isFatal?: (error: unknown) => boolean;
  /** Called once when polling ends by itself (`until` or a fatal error). */
  onStop?: () => void;
  isHidden?: () => boolean;
  timers?: Timers;
}

export class Poller<T> {
  failures = 0;
  stopped = false;
  private inFlight = false;
  private paused = false;
  private timer: unknown = null;
  private readonly o: PollerOptions<T>;
  private readonly timers: Timers;

  constructor(options: PollerOptions<T>) {
    this.o = options;
    this.timers = options.timers ?? {
      setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
      clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
    };
  }

  start(): void {
    this.stopped = false;
    void this.tick();
  }

  stop(): void {
    this.stopped = true;
    this.clear();
  }

  /** Fetch now (a "refresh" button, or the tab became visible). */
  now(): void {
    if (this.stopped) return;
    this.clear();
    void this.tick();
  }

  /** The tab was hidden or shown. */
  visibilityChanged(): void {
    if (this.stopped) return;
    if (this.hidden()) {
      this.clear();
      this.paused = true;
    } else if (this.paused) {
      this.paused = false;
      this.now();
    }
  }

  get isPaused(): boolean {
    return this.paused;
  }

  private hidden(): boolean {
    return this.o.isHidden ? this.o.isHidden() : false;
  }

  private clear(): void {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }

  private async tick(): Promise<void> {
    this.timer = null;
    if (this.stopped || this.inFlight) return;
    if (this.hidden()) {
      this.paused = true;
      return;
    }
    this.inFlight = true;
    let retryAfter: number | null = null;
    try {
      const value = await this.o.fetch();
      if (this.stopped) return;
      this.failures = 0;
      this.o.onData(value);
      if (this.o.until?.(value)) {
        this.stopped = true;
        this.o.onStop?.();
        return;
      }
    } catch (e) {
      if (this.stopped) return;
      this.failures += 1;
      const fatal = (this.o.isFatal ?? isFatalPollError)(e);
      if (fatal) this.stopped = true;
      this.o.onError(e, this.failures);
      if (fatal) {
        this.o.onStop?.();
        return;
      }
      if (e instanceof ApiError) retryAfter = e.retryAfter;
    } finally {
      this.inFlight = false;
    }
    if (this.stopped) return;
    if (this.hidden()) {
      this.paused = true;
      return;
    }
    const delay = nextPollDelay(this.o.intervalMs, this.failures, retryAfter, this.o.maxDelayMs);
    this.timer = this.timers.setTimeout(() => void this.tick(), delay);
  }
}
