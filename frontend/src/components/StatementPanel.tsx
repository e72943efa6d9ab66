import { useId, useState, type FormEvent } from "react";
import { api, problemMessage } from "../lib/api";
import { formatDate, shortId } from "../lib/format";
import { formatMoney, isNegative } from "../lib/money";
import { defaultDays, defaultFilename, statementRange, type StatementRange } from "../lib/statement";
import type { Statement } from "../lib/types";

/** Saves `blob` as a file named `name` (the browser's download). */
function saveFile(blob: Blob, name: string) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  // Revoked later: some browsers read the URL after click() returns.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * An account's statement for a range of days (UTC): downloaded as the
 * server's CSV (with the bearer token, so not a plain link) or shown here.
 */
export function StatementPanel({ accountId, currency }: { accountId: string; currency: string }) {
  const ids = useId();
  const [days, setDays] = useState(() => defaultDays(new Date()));
  const [busy, setBusy] = useState<"csv" | "json" | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [statement, setStatement] = useState<Statement | null>(null);

  function range(): StatementRange | null {
    const r = statementRange(days.fromDay, days.toDay);
    if (typeof r === "string") {
      setError(r);
      return null;
    }
    return r;
  }

  async function download() {
    const r = range();
    if (!r) return;
    setBusy("csv");
    setError(null);
    setNotice(null);
    try {
      const { blob, filename } = await api.statementCsv(
        accountId,
        r,
        defaultFilename(accountId, days.fromDay, days.toDay),
      );
      saveFile(blob, filename);
      setNotice(`Downloaded ${filename}.`);
    } catch (e) {
      setError(problemMessage(e));
    } finally {
      setBusy(null);
    }
  }

  async function view(e: FormEvent) {
    e.preventDefault();
    const r = range();
    if (!r) return;
    setBusy("json");
    setError(null);
    setNotice(null);
    try {
      setStatement(await api.statement(accountId, r));
    } catch (err) {
      setError(problemMessage(err));
    } finally {
      setBusy(null);
    }
  }

  const money = (v: string) => formatMoney(v, currency);
  return (
    <section className="statement" aria-labelledby={`${ids}-title`}>
      <h2 id={`${ids}-title`}>Statement</h2>
      <form className="row statement-form" onSubmit={(e) => void view(e)}>
        <label>
          From (UTC)
          <input
            type="date"
            value={days.fromDay}
            onChange={(e) => setDays((d) => ({ ...d, fromDay: e.target.value }))}
            required
          />
        </label>
        <label>
          To (UTC)
          <input
            type="date"
            value={days.toDay}
            onChange={(e) => setDays((d) => ({ ...d, toDay: e.target.value }))}
            required
          />
        </label>
        <button type="submit" disabled={busy !== null}>
          {busy === "json" ? "Loading…" : "View statement"}
        </button>
        <button type="button" className="secondary" onClick={() => void download()} disabled={busy !== null}>
          {busy === "csv" ? "Preparing…" : "Download CSV"}
        </button>
      </form>
      {error && (
        <p className="error-box" role="alert">
          {error}
        </p>
      )}
      {notice && (
        <p className="muted" role="status" data-testid="statement-notice">
          {notice}
        </p>
      )}
      {statement && (
        <div data-testid="statement-view">
          <dl className="statement-figures">
            <dt>Opening balance</dt>
            <dd data-testid="statement-opening" data-value={statement.opening_balance}>
              {money(statement.opening_balance)}
            </dd>
            <dt>Money out</dt>
            <dd>{money(statement.total_debits)}</dd>
            <dt>Money in</dt>
            <dd>{money(statement.total_credits)}</dd>
            <dt>Closing balance</dt>
            <dd data-testid="statement-closing" data-value={statement.closing_balance}>
              {money(statement.closing_balance)}
            </dd>
          </dl>
          {statement.entries.length === 0 ? (
            <p className="empty">No entries in this period.</p>
          ) : (
            <div className="table-wrap">
              <table className="entries">
                <caption className="sr-only">
                  Statement entries, oldest first ({statement.entry_count})
                </caption>
                <thead>
                  <tr>
                    <th scope="col">Date</th>
                    <th scope="col">Counterparty</th>
                    <th scope="col">Reference</th>
                    <th scope="col" className="num">Amount</th>
                    <th scope="col" className="num">Balance</th>
                  </tr>
                </thead>
                <tbody>
                  {statement.entries.map((e) => (
                    <tr key={e.entry_id} data-testid="statement-row" data-transfer-id={e.transfer_id}>
                      <td>
                        <time dateTime={e.created_at}>{formatDate(e.created_at)}</time>
                      </td>
                      <td className="mono" title={e.counterparty_account ?? ""}>
                        {e.counterparty_account ? shortId(e.counterparty_account) : ""}
                      </td>
                      <td>{e.reference ?? ""}</td>
                      <td className={`num ${isNegative(e.amount) ? "debit" : "credit"}`}>{money(e.amount)}</td>
                      <td className="num" data-testid="statement-running">{money(e.running_balance)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </div>
      )}
    </section>
  );
}
