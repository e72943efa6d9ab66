import { useCallback, useEffect, useRef, useState } from "react";
import { api, ApiError, problemMessage } from "../lib/api";
import { formatDate, formatTime, shortId } from "../lib/format";
import { formatMoney } from "../lib/money";
import { formatGap, formatMs, formatRate, percentileRows, stageGapLabel, stageWords } from "../lib/ops";
import { nextPollDelay } from "../lib/poll";
import type { OpsStats, OpsTransfer, Timeline } from "../lib/types";
import { usePoll, type PollState } from "../lib/usePoll";
import { CopyButton } from "./CopyButton";
import { ReasonText, StatusChip } from "./StatusChip";

const FLOW_MS = 2000;
const STATS_MS = 2000;
const LIMIT = 50;
const WINDOW_S = 60;

function pollNote<T>(p: PollState<T>, intervalMs: number, what: string): { text: string; bad: boolean } {
  if (p.error) {
    if (p.error instanceof ApiError && p.error.status === 403)
      return { text: `Not allowed: ${what} is for the ops role.`, bad: true };
    const retryAfter = p.error instanceof ApiError ? p.error.retryAfter : null;
    const wait = Math.round(nextPollDelay(intervalMs, p.failures, retryAfter) / 1000);
    return {
      text: p.stopped
        ? `Could not load ${what}: ${problemMessage(p.error)}`
        : `Could not refresh ${what}: ${problemMessage(p.error)} Trying again in ${wait} s.`,
      bad: true,
    };
  }
  if (p.paused) return { text: "Paused while this tab is hidden.", bad: false };
  return { text: "", bad: false };
}

