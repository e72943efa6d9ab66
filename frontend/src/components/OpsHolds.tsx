import { useEffect, useState } from "react";
import { formatTime, shortId } from "../lib/format";
import { countdown, isFinalHold } from "../lib/holds";
import { formatMoney } from "../lib/money";
import type { LiveData } from "../lib/useLiveData";
import { ReasonText, StatusChip } from "./StatusChip";

/** Rows shown: the newest holds the live stream told about. */
const SHOWN = 50;

/** Operators: holds as they are placed, captured, voided and expire (from `hold.updated` events). */
export function OpsHolds({ live }: { live: LiveData }) {
  const holds = live.liveHolds.slice(0, SHOWN);
  const [now, setNow] = useState(() => Date.now());
  const ticking = holds.some((h) => !isFinalHold(h.status));
  useEffect(() => {
    if (!ticking) return;
    const t = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(t);
  }, [ticking]);
  return (
    <section className="panel" aria-labelledby="ops-holds-title" data-testid="ops-holds">
      <h2 id="ops-holds-title">Holds (live)</h2>
      {holds.length === 0 ? (
        <p className="empty">No hold events since this page opened.</p>
      ) : (
        <div className="table-wrap">
          <table className="entries">
            <thead>
              <tr>
                <th scope="col">Placed</th>
                <th scope="col">Hold</th>
                <th scope="col">From → to</th>
                <th scope="col" className="num">Amount</th>
                <th scope="col">Status</th>
                <th scope="col">Expiry</th>
              </tr>
            </thead>
            <tbody>
              {holds.map((h) => (
                <tr key={h.id} data-testid="ops-hold-row" data-hold-id={h.id} data-status={h.status}>
                  <td><time dateTime={h.created_at}>{formatTime(h.created_at)}</time></td>
                  <td className="mono" title={h.id}>{shortId(h.id)}</td>
                  <td className="mono">{shortId(h.from_account)} → {shortId(h.to_account)}</td>
                  <td className="num">
                    {formatMoney(h.amount, h.currency)}
                    {h.captured_amount && <> (captured {formatMoney(h.captured_amount, h.currency)})</>}
                  </td>
                  <td>
                    <StatusChip status={h.status} /> {h.reason && <ReasonText reason={h.reason} />}
                  </td>
                  <td>{isFinalHold(h.status) ? "—" : countdown(h.expires_at, now)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
