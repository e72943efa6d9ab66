import { useCallback, useEffect, useId, useRef, useState, type ChangeEvent } from "react";
import { api, ApiError, problemMessage, request } from "../lib/api";
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
  type LineErrors,
  type PagerState,
} from "../lib/batch";
import { parseBatch, serverHeaderProblem, type BatchParse } from "../lib/csv";
import { formatDate, shortId } from "../lib/format";
import { retryDelay } from "../lib/live";
import { formatMoney } from "../lib/money";
import type { Batch, BatchMode, BatchPayment, Page } from "../lib/types";
import { usePoll } from "../lib/usePoll";
import { ReasonText, StatusChip } from "./StatusChip";

const MAX_BYTES = 2 * 1024 * 1024;
const SHOWN = 200;
const AUTO_RETRIES = 3;
const PAGE_SIZE = 50;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type ApiState = "unknown" | "available" | "missing";

function session(): Storage | null {
  try {
    return typeof sessionStorage === "undefined" ? null : sessionStorage;
  } catch {
    return null;
  }
}

/**
 * Whether this server has the batch API, without side effects: a POST with no
 * Idempotency-Key (and an empty body) is refused before anything is read, with
 * 422 when the route exists and 404/405 when it does not.
 */
async function probeBatchApi(): Promise<ApiState> {
  try {
    await request("/v1/batches", { method: "POST", headers: { "Content-Type": "text/csv" }, body: "" });
    return "available"; // not expected: the server must ask for the key

  } catch (e) {
    if (isBatchApiMissing(e)) return "missing";
    if (e instanceof ApiError && e.status !== 0) return "available";
    return "unknown";
  }
}

/**
 * Batch payments: the file is read and checked here, line by line (the same
 * rules as the transfer form), then sent to `POST /v1/batches` with an
 * Idempotency-Key derived from the file, and followed until every payment is
 * processed.
 */