/** The ops role's live view of the flow: recent transfers across all users, stage timings, stats, timelines. */
export function OpsFlow() {
  const flowFetch = useCallback(() => api.opsTransfers(LIMIT), []);
  const statsFetch = useCallback(() => api.opsStats(WINDOW_S), []);
  const flow = usePoll<OpsTransfer[]>(flowFetch, FLOW_MS, "flow");
  const stats = usePoll<OpsStats>(statsFetch, STATS_MS, "stats");
  const [selected, setSelected] = useState<string | null>(null);
  const [updatedAt, setUpdatedAt] = useState<Date | null>(null);

  useEffect(() => {
    if (flow.data) setUpdatedAt(new Date());
  }, [flow.data]);

  const note = pollNote(flow, FLOW_MS, "the flow");
  const rows = flow.data ?? [];

  return (
    <>
      <StatsPanel poll={stats} />
      <section className="panel flow" aria-labelledby="flow-title" data-testid="ops-flow">
        <div className="panel-head">
          <h2 id="flow-title">Live flow</h2>
          <p className="muted small" data-testid="flow-updated">
            {flow.paused
              ? "Paused while this tab is hidden"
              : updatedAt
                ? `Updated ${formatTime(updatedAt.toISOString())} · every ${FLOW_MS / 1000} s`
                : "Loading…"}
          </p>
        </div>
        <p className="muted small">
          The last {LIMIT} processed transfers of all users, newest first. Open one (click, or Enter on its id) for
          its timeline.
        </p>
        {note.text && (
          <p className={note.bad ? "error" : "muted"} role={note.bad ? "alert" : undefined} data-testid="flow-error">
            {note.text}
          </p>
        )}
        {flow.data && rows.length === 0 && <p className="empty">No processed transfers yet.</p>}
        {rows.length > 0 && (
          <div className="table-wrap">
            <table className="entries flow-table">
              <caption className="sr-only">
                Recent transfers with their stage timings in milliseconds, newest first
              </caption>
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">Transfer</th>
                  <th scope="col" className="num">Amount</th>
                  <th scope="col">Status</th>
                  <th scope="col" className="num col-stage" title="accepted → stored in the stream">Publish</th>
                  <th scope="col" className="num col-stage" title="stored → picked up by a processor">Queue</th>
                  <th scope="col" className="num col-stage" title="picked up → written to the ledger">Apply</th>
                  <th scope="col" className="num" title="accepted → committed or rejected">Total</th>
                  <th scope="col" className="col-trace">Trace id</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((t) => (
                  <tr
                    key={t.id}
                    className={`clickable${selected === t.id ? " selected" : ""}`}
                    data-testid="flow-row"
                    data-transfer-id={t.id}
                    data-status={t.status}
                    data-total-ms={t.total_ms}
                    onClick={() => setSelected(t.id)}
                  >
                    <td>
                      <time dateTime={t.processed_at} title={formatDate(t.processed_at)}>
                        {formatTime(t.processed_at)}
                      </time>
                    </td>
                    <td>
                      <button
                        type="button"
                        className="link-button mono"
                        title={t.id}
                        aria-label={`Timeline of transfer ${t.id}`}
                        aria-expanded={selected === t.id}
                        aria-controls="timeline-panel"
                        onClick={(e) => {
                          e.stopPropagation();
                          setSelected(t.id);
                        }}
                        data-testid="flow-open"
                      >
                        {shortId(t.id)}
                      </button>
                    </td>
                    <td className="num">{formatMoney(t.amount, t.currency)}</td>
                    <td>
                      <FlowKind t={t} />
                      <StatusChip status={t.status} />
                      {t.status === "rejected" && (
                        <>
                          {" "}
                          <ReasonText reason={t.reason} />
                        </>
                      )}
                    </td>
                    <td className="num col-stage">{formatMs(t.publish_ms)}</td>
                    <td className="num col-stage">{formatMs(t.queue_ms)}</td>
                    <td className="num col-stage">{formatMs(t.apply_ms)}</td>
                    <td className="num" data-testid="flow-total">
                      <strong>{formatMs(t.total_ms)}</strong>
                    </td>
                    <td className="col-trace">
                      {t.trace_id ? (
                        <span className="trace">
                          <code className="mono" title={t.trace_id}>
                            {t.trace_id}
                          </code>
                          <CopyButton text={t.trace_id} label={`Copy trace id of transfer ${shortId(t.id)}`} />
                        </span>
                      ) : (
                        <span className="muted">—</span>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      {selected && <TimelinePanel id={selected} onClose={() => setSelected(null)} />}
    </>
  );
}

function StatsPanel({ poll }: { poll: PollState<OpsStats> }) {
  const s = poll.data;
  const note = pollNote(poll, STATS_MS, "the stats");
  return (
    <section className="panel" aria-labelledby="stats-title" data-testid="ops-stats">
      <h2 id="stats-title">Last {s?.window_seconds ?? WINDOW_S} seconds</h2>
      {note.text && <p className={note.bad ? "error" : "muted"}>{note.text}</p>}
      {!s && !poll.error && <p className="muted">Loading…</p>}
      {s && (
        <>
          <dl className="stats">
            <div>
              <dt>Throughput</dt>
              <dd data-testid="stats-rate">{formatRate(s.per_second)}</dd>
            </div>
            <div>
              <dt>Transfers</dt>
              <dd>{s.transfers}</dd>
            </div>
            <div>
              <dt>Committed</dt>
              <dd className="credit">{s.committed}</dd>
            </div>
            <div>
              <dt>Rejected</dt>
              <dd className={s.rejected ? "debit" : ""}>{s.rejected}</dd>
            </div>
          </dl>
          <div className="table-wrap">
            <table className="entries stats-table">
              <caption className="sr-only">Latency per stage: 50th, 90th and 99th percentile</caption>
              <thead>
                <tr>
                  <th scope="col">Stage</th>
                  <th scope="col" className="num">p50</th>
                  <th scope="col" className="num">p90</th>
                  <th scope="col" className="num">p99</th>
                </tr>
              </thead>
              <tbody>
                {percentileRows(s).map((r) => (
                  <tr key={r.key} data-testid="stats-row" data-stage={r.key}>
                    <th scope="row">
                      {r.label} <span className="muted small stage-what">{r.what}</span>
                    </th>
                    <td className="num">{r.p50}</td>
                    <td className="num">{r.p90}</td>
                    <td className="num">{r.p99}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}

/** A reversal or a hold's capture, marked in the flow (plain transfers: nothing). */
function FlowKind({ t }: { t: OpsTransfer }) {
  if (t.reverses)
    return (
      <span className="chip chip-other" data-testid="flow-kind" data-kind="reversal" title={`reverses ${t.reverses}`}>
        reversal
      </span>
    );
  if (t.hold_id)
    return (
      <span className="chip chip-other" data-testid="flow-kind" data-kind="capture" title={`captures hold ${t.hold_id}`}>
        capture
      </span>
    );
  return null;
}

function TimelinePanel({ id, onClose }: { id: string; onClose: () => void }) {
  const openedAt = useRef(Date.now());
  useEffect(() => {
    openedAt.current = Date.now();
  }, [id]);
  const fetchTimeline = useCallback(() => api.opsTimeline(id), [id]);
  // The "notified" stage can land a moment after the ledger: refresh until it
  // is there (or for 15 s at most).
  const until = useCallback(
    (t: Timeline) => t.stages.some((s) => s.stage === "notified") || Date.now() - openedAt.current > 15_000,
    [],
  );
  const poll = usePoll<Timeline>(fetchTimeline, 1000, id, until);
  const headingRef = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    headingRef.current?.focus();
  }, [id]);
  const t = poll.data;

  return (
    <section
      className="panel timeline"
      id="timeline-panel"
      aria-labelledby="timeline-title"
      data-testid="timeline"
      data-transfer-id={id}
    >
      <div className="panel-head">
        <h2 id="timeline-title" ref={headingRef} tabIndex={-1}>
          Timeline of <span className="mono">{shortId(id)}</span>
        </h2>
        <button type="button" className="secondary" onClick={onClose}>
          Close
        </button>
      </div>
      <p className="mono small">{id}</p>
      {t?.reverses && (
        <p data-testid="timeline-reverses">
          Reversal of <span className="mono" title={t.reverses}>{shortId(t.reverses)}</span>
          {t.reversal_reason && <> — {t.reversal_reason}</>}
        </p>
      )}
      {t?.hold_id && (
        <p data-testid="timeline-hold">
          Capture of hold <span className="mono" title={t.hold_id}>{shortId(t.hold_id)}</span>
        </p>
      )}
      {poll.error != null && !t && (
        <p className="error" role="alert">
          {poll.error instanceof ApiError && poll.error.status === 404
            ? "This transfer has no timeline (not processed yet, or unknown)."
            : `Could not load the timeline: ${problemMessage(poll.error)}`}
        </p>
      )}
      {!t && poll.error == null && <p className="muted" role="status">Loading…</p>}
      {t && (
        <>
          <p className="transfer-status">
            <StatusChip status={t.status} />
            {t.status === "rejected" && <ReasonText reason={t.reason} />}
            <span>
              Total: <strong data-testid="timeline-total">{formatMs(t.total_ms)}</strong>
              {t.stages.length > 1 && (
                <span className="muted small">
                  {" "}
                  (accepted → {stageWords(t.stages[t.stages.length - 1].stage).title.toLowerCase()})
                </span>
              )}
            </span>
          </p>
          <ol className="stages" data-testid="timeline-stages">
            {t.stages.map((s) => {
              const words = stageWords(s.stage);
              const gap = stageGapLabel(s.stage);
              return (
                <li key={s.stage} className={`stage stage-${s.stage}`} data-testid="timeline-stage" data-stage={s.stage}>
                  <span className="stage-name">{words.title}</span>
                  <span className="stage-gap num">
                    {formatGap(s.ms_since_previous)}
                    {s.ms_since_previous != null && gap && <span className="muted small"> ({gap})</span>}
                  </span>
                  <span className="muted small stage-step">{words.step}</span>
                  <time className="muted small stage-at" dateTime={s.at}>
                    {formatTime(s.at)}
                  </time>
                </li>
              );
            })}
          </ol>
          <div className="trace-box">
            <p>
              Trace id:{" "}
              {t.trace_id ? (
                <>
                  <code className="mono" data-testid="timeline-trace">
                    {t.trace_id}
                  </code>{" "}
                  <CopyButton text={t.trace_id} label="Copy the trace id" />
                </>
              ) : (
                <span className="muted">none recorded</span>
              )}
            </p>
            {t.trace_id && (
              <p className="hint">Search this trace id in Jaeger/Tempo to see every span of this transfer.</p>
            )}
          </div>
        </>
      )}
    </section>
  );
}
