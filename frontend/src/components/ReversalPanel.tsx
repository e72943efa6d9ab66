import { useEffect, useId, useState, type FormEvent } from "react";
import { api, ApiError, problemMessage } from "../lib/api";
import { shortId } from "../lib/format";
import { reversalErrors, type ReversalDraft } from "../lib/holds";
import { newIdempotencyKey } from "../lib/idempotency";
import { formatMoney, normalizeAmount } from "../lib/money";
import type { Transfer } from "../lib/types";
import { ReasonText, StatusChip } from "./StatusChip";

const POLL_MS = 1000;
const POLL_MAX = 60;

/**
 * The reverser's view: look a committed transfer up by id, then reverse it
 * (all of what is left, or part) with a reason. The reversal is a new
 * transfer from the payee back to the payer, followed here to its end.
 */
export function ReversalPanel() {
  const uid = useId();
  const [draft, setDraft] = useState<ReversalDraft>({ transfer_id: "", amount: "", reason: "" });
  const [errors, setErrors] = useState<Partial<Record<keyof ReversalDraft, string>>>({});
  const [original, setOriginal] = useState<Transfer | null>(null);
  const [reversal, setReversal] = useState<Transfer | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // One key per intended reversal: a retried click is the same reversal.
  const [key, setKey] = useState(newIdempotencyKey);

  function update(field: keyof ReversalDraft, value: string) {
    setDraft((d) => ({ ...d, [field]: value }));
    setErrors((e) => ({ ...e, [field]: undefined }));
    if (field !== "reason") setKey(newIdempotencyKey());
  }

  async function lookUp() {
    setError(null);
    setOriginal(null);
    try {
      setOriginal(await api.transfer(draft.transfer_id.trim().toLowerCase()));
    } catch (e) {
      setError(e instanceof ApiError && e.status === 404 ? "No such transfer." : problemMessage(e));
    }
  }

  async function reverse(e: FormEvent) {
    e.preventDefault();
    const found = reversalErrors(draft, original?.currency);
    setErrors(found);
    if (Object.values(found).some(Boolean) || busy) return;
    setBusy(true);
    setError(null);
    try {
      const currency = original?.currency ?? "EUR";
      const body = {
        reason: draft.reason.trim(),
        ...(draft.amount.trim() ? { amount: normalizeAmount(draft.amount, currency) } : {}),
      };
      const { body: r } = await api.reverseTransfer(draft.transfer_id.trim().toLowerCase(), body, key);
      setReversal(r);
      setKey(newIdempotencyKey());
    } catch (err) {
      const fields = err instanceof ApiError ? err.problem.errors ?? [] : [];
      if (fields.length) setErrors(Object.fromEntries(fields.map((f) => [f.field, f.message])));
      setError(problemMessage(err));
    } finally {
      setBusy(false);
    }
  }

  // Follow the reversal until it is committed or rejected.
  const pendingId = reversal?.status === "pending" ? reversal.id : null;
  useEffect(() => {
    if (!pendingId) return;
    let n = 0;
    const t = window.setInterval(() => {
      n += 1;
      if (n > POLL_MAX) return window.clearInterval(t);
      api.transfer(pendingId).then(
        (fresh) => {
          if (fresh.status !== "pending") {
            setReversal(fresh);
            window.clearInterval(t);
            void api.transfer(fresh.reverses ?? "").then(setOriginal, () => undefined);
          }
        },
        () => undefined,
      );
    }, POLL_MS);
    return () => window.clearInterval(t);
  }, [pendingId]);

  const err = (f: keyof ReversalDraft) =>
    errors[f] && (
      <p className="field-error" id={`${uid}-${f}-err`} data-testid={`reversal-error-${f}`}>
        {errors[f]}
      </p>
    );
  const input = (f: keyof ReversalDraft, label: string) => (
    <>
      <label htmlFor={`${uid}-${f}`}>{label}</label>
      <input
        id={`${uid}-${f}`}
        value={draft[f]}
        onChange={(e) => update(f, e.target.value)}
        aria-invalid={errors[f] ? true : undefined}
        aria-describedby={errors[f] ? `${uid}-${f}-err` : undefined}
      />
      {err(f)}
    </>
  );
  return (
    <section className="panel" aria-labelledby={`${uid}-title`}>
      <h2 id={`${uid}-title`}>Reverse a transfer</h2>
      <form onSubmit={(e) => void reverse(e)} noValidate data-testid="reversal-form">
        {input("transfer_id", "Transfer id")}
        <button type="button" className="secondary" onClick={() => void lookUp()}>
          Look up
        </button>
        {original && (
          <p data-testid="reversal-original" data-status={original.status}>
            {formatMoney(original.amount, original.currency)} from{" "}
            <span className="mono">{shortId(original.from_account)}</span> to{" "}
            <span className="mono">{shortId(original.to_account)}</span> <StatusChip status={original.status} />
            {original.reversed_amount && (
              <span data-testid="reversal-reversed"> · reversed so far {formatMoney(original.reversed_amount, original.currency)}</span>
            )}
          </p>
        )}
        {input("amount", "Amount (empty: all that is left)")}
        {input("reason", "Reason (required)")}
        {error && <div className="error-box" role="alert">{error}</div>}
        <button type="submit" disabled={busy}>
          {busy ? "Reversing…" : "Reverse"}
        </button>
      </form>
      {reversal && (
        <p data-testid="reversal-result" data-transfer-id={reversal.id} data-status={reversal.status}>
          Reversal <a className="mono link" href={`#/transfers/${reversal.id}`}>{shortId(reversal.id)}</a> of{" "}
          {formatMoney(reversal.amount, reversal.currency)}: <StatusChip status={reversal.status} />
          {reversal.reason && <ReasonText reason={reversal.reason} />}
        </p>
      )}
    </section>
  );
}
