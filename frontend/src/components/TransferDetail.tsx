import { useEffect, useRef, useState } from "react";
import { api, ApiError, problemMessage } from "../lib/api";
import { formatDate, shortId } from "../lib/format";
import { formatMoney } from "../lib/money";
import type { Transfer } from "../lib/types";
import { ReasonText, StatusChip } from "./StatusChip";

/**
 * One transfer (`#/transfers/<id>`), with its links: the original a
 * reversal reverses, the reversals of an original, the hold a capture
 * settled. Reloaded when a live event says a transfer changed.
 */
export function TransferDetail({ id, resyncCount }: { id: string; resyncCount: number }) {
  const [transfer, setTransfer] = useState<Transfer | null>(null);
  const [error, setError] = useState<string | null>(null);
  const headingRef = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    headingRef.current?.focus();
  }, [id]);

  useEffect(() => {
    let live = true;
    api.transfer(id).then(
      (t) => live && (setTransfer(t), setError(null)),
      (e) => {
        if (!live) return;
        if (e instanceof ApiError && e.status === 404) setError("This transfer does not exist or is not yours.");
        else if (!(e instanceof ApiError && e.status === 401)) setError(problemMessage(e));
      },
    );
    return () => {
      live = false;
    };
  }, [id, resyncCount]);

  const link = (to: string) => (
    <a href={`#/transfers/${to}`} className="mono link" title={to}>
      {shortId(to)}
    </a>
  );
  return (
    <section className="panel" aria-labelledby="transfer-title" data-testid="transfer-detail" data-transfer-id={id}>
      <p>
        <a href="#/" className="link">← Back to dashboard</a>
      </p>
      <h1 id="transfer-title" ref={headingRef} tabIndex={-1}>
        {transfer?.reverses ? "Reversal" : "Transfer"} <span className="mono small">{shortId(id)}</span>
      </h1>
      {error && <p className="error-box" role="alert">{error}</p>}
      {!transfer && !error && <p className="muted" role="status">Loading…</p>}
      {transfer && (
        <dl className="detail">
          <dt>Status</dt>
          <dd data-status={transfer.status}>
            <StatusChip status={transfer.status} /> {transfer.reason && <ReasonText reason={transfer.reason} />}
          </dd>
          <dt>Amount</dt>
          <dd>{formatMoney(transfer.amount, transfer.currency)}</dd>
          <dt>From</dt>
          <dd className="mono">{transfer.from_account}</dd>
          <dt>To</dt>
          <dd className="mono">{transfer.to_account}</dd>
          <dt>Created</dt>
          <dd><time dateTime={transfer.created_at}>{formatDate(transfer.created_at)}</time></dd>
          {transfer.reference && (
            <>
              <dt>Reference</dt>
              <dd>{transfer.reference}</dd>
            </>
          )}
          {transfer.reverses && (
            <>
              <dt>Reverses</dt>
              <dd data-testid="detail-reverses">
                {link(transfer.reverses)}
                {transfer.reversal_reason && <> — {transfer.reversal_reason}</>}
              </dd>
            </>
          )}
          {transfer.hold_id && (
            <>
              <dt>Captures hold</dt>
              <dd className="mono">{transfer.hold_id}</dd>
            </>
          )}
          {transfer.reversals && transfer.reversals.length > 0 && (
            <>
              <dt>Reversed</dt>
              <dd data-testid="detail-reversals">
                {transfer.reversed_amount && <>{formatMoney(transfer.reversed_amount, transfer.currency)} in </>}
                <ul>
                  {transfer.reversals.map((r) => (
                    <li key={r.id} data-testid="detail-reversal" data-reversal-id={r.id}>
                      {link(r.id)}: {formatMoney(r.amount, transfer.currency)} <StatusChip status={r.status} />
                    </li>
                  ))}
                </ul>
              </dd>
            </>
          )}
        </dl>
      )}
    </section>
  );
}
