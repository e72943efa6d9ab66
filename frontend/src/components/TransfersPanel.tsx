import { useMemo } from "react";
import { formatDate, shortId } from "../lib/format";
import { formatMoney } from "../lib/money";
import { direction, type Direction } from "../lib/store";
import type { LiveData } from "../lib/useLiveData";
import { ReasonText, StatusChip } from "./StatusChip";

const DIRECTION_WORDS: Record<Direction, string> = {
  sent: "Sent",
  received: "Received",
  internal: "Between your accounts",
  other: "Transfer",
};

export function TransfersPanel({ live, title }: { live: LiveData; title: string }) {
  const { transfers, transfersError, transfersCursor, loadingMore } = live;
  const own = useMemo(() => new Set((live.accounts ?? []).map((a) => a.id)), [live.accounts]);

  return (
    <section className="panel transfers" aria-labelledby="transfers-title">
      <h2 id="transfers-title">{title}</h2>
      {transfersError && (
        <div className="error-box" role="alert">
          <p>Could not load transfers: {transfersError}</p>
          <button type="button" onClick={() => void live.refreshTransfers()}>Try again</button>
        </div>
      )}
      {transfers === null && !transfersError && <p className="muted" role="status">Loading transfers…</p>}
      {transfers !== null && transfers.length === 0 && (
        <p className="empty">No transfers yet. Transfers you send or receive appear here.</p>
      )}
      {transfers !== null && transfers.length > 0 && (
        <ul className="transfer-list">
          {transfers.map((t) => {
            const dir = direction(t, own);
            const counterparty = dir === "received" ? t.from_account : t.to_account;
            // A rejected transfer moved no money: show its amount unsigned and struck through.
            const moved = t.status !== "rejected";
            const signed = dir === "sent" && moved ? `-${t.amount}` : t.amount;
            const tone = !moved ? "void" : dir === "sent" ? "debit" : dir === "received" ? "credit" : "";
            return (
              <li
                key={t.id}
                className={`transfer-row dir-${dir}`}
                data-testid="transfer-row"
                data-transfer-id={t.id}
                data-status={t.status}
              >
                <div className="transfer-main">
                  <span className="transfer-dir">{DIRECTION_WORDS[dir]}</span>
                  <span className={`amount ${tone}`}>
                    {!moved && <span className="sr-only">Not moved: </span>}
                    {formatMoney(signed, t.currency)}
                  </span>
                </div>
                <div className="transfer-meta">
                  <span>
                    {dir === "received" ? "from " : "to "}
                    <span className="mono" title={counterparty}>{shortId(counterparty)}</span>
                  </span>
                  <time dateTime={t.created_at}>{formatDate(t.created_at)}</time>
                  <a href={`#/transfers/${t.id}`} className="link small" data-testid="transfer-details">
                    Details<span className="sr-only"> of transfer {t.id}</span>
                  </a>
                </div>
                {t.reference && <p className="reference">“{t.reference}”</p>}
                {t.reverses && (
                  <p className="small reversal-link" data-testid="reversal-of" data-original-id={t.reverses}>
                    Reversal of{" "}
                    <a href={`#/transfers/${t.reverses}`} className="mono link" title={t.reverses}>
                      {shortId(t.reverses)}
                    </a>
                    {t.reversal_reason && <span className="muted"> — {t.reversal_reason}</span>}
                  </p>
                )}
                {t.reversals && t.reversals.length > 0 && (
                  <p className="small" data-testid="reversed-by">
                    Reversed{t.reversed_amount ? ` ${formatMoney(t.reversed_amount, t.currency)}` : ""} by{" "}
                    {t.reversals.map((r, i) => (
                      <span key={r.id}>
                        {i > 0 && ", "}
                        <a href={`#/transfers/${r.id}`} className="mono link" title={r.id}>
                          {shortId(r.id)}
                        </a>{" "}
                        ({formatMoney(r.amount, t.currency)}, {r.status})
                      </span>
                    ))}
                  </p>
                )}
                {t.hold_id && (
                  <p className="small muted" data-testid="capture-of" title={t.hold_id}>
                    Capture of hold {shortId(t.hold_id)}
                  </p>
                )}
                <div className="transfer-status">
                  <StatusChip status={t.status} />
                  {t.status === "rejected" && <ReasonText reason={t.reason} />}
                </div>
              </li>
            );
          })}
        </ul>
      )}
      {transfersCursor && (
        <button type="button" className="secondary more" onClick={() => void live.loadMoreTransfers()} disabled={loadingMore}>
          {loadingMore ? "Loading…" : "Show older transfers"}
        </button>
      )}
    </section>
  );
}
