import { useCallback, useEffect, useRef, useState } from "react";
import { api, ApiError, problemMessage } from "../lib/api";
import { formatDate, shortId } from "../lib/format";
import { formatMoney, isNegative } from "../lib/money";
import type { Account, Entry } from "../lib/types";
import { StatementPanel } from "./StatementPanel";

const PAGE = 20;

function mergeEntries(cur: Entry[], add: Entry[]): Entry[] {
  const seen = new Set(cur.map((e) => e.id));
  const out = cur.slice();
  for (const e of add) if (!seen.has(e.id)) out.push(e);
  return out.sort((a, b) => (a.created_at === b.created_at ? 0 : a.created_at < b.created_at ? 1 : -1));
}

export function AccountHistory({
  accountId,
  accounts,
  resyncCount,
}: {
  accountId: string;
  accounts: Account[] | null;
  resyncCount: number;
}) {
  const liveAccount = accounts?.find((a) => a.id === accountId);
  const [fetched, setFetched] = useState<Account | null>(null);
  const [notFound, setNotFound] = useState(false);
  const [entries, setEntries] = useState<Entry[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  const headingRef = useRef<HTMLHeadingElement>(null);
  const account = liveAccount ?? fetched;

  useEffect(() => {
    headingRef.current?.focus();
  }, [accountId]);

  useEffect(() => {
    if (liveAccount || accounts === null) return;
    api.account(accountId).then(setFetched, (e) => {
      if (e instanceof ApiError && (e.status === 404 || e.status === 403)) setNotFound(true);
      else if (!(e instanceof ApiError && e.status === 401)) setError(problemMessage(e));
    });
  }, [accountId, liveAccount, accounts]);

  // First page; again whenever the balance changes live or after a resync.
  const firstLoad = useRef(true);
  const loadFirst = useCallback(async () => {
    try {
      const page = await api.entries(accountId, null, PAGE);
      setEntries((cur) => (cur ? mergeEntries(cur, page.items) : page.items));
      if (firstLoad.current) {
        firstLoad.current = false;
        setCursor(page.next_cursor);
      }
      setError(null);
    } catch (e) {
      if (e instanceof ApiError && (e.status === 404 || e.status === 403)) setNotFound(true);
      else if (!(e instanceof ApiError && e.status === 401)) setError(problemMessage(e));
    }
  }, [accountId]);

  useEffect(() => {
    firstLoad.current = true;
    setEntries(null);
    setCursor(null);
    setFetched(null);
    setNotFound(false);
  }, [accountId]);

  useEffect(() => {
    void loadFirst();
  }, [loadFirst, liveAccount?.version, resyncCount]);

  async function loadMore() {
    if (!cursor) return;
    setLoadingMore(true);
    try {
      const page = await api.entries(accountId, cursor, PAGE);
      setEntries((cur) => mergeEntries(cur ?? [], page.items));
      setCursor(page.next_cursor);
    } catch (e) {
      setError(problemMessage(e));
    } finally {
      setLoadingMore(false);
    }
  }

  return (
    <section className="panel history" aria-labelledby="history-title">
      <p>
        <a href="#/" className="link">← Back to dashboard</a>
      </p>
      <h1 id="history-title" ref={headingRef} tabIndex={-1}>
        Account history
      </h1>
      {notFound ? (
        <p className="empty" role="alert">This account does not exist or is not yours.</p>
      ) : (
        <>
          {account && (
            <p className="history-summary">
              <span className="currency-badge">{account.currency}</span>{" "}
              <span className="mono small">{account.id}</span>
              <br />
              Balance: <strong data-testid="history-balance">{formatMoney(account.balance, account.currency)}</strong>
              {account.available != null && (
                <>
                  <br />
                  Available:{" "}
                  <strong data-testid="history-available">{formatMoney(account.available, account.currency)}</strong>
                </>
              )}
            </p>
          )}
          {account && <StatementPanel accountId={account.id} currency={account.currency} />}
          {error && (
            <div className="error-box" role="alert">
              <p>Could not load the history: {error}</p>
              <button type="button" onClick={() => void loadFirst()}>Try again</button>
            </div>
          )}
          <h2>Entries</h2>
          {entries === null && !error && <p className="muted" role="status">Loading entries…</p>}
          {entries !== null && entries.length === 0 && <p className="empty">No entries yet.</p>}
          {entries !== null && entries.length > 0 && (
            <div className="table-wrap">
              <table className="entries">
                <caption className="sr-only">Ledger entries, newest first</caption>
                <thead>
                  <tr>
                    <th scope="col">Date</th>
                    <th scope="col" className="col-transfer">Transfer</th>
                    <th scope="col" className="num">Amount</th>
                    <th scope="col" className="num">Balance after</th>
                  </tr>
                </thead>
                <tbody>
                  {entries.map((e) => (
                    <tr key={e.id} data-testid="entry-row">
                      <td>
                        <time dateTime={e.created_at}>{formatDate(e.created_at)}</time>
                      </td>
                      <td className="mono col-transfer" title={e.transfer_id}>{shortId(e.transfer_id)}</td>
                      <td className={`num ${isNegative(e.amount) ? "debit" : "credit"}`}>
                        {formatMoney(e.amount, e.currency)}
                      </td>
                      <td className="num">{formatMoney(e.balance_after, e.currency)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          {cursor && (
            <button type="button" className="secondary more" onClick={() => void loadMore()} disabled={loadingMore}>
              {loadingMore ? "Loading…" : "Show older entries"}
            </button>
          )}
        </>
      )}
    </section>
  );
}
