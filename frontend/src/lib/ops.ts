// Display helpers for the ops flow view: stage timings, percentiles, stages.

import type { OpsStats, Percentiles, StatsStage } from "./types";

/**
 * A duration in milliseconds as text, with precision that fits its size:
 * "0.42 ms", "3.4 ms", "57 ms", "1234 ms", "12.3 s". Missing → "—".
 * Locale-independent so columns line up (and tests are stable).
 */
export function formatMs(ms: number | null | undefined): string {
  if (ms == null || !Number.isFinite(ms)) return "—";
  const a = Math.abs(ms);
  const sign = ms < 0 ? "-" : "";
  if (a >= 10_000) return `${sign}${(a / 1000).toFixed(1)} s`;
  if (a >= 100) return `${sign}${Math.round(a)} ms`;
  if (a >= 10) return `${sign}${a.toFixed(1).replace(/\.0$/, "")} ms`;
  if (a >= 1) return `${sign}${a.toFixed(1)} ms`;
  if (a === 0) return "0 ms";
  return `${sign}${a.toFixed(2)} ms`;
}

/** Throughput: "12.5/s", "0.05/s", "0/s". */
export function formatRate(perSecond: number | null | undefined): string {
  if (perSecond == null || !Number.isFinite(perSecond) || perSecond <= 0) return "0/s";
  if (perSecond < 1) return `${perSecond.toFixed(2).replace(/0$/, "")}/s`;
  if (perSecond < 100) return `${perSecond.toFixed(1).replace(/\.0$/, "")}/s`;
  return `${Math.round(perSecond)}/s`;
}

export const STATS_STAGES: readonly { key: StatsStage; label: string; what: string }[] = [
  { key: "publish", label: "Publish", what: "accepted → stored in the stream" },
  { key: "queue", label: "Queue", what: "stored → picked up by a processor" },
  { key: "apply", label: "Apply", what: "picked up → written to the ledger" },
  { key: "end_to_end", label: "End to end", what: "accepted → committed or rejected" },
];

export interface PercentileRow {
  key: StatsStage;
  label: string;
  what: string;
  p50: string;
  p90: string;
  p99: string;
  known: boolean;
}

/** One row per stage; a stage without data in the window shows dashes. */
export function percentileRows(stats: OpsStats | null): PercentileRow[] {
  return STATS_STAGES.map(({ key, label, what }) => {
    const p: Percentiles | null | undefined = stats?.latency_ms?.[key];
    return {
      key,
      label,
      what,
      known: !!p,
      p50: formatMs(p?.p50),
      p90: formatMs(p?.p90),
      p99: formatMs(p?.p99),
    };
  });
}

export const STAGE_WORDS: Readonly<Record<string, { title: string; step: string }>> = Object.freeze({
  accepted: { title: "Accepted", step: "the gateway took the request" },
  published: { title: "Published", step: "the stream stored the command" },
  received: { title: "Received", step: "a processor picked it up" },
  committed: { title: "Committed", step: "the ledger wrote it" },
  rejected: { title: "Rejected", step: "the ledger refused it" },
  notified: { title: "Notified", step: "handed to the live updates" },
});

export function stageWords(stage: string): { title: string; step: string } {
  return STAGE_WORDS[stage] ?? { title: stage.charAt(0).toUpperCase() + stage.slice(1), step: "" };
}

/** What the time since the previous stage measures, by the stage reached. */
export function stageGapLabel(stage: string): string {
  switch (stage) {
    case "published":
      return "publish";
    case "received":
      return "queue wait";
    case "committed":
    case "rejected":
      return "apply";
    case "notified":
      return "notify";
    default:
      return "";
  }
}

/** "+3.4 ms" after the previous stage, "start" for the first one. */
export function formatGap(ms: number | null | undefined): string {
  return ms == null ? "start" : `+${formatMs(ms)}`;
}

/** A W3C trace id (32 hex) for display: the full id, grouped for reading. */
export function isTraceId(s: string | null | undefined): s is string {
  return !!s && /^[0-9a-f]{32}$/i.test(s);
}
