import type { LiveStatus } from "../lib/live";

const WORDS: Record<LiveStatus | "browser-offline", string> = {
  connecting: "Connecting…",
  connected: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline",
  "browser-offline": "Offline",
};

export function ConnectionIndicator({ status, online }: { status: LiveStatus; online: boolean }) {
  const state = online ? status : "offline";
  return (
    <span
      className={`conn conn-${state}`}
      data-testid="connection-status"
      data-state={state}
      role="status"
      aria-label={`Live updates: ${WORDS[state]}`}
      title={state === "connected" ? "Updates arrive live" : "Live updates are paused; data may be stale"}
    >
      <span className="conn-dot" aria-hidden="true" />
      {WORDS[state]}
    </span>
  );
}
