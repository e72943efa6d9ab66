import { useId, useState, type ChangeEvent } from "react";
import { parseBatch, type BatchParse } from "../lib/csv";
import { formatMoney } from "../lib/money";

export function OpsFlowPlaceholder() {
  return (
    <section className="panel placeholder" aria-labelledby="flow-title" data-testid="ops-flow-placeholder">
      <h2 id="flow-title">Live flow</h2>
      <p className="muted">
        Not available yet: the flow view (stage timings and trace ids for every transfer) needs operations
        endpoints the API does not offer yet.
      </p>
    </section>
  );
}

const MAX_BYTES = 2 * 1024 * 1024;
const SHOWN = 200;

/**
 * Batch payments: the file is read and checked here, line by line, the same
 * way the transfer form checks one payment. Sending needs `POST /v1/batches`,
 * which does not exist yet, so the send button stays disabled.
 */
export function BatchPanel({ ownAccounts }: { ownAccounts?: readonly string[] }) {
  const uid = useId();
  const [fileName, setFileName] = useState<string | null>(null);
  const [result, setResult] = useState<BatchParse | null>(null);

  async function onFile(e: ChangeEvent<HTMLInputElement>) {
    const file = e.target.files?.[0];
    setResult(null);
    setFileName(file?.name ?? null);
    if (!file) return;
    if (file.size > MAX_BYTES) {
      setResult({ error: `The file is larger than ${MAX_BYTES / 1024 / 1024} MB.`, lines: [] });
      return;
    }
    try {
      setResult(parseBatch(await file.text(), ownAccounts && ownAccounts.length ? ownAccounts : undefined));
    } catch {
      setResult({ error: "The file could not be read.", lines: [] });
    }
  }

  const lines = result?.lines ?? [];
  const bad = lines.filter((l) => !l.body);
  const shown = [...bad, ...lines.filter((l) => l.body)].slice(0, SHOWN);

  return (
    <section className="panel" aria-labelledby="batch-title" data-testid="batch-panel">
      <h1 id="batch-title">Batch payments</h1>
      <p className="banner warn" data-testid="batch-unavailable">
        <strong>Sending batches is not available yet.</strong> You can check a file here now; sending it needs the
        batch API, which does not exist yet.
      </p>
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
      </div>
      {shown.length > 0 && (
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
      )}
      <button type="button" disabled aria-describedby={`${uid}-na`}>
        Send batch
      </button>
      <p className="hint" id={`${uid}-na`}>Not available yet.</p>
    </section>
  );
}
