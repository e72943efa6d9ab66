// The live event stream from the notifier: connects, remembers the last event
// id, reconnects with exponential backoff and jitter, and resumes with `since`.

import type { Hold } from "./holds";
import type { Account, Transfer } from "./types";

export type LiveStatus = "connecting" | "connected" | "reconnecting" | "offline";

export type LiveEvent =
  | { type: "transfer.updated"; id?: string; transfer: Transfer }
  | { type: "account.updated"; id?: string; account: Account }
  | { type: "hold.updated"; id?: string; hold: Hold };

export const BACKOFF_BASE_MS = 500;
export const BACKOFF_MAX_MS = 15_000;

/**
 * Delay before reconnect attempt number `attempt` (0-based): 0.5 s doubling up
 * to 15 s, with "equal jitter" (between half and all of it) so that many tabs
 * do not reconnect in lockstep after a restart.
 */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const capped = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, Math.min(attempt, 30)));
  const r = Math.min(1, Math.max(0, random()));
  return Math.round(capped / 2 + (capped / 2) * r);
}

/**
 * Delay before resending request attempt `attempt` (0-based) that failed
 * transiently: the server's Retry-After (capped at 30 s) when it gave one,
 * else the backoff of the next attempt.
 */
export function retryDelay(retryAfterSecs: number | null | undefined, attempt: number): number {
  return retryAfterSecs != null ? Math.min(retryAfterSecs, 30) * 1000 : backoffDelay(attempt + 1);
}

export function buildWsUrl(base: string, token: string, since: string | null): string {
  const sep = base.includes("?") ? "&" : "?";
  let url = `${base}${sep}access_token=${encodeURIComponent(token)}`;
  if (since) url += `&since=${encodeURIComponent(since)}`;
  return url;
}

/** The parts of the browser WebSocket this module uses (lets tests fake it). */
export interface SocketLike {
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code?: number }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  close(code?: number, reason?: string): void;
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface LiveOptions {
  url: string;
  token: () => string | null;
  onEvent: (e: LiveEvent) => void;
  onStatus: (s: LiveStatus) => void;
  /** Refetch everything: the server said so, or we could not resume. */
  onResync: () => void;
  /** Several connects failed before opening: maybe the token expired. */
  onConnectFailures?: (count: number) => void;
  createSocket?: (url: string) => SocketLike;
  timers?: Timers;
  random?: () => number;
  isOnline?: () => boolean;
}

export class LiveConnection {
  lastId: string | null = null;
  status: LiveStatus = "connecting";
  attempt = 0;
  private socket: SocketLike | null = null;
  private timer: unknown = null;
  private stopped = false;
  private failuresBeforeOpen = 0;
  private resyncOnOpen = true; // first connect: close the fetch-vs-subscribe race
  private readonly o: LiveOptions;
  private readonly timers: Timers;

  constructor(options: LiveOptions) {
    this.o = options;
    this.timers = options.timers ?? {
      setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
      clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
    };
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    const s = this.socket;
    this.socket = null;
    if (s) {
      s.onopen = s.onmessage = s.onerror = s.onclose = null;
      try {
        s.close(1000, "bye");
      } catch {
        /* already closed */
      }
    }
  }

  /** The browser came back online: try now instead of waiting out the backoff. */
  online(): void {
    if (this.stopped || this.status === "connected") return;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    this.attempt = 0;
    if (!this.socket) this.connect();
  }

  /**
   * A new access token (a refresh, see session.ts). Each connect reads the
   * current token, so an open socket needs nothing: the server closes it when
   * its token expires and the reconnect presents the new one. But a
   * connection left without a token (it expired before the refresh came)
   * waits for no timer: connect now.
   */
  tokenChanged(): void {
    if (this.stopped || this.socket || this.status === "connected") return;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    this.connect();
  }

  /**
   * The browser went offline: a socket that looks open is likely dead and
   * would linger until TCP gives up, so drop it now; `online()` reconnects
   * with `since` and gets what was missed.
   */
  offline(): void {
    if (this.stopped) return;
    const s = this.socket;
    if (s) {
      this.socket = null;
      s.onopen = s.onmessage = s.onerror = s.onclose = null;
      try {
        s.close(1000, "offline");
      } catch {
        /* already closed */
      }
    }
    this.setStatus("offline");
    if (this.timer === null) this.scheduleReconnect();
  }

  private setStatus(s: LiveStatus): void {
    if (this.status === s) return;
    this.status = s;
    this.o.onStatus(s);
  }

  private connect(): void {
    if (this.stopped) return;
    this.timer = null;
    const token = this.o.token();
    if (!token) {
      this.setStatus("offline");
      return;
    }
    const since = this.lastId;
    const create = this.o.createSocket ?? ((u: string) => new WebSocket(u) as unknown as SocketLike);
    let socket: SocketLike;
    try {
      socket = create(buildWsUrl(this.o.url, token, since));
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    let opened = false;
    socket.onopen = () => {
      opened = true;
      this.failuresBeforeOpen = 0;
      this.attempt = 0;
      this.setStatus("connected");
      if (this.resyncOnOpen) {
        this.resyncOnOpen = false;
        this.o.onResync();
      }
    };
    socket.onmessage = (ev) => this.handle(ev.data);
    socket.onerror = () => {
      /* a close event follows */
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.stopped) return;
      if (!opened) {
        this.failuresBeforeOpen += 1;
        // A `since` the server no longer accepts (restart, new epoch) makes
        // every resume fail: drop it and refetch once connected.
        if (since && this.failuresBeforeOpen >= 2) {
          this.lastId = null;
          this.resyncOnOpen = true;
        }
        if (this.failuresBeforeOpen >= 3) this.o.onConnectFailures?.(this.failuresBeforeOpen);
      }
      this.scheduleReconnect();
    };
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    const online = this.o.isOnline ? this.o.isOnline() : true;
    this.setStatus(online ? "reconnecting" : "offline");
    const delay = backoffDelay(this.attempt, this.o.random);
    this.attempt += 1;
    this.timer = this.timers.setTimeout(() => this.connect(), delay);
  }

  private handle(data: unknown): void {
    if (typeof data !== "string") return;
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(data) as Record<string, unknown>;
    } catch {
      return;
    }
    if (!msg || typeof msg !== "object") return;
    if (typeof msg.id === "string" && msg.id) this.lastId = msg.id;
    switch (msg.type) {
      case "ready":
        break;
      case "resync":
        this.o.onResync();
        break;
      case "transfer.updated":
        if (msg.transfer && typeof msg.transfer === "object")
          this.o.onEvent({ type: "transfer.updated", id: msg.id as string, transfer: msg.transfer as Transfer });
        break;
      case "account.updated":
        if (msg.account && typeof msg.account === "object")
          this.o.onEvent({ type: "account.updated", id: msg.id as string, account: msg.account as Account });
        break;
      case "hold.updated":
        if (msg.hold && typeof msg.hold === "object")
          this.o.onEvent({ type: "hold.updated", id: msg.id as string, hold: msg.hold as Hold });
        break;
      default:
        break; // unknown types are ignored (forward compatible)
    }
  }
}
