import { useCallback, useEffect, useRef, useState } from "react";
import { Poller } from "./poll";

export interface PollState<T> {
  data: T | null;
  error: unknown;
  failures: number;
  /** Polling ended (done, or an error polling cannot fix). */
  stopped: boolean;
  /** The tab is hidden: polling waits. */
  paused: boolean;
  refresh: () => void;
}

/**
 * Polls `fetch` every `intervalMs` while `key` stays the same (a new key
 * starts over). Pauses while the tab is hidden.
 */
export function usePoll<T>(
  fetch: (() => Promise<T>) | null,
  intervalMs: number,
  key: string,
  until?: (value: T) => boolean,
): PollState<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [failures, setFailures] = useState(0);
  const [stopped, setStopped] = useState(false);
  const [paused, setPaused] = useState(false);
  const poller = useRef<Poller<T> | null>(null);
  const fetchRef = useRef(fetch);
  fetchRef.current = fetch;
  const untilRef = useRef(until);
  untilRef.current = until;
  const enabled = fetch !== null;

  useEffect(() => {
    setData(null);
    setError(null);
    setFailures(0);
    setStopped(false);
    if (!enabled) return;
    const isHidden = () => typeof document !== "undefined" && document.visibilityState === "hidden";
    const p = new Poller<T>({
      fetch: () => fetchRef.current!(),
      intervalMs,
      isHidden,
      until: (v) => untilRef.current?.(v) ?? false,
      onData: (v) => {
        setData(v);
        setError(null);
        setFailures(0);
      },
      onError: (e, n) => {
        setError(e);
        setFailures(n);
      },
      onStop: () => setStopped(true),
    });
    poller.current = p;
    const onVisibility = () => {
      p.visibilityChanged();
      setPaused(isHidden());
    };
    document.addEventListener("visibilitychange", onVisibility);
    p.start();
    return () => {
      document.removeEventListener("visibilitychange", onVisibility);
      p.stop();
      poller.current = null;
    };
  }, [key, intervalMs, enabled]);

  const refresh = useCallback(() => {
    const p = poller.current;
    if (p && !p.stopped) p.now();
  }, []);

  return { data, error, failures, stopped, paused, refresh };
}