export function BatchPanel({ ownAccounts }: { ownAccounts?: readonly string[] }) {
  const uid = useId();
  const [fileName, setFileName] = useState<string | null>(null);
  const [fileText, setFileText] = useState<string | null>(null);
  const [result, setResult] = useState<BatchParse | null>(null);
  const [mode, setMode] = useState<BatchMode>("independent");
  const [apiState, setApiState] = useState<ApiState>("unknown");
  const [busy, setBusy] = useState(false);
  const [sendError, setSendError] = useState<string | null>(null);
  const [canResend, setCanResend] = useState(false);
  const [lineErrors, setLineErrors] = useState<LineErrors[]>([]);
  const [batchId, setBatchId] = useState<string | null>(() => recallBatch(session()));
  const [notice, setNotice] = useState<string | null>(null);
  // The gateway's limit, from /v1/config; unknown until it answers (the
  // gateway refuses an oversized atomic batch anyway).
  const [atomicMax, setAtomicMax] = useState<number | null>(null);
  const inFlight = useRef(false);

  useEffect(() => {
    let cancelled = false;
    api
      .config()
      .then((c) => {
        if (!cancelled && typeof c?.atomic_max === "number") setAtomicMax(c.atomic_max);
      })
      .catch(() => undefined);
    return () => {
      cancelled = true;
    };
  }, []);

  useEffect(() => {
    let cancelled = false;
    void probeBatchApi().then((s) => {
      if (!cancelled) setApiState((cur) => (cur === "unknown" ? s : cur));
    });
    return () => {
      cancelled = true;
    };
  }, []);

  async function onFile(e: ChangeEvent<HTMLInputElement>) {
    const file = e.target.files?.[0];
    setResult(null);
    setFileText(null);
    setSendError(null);
    setCanResend(false);
    setLineErrors([]);
    setNotice(null);
    setFileName(file?.name ?? null);
    if (!file) return;
    if (file.size > MAX_BYTES) {
      setResult({ error: `The file is larger than ${MAX_BYTES / 1024 / 1024} MB.`, lines: [] });
      return;
    }
    try {
      const text = await file.text();
      setFileText(text);
      setResult(parseBatch(text, ownAccounts && ownAccounts.length ? ownAccounts : undefined));
    } catch {
      setResult({ error: "The file could not be read.", lines: [] });
    }
  }

  const lines = result?.lines ?? [];
  const bad = lines.filter((l) => !l.body);
  const shown = [...bad, ...lines.filter((l) => l.body)].slice(0, SHOWN);
  const headerProblem = fileText && result && !result.error ? serverHeaderProblem(fileText) : null;
  const atomicTooBig = mode === "atomic" && atomicMax != null && lines.length > atomicMax;
  const ready = !!fileText && !!result && !result.error && lines.length > 0 && bad.length === 0 && !headerProblem && !atomicTooBig;
  const canSend = ready && apiState !== "missing" && !busy;

  async function send() {
    if (!fileText || inFlight.current) return; // double click
    inFlight.current = true;
    setBusy(true);
    setSendError(null);
    setCanResend(false);
    setLineErrors([]);
    setNotice(null);
    try {
      const text = batchUploadText(fileText);
      const key = await batchIdempotencyKey(text);
      for (let attempt = 0; ; attempt++) {
        try {
          const { batch, replayed } = await api.submitBatch(text, key, mode);
          setApiState("available");
          setBatchId(batch.id);
          rememberBatch(session(), batch.id);
          setNotice(
            replayed
              ? `This file was already sent: showing that batch (${batch.count} payments, ${batch.mode}). Nothing was paid twice.`
              : `Sent: ${batch.count} payment${batch.count === 1 ? "" : "s"} (${batch.mode}).`,
          );
          return;
        } catch (e) {
          const err = e instanceof ApiError ? e : new ApiError(0, { detail: String(e) });
          if (isBatchApiMissing(err)) {
            setApiState("missing");
            return;
          }
          if (err.status === 401) return; // signed out
          if (err.status === 422 && err.problem.type?.includes("idempotency-key-reused")) {
            setSendError(
              "This exact file was already sent in the other mode. It was not sent again. To pay these lines " +
                "again, change the file (for example the references).",
            );
            return;
          }
          if (!err.retryable) {
            const groups = groupLineErrors(err.problem);
            setLineErrors(groups);
            setSendError(
              groups.length
                ? `The server refused the file (nothing was paid): ${problemMessage(err)}`
                : `${problemMessage(err)} Nothing was paid.`,
            );
            return;
          }
          if (attempt >= AUTO_RETRIES) {
            setCanResend(true);
            setSendError(
              `${problemMessage(err)} The batch may or may not have been received. Sending again is safe: the ` +
                "same file is never paid twice.",
            );
            return;
          }
          await sleep(retryDelay(err.retryAfter, attempt));
        }
      }
    } finally {
      inFlight.current = false;
      setBusy(false);
    }
  }

  function startOver() {
    setBatchId(null);
    rememberBatch(session(), null);
    setNotice(null);
  }

  return (
    <>
      <section className="panel" aria-labelledby="batch-title" data-testid="batch-panel" data-api={apiState}>
        <h1 id="batch-title">Batch payments</h1>
        {apiState !== "missing" && (
          <p className="muted">Check a payments file here, then send it: every line becomes a transfer.</p>
        )}
        {apiState === "missing" && (
          <p className="banner warn" role="status" data-testid="batch-unavailable">
            <strong>The batch API is not available on this server.</strong> You can still check a file here; sending it
            needs a server with <code>POST /v1/batches</code>.
          </p>
        )}
        <div className="field">
          <label htmlFor={`${uid}-file`}>Payments file (CSV)</label>
          <input
            id={`${uid}-file`}
            type="file"
            accept=".csv,text/csv"
            onChange={(e) => void onFile(e)}
            aria-describedby={`${uid}-fmt`}
          />
          <p className="hint" id={`${uid}-fmt`}>
            First line: <code>from_account,to_account,amount,currency,reference</code> (reference optional), then one
            payment per line, amounts like <code>12.34</code>.
          </p>
        </div>
        <fieldset className="field modes">
          <legend>How to process it</legend>
          <label className="radio">
            <input
              type="radio"
              name={`${uid}-mode`}
              value="independent"
              checked={mode === "independent"}
              onChange={() => setMode("independent")}
            />
            Independent: each payment on its own (some may be rejected)
          </label>
          <label className="radio">
            <input
              type="radio"
              name={`${uid}-mode`}
              value="atomic"
              checked={mode === "atomic"}
              onChange={() => setMode("atomic")}
            />
            All or nothing{atomicMax != null && ` (at most ${atomicMax} payments)`}
          </label>
        </fieldset>
        <div aria-live="polite">
          {result?.error && (
            <p className="error" role="alert">
              {fileName}: {result.error}
            </p>
          )}
          {result && !result.error && (
            <p data-testid="batch-summary">
              {fileName}: {lines.length} payment{lines.length === 1 ? "" : "s"},{" "}
              {bad.length === 0 ? "all valid." : `${bad.length} with problems (listed first).`}
            </p>
          )}
          {headerProblem && <p className="error">{headerProblem}</p>}
          {atomicTooBig && (
            <p className="error">
              An all-or-nothing batch holds at most {atomicMax} payments; this file has {lines.length}.
            </p>
          )}
        </div>
        {shown.length > 0 && (
          <details className="checked-lines" open={bad.length > 0}>
            <summary>Lines checked here</summary>
            <div className="table-wrap">
              <table className="entries">
                <caption className="sr-only">Payments in the file, problems first</caption>
                <thead>
                  <tr>
                    <th scope="col">Line</th>
                    <th scope="col">Payment</th>
                    <th scope="col">Check</th>
                  </tr>
                </thead>
                <tbody>
                  {shown.map((l) => (
                    <tr key={l.line}>
                      <td>{l.line}</td>
                      <td>
                        {l.body ? (
                          <>
                            {formatMoney(l.body.amount, l.body.currency)} to{" "}
                            <span className="mono">{l.body.to_account}</span>
                          </>
                        ) : (
                          "—"
                        )}
                      </td>
                      <td className={l.body ? "credit" : "debit"}>
                        {l.body ? "OK" : Object.entries(l.errors).map(([f, m]) => `${f}: ${m}`).join(" ")}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
              {lines.length > SHOWN && <p className="muted small">Showing {SHOWN} of {lines.length} lines.</p>}
            </div>
          </details>
        )}
        {sendError && (
          <div className="error-box" role="alert" data-testid="batch-error">
            <p>{sendError}</p>
            {lineErrors.length > 0 && (
              <ul className="line-errors" data-testid="batch-line-errors">
                {lineErrors.map((g) => (
                  <li key={g.line ?? "file"} data-line={g.line ?? ""}>
                    <strong>{g.line != null ? `Line ${g.line}` : "File"}:</strong>{" "}
                    {g.messages.map((m) => `${m.field} ${m.message}`).join("; ")}
                  </li>
                ))}
              </ul>
            )}
            {canResend && (
              <button type="button" onClick={() => void send()} disabled={busy}>
                Send again
              </button>
            )}
          </div>
        )}
        <button
          type="button"
          onClick={() => void send()}
          disabled={!canSend}
          aria-describedby={`${uid}-send-hint`}
          data-testid="batch-send"
        >
          {busy ? "Sending…" : "Send batch"}
        </button>
        <p className="hint" id={`${uid}-send-hint`}>
          {apiState === "missing"
            ? "Not available on this server."
            : !fileText
              ? "Choose a file first."
              : !ready
                ? "Fix the problems above first."
                : "Sending the same file again is safe: it is never paid twice."}
        </p>
        {notice && (
          <p className="notice" role="status" data-testid="batch-notice">
            {notice}
          </p>
        )}
      </section>
      {batchId && <BatchProgressPanel id={batchId} onClose={startOver} />}
    </>
  );
}

const FILTERS: { value: string; label: string }[] = [
  { value: "", label: "All" },
  { value: "committed", label: "Committed" },
  { value: "rejected", label: "Rejected" },
  { value: "pending", label: "Pending" },
];

function BatchProgressPanel({ id, onClose }: { id: string; onClose: () => void }) {
  const uid = useId();
  const fetchBatch = useCallback(() => api.batch(id), [id]);
  const until = useCallback((b: Batch) => b.done, []);
  const poll = usePoll<Batch>(fetchBatch, 1000, id, until);
  const b = poll.data;
  const progress = batchProgress(b);
  const headingRef = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    headingRef.current?.focus();
  }, [id]);

  const [filter, setFilter] = useState("");
  const [pager, setPager] = useState<PagerState>(firstPage);
  const [page, setPage] = useState<Page<BatchPayment> | null>(null);
  const [pageError, setPageError] = useState<string | null>(null);
  const cursor = pagerCursor(pager);
  const processed = progress.processed;

  // The current page; again whenever more payments are processed.
  useEffect(() => {
    let cancelled = false;
    api.batchPayments(id, { status: filter || null, cursor, limit: PAGE_SIZE }).then(
      (p) => {
        if (cancelled) return;
        setPage(p);
        setPageError(null);
      },
      (e) => {
        if (!cancelled && !(e instanceof ApiError && e.status === 401)) setPageError(problemMessage(e));
      },
    );
    return () => {
      cancelled = true;
    };
  }, [id, filter, cursor, processed]);

  const gone = poll.error instanceof ApiError && poll.error.status === 404;

  return (
    <section className="panel" aria-labelledby={`${uid}-title`} data-testid="batch-progress" data-batch-id={id}
      data-done={b?.done ? "true" : "false"} data-committed={b?.committed ?? 0} data-rejected={b?.rejected ?? 0}>
      <div className="panel-head">
        <h2 id={`${uid}-title`} ref={headingRef} tabIndex={-1}>
          Batch <span className="mono">{shortId(id)}</span>
        </h2>
        <button type="button" className="secondary" onClick={onClose}>
          {b?.done ? "Done: send another" : "Hide"}
        </button>
      </div>
      {gone && <p className="error" role="alert">This batch does not exist on this server (or is not yours).</p>}
      {poll.error != null && !gone && (
        <p className="error" role="alert">
          Could not refresh the progress: {problemMessage(poll.error)} {poll.stopped ? "" : "Still trying."}
        </p>
      )}
      {!gone && (
        <>
          <label htmlFor={`${uid}-progress`}>Progress</label>
          <progress id={`${uid}-progress`} className="batch-bar" max={Math.max(1, progress.total)}
            value={progress.total ? progress.processed : progress.done ? 1 : 0} aria-describedby={`${uid}-progress-text`}>
            {progress.percent}%
          </progress>
          <p id={`${uid}-progress-text`} role="status" data-testid="batch-progress-text">
            {progress.percent}% · {progress.text}
          </p>
          {b && (
            <p className="muted small">
              {b.mode === "atomic" ? "All or nothing" : "Independent payments"} · sent {formatDate(b.created_at)}
              {poll.paused ? " · paused while this tab is hidden" : ""}
            </p>
          )}
          {b && b.totals.length > 0 && (
            <div className="table-wrap">
              <table className="entries totals">
                <caption className="sr-only">Totals per currency</caption>
                <thead>
                  <tr>
                    <th scope="col">Currency</th>
                    <th scope="col" className="num">Committed</th>
                    <th scope="col" className="num">Rejected</th>
                  </tr>
                </thead>
                <tbody>
                  {b.totals.map((t) => (
                    <tr key={t.currency}>
                      <th scope="row">{t.currency}</th>
                      <td className="num credit">{formatMoney(t.committed, t.currency)}</td>
                      <td className="num">{formatMoney(t.rejected, t.currency)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <h3 className="h3">Payments</h3>
          <div className="field filter">
            <label htmlFor={`${uid}-filter`}>Show</label>
            <select
              id={`${uid}-filter`}
              value={filter}
              onChange={(e) => {
                setFilter(e.target.value);
                setPager(firstPage());
              }}
            >
              {FILTERS.map((f) => (
                <option key={f.value} value={f.value}>
                  {f.label}
                </option>
              ))}
            </select>
          </div>
          {pageError && <p className="error" role="alert">Could not load the payments: {pageError}</p>}
          {page && page.items.length === 0 && <p className="empty">No payments here{filter ? ` (${filter})` : ""}.</p>}
          {page && page.items.length > 0 && (
            <div className="table-wrap">
              <table className="entries">
                <caption className="sr-only">Payments of this batch by line</caption>
                <thead>
                  <tr>
                    <th scope="col">Line</th>
                    <th scope="col">Outcome</th>
                    <th scope="col" className="num">Amount</th>
                    <th scope="col">To</th>
                    <th scope="col" className="col-transfer">Reference</th>
                  </tr>
                </thead>
                <tbody>
                  {page.items.map((p) => (
                    <tr key={p.line} data-testid="batch-payment" data-line={p.line} data-status={p.status}>
                      <td>{p.line}</td>
                      <td>
                        <StatusChip status={p.status} />
                        {p.status === "rejected" && (
                          <>
                            {" "}
                            <ReasonText reason={p.reason} />
                          </>
                        )}
                      </td>
                      <td className="num">{p.amount && p.currency ? formatMoney(p.amount, p.currency) : "—"}</td>
                      <td className="mono" title={p.to_account}>
                        {p.to_account ? shortId(p.to_account) : "—"}
                      </td>
                      <td className="col-transfer reference">{p.reference ?? ""}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          {(pager.index > 0 || page?.next_cursor) && (
            <div className="row pager">
              <button type="button" className="secondary" disabled={pager.index === 0}
                onClick={() => setPager((p) => pagerPrevious(p))}>
                Previous page
              </button>
              <span className="muted">Page {pager.index + 1}</span>
              <button type="button" className="secondary" disabled={!page?.next_cursor}
                onClick={() => setPager((p) => pagerNext(p, page?.next_cursor ?? null))}>
                Next page
              </button>
            </div>
          )}
        </>
      )}
    </section>
  );
}
