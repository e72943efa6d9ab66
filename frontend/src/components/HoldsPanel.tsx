import { useCallback, useEffect, useId, useMemo, useState, type FormEvent } from "react";
import { api, ApiError, problemMessage } from "../lib/api";
import { formatDate, shortId } from "../lib/format";
import {
  captureError,
  countdown,
  holdErrors,
  isFinalHold,
  mergeHolds,
  type Hold,
  type HoldDraft,
  type HoldErrors,
} from "../lib/holds";
import { newIdempotencyKey } from "../lib/idempotency";
import { formatMoney, normalizeAmount } from "../lib/money";
import type { LiveData } from "../lib/useLiveData";
import { ReasonText, StatusChip } from "./StatusChip";

const FIELDS: [keyof HoldDraft, string][] = [
  ["to_account", "Payee account (account id)"],
  ["amount", "Amount"],
  ["reference", "Reference (optional)"],
  ["expires_in_seconds", "Expires in (seconds)"],
];

/** Ticks every second while something counts down. */
function useNow(active: boolean): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return;
    const t = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(t);
  }, [active]);
  return now;
}

/**
 * The customer's holds: reserve money now, capture (all or part) or void
 * later; unclaimed holds expire by themselves. The list is fetched per
 * account and kept current by `hold.updated` events.
 */
export function HoldsPanel({ live }: { live: LiveData }) {
  const uid = useId();
  const accounts = useMemo(() => live.accounts ?? [], [live.accounts]);
  const own = useMemo(() => new Set(accounts.map((a) => a.id)), [accounts]);
  const [fetched, setFetched] = useState<Hold[] | null>(null);
  const [listError, setListError] = useState<string | null>(null);
  const [draft, setDraft] = useState<HoldDraft>({
    from_account: "", to_account: "", amount: "", currency: "", reference: "", expires_in_seconds: "3600",
  });
  const [errors, setErrors] = useState<HoldErrors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // One key per intended hold: a retry of the same form is the same hold.
  const [key, setKey] = useState(newIdempotencyKey);

  useEffect(() => {
    if (!draft.from_account && accounts.length > 0)
      setDraft((d) => ({ ...d, from_account: accounts[0].id, currency: accounts[0].currency }));
  }, [accounts, draft.from_account]);

  const accountIds = accounts.map((a) => a.id).join(",");
  const load = useCallback(async () => {
    if (!accountIds) return;
    try {
      const pages = await Promise.all(accountIds.split(",").map((a) => api.holds(a)));
      setFetched(mergeHolds([], pages.flatMap((p) => p.items)));
      setListError(null);
    } catch (e) {
      if (e instanceof ApiError && (e.status === 404 || e.status === 405)) setListError("This server has no holds.");
      else if (!(e instanceof ApiError && e.status === 401)) setListError(problemMessage(e));
    }
  }, [accountIds]);
  useEffect(() => {
    void load();
  }, [load, live.resyncCount]);

  const holds = useMemo(
    () => mergeHolds(fetched ?? [], live.liveHolds.filter((h) => own.has(h.from_account) || own.has(h.to_account))),
    [fetched, live.liveHolds, own],
  );
  const now = useNow(holds.some((h) => !isFinalHold(h.status)));

  function update(field: keyof HoldDraft, value: string) {
    setDraft((d) => {
      const next = { ...d, [field]: value };
      if (field === "from_account") next.currency = accounts.find((a) => a.id === value)?.currency ?? d.currency;
      return next;
    });
    setErrors((e) => ({ ...e, [field]: undefined }));
  }

  async function create(e: FormEvent) {
    e.preventDefault();
    const found = holdErrors(draft);
    setErrors(found);
    if (Object.values(found).some(Boolean) || busy) return;
    setBusy(true);
    setFormError(null);
    try {
      const { body } = await api.createHold(
        {
          from_account: draft.from_account,
          to_account: draft.to_account.trim().toLowerCase(),
          amount: normalizeAmount(draft.amount, draft.currency),
          currency: draft.currency,
          reference: draft.reference.trim() || undefined,
          expires_in_seconds: Number(draft.expires_in_seconds),
        },
        key,
      );
      live.addHold(body);
      setKey(newIdempotencyKey());
      setDraft((d) => ({ ...d, to_account: "", amount: "", reference: "" }));
    } catch (err) {
      const fields = err instanceof ApiError ? err.problem.errors ?? [] : [];
      if (fields.length) setErrors(Object.fromEntries(fields.map((f) => [f.field, f.message])));
      setFormError(problemMessage(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="panel holds" aria-labelledby={`${uid}-title`}>
      <h2 id={`${uid}-title`}>Holds</h2>
      <p className="muted small">
        A hold reserves money for a payee: your available balance drops now, the money moves only when you capture it.
      </p>
      <form onSubmit={(e) => void create(e)} noValidate data-testid="hold-form">
        <label htmlFor={`${uid}-from`}>From account</label>
        <select id={`${uid}-from`} value={draft.from_account} onChange={(e) => update("from_account", e.target.value)}>
          {accounts.map((a) => (
            <option key={a.id} value={a.id}>
              {a.currency} {shortId(a.id)}
            </option>
          ))}
        </select>
        {FIELDS.map(([f, label]) => (
          <div key={f}>
            <label htmlFor={`${uid}-${f}`}>{label}</label>
            <input
              id={`${uid}-${f}`}
              value={draft[f]}
              inputMode={f === "amount" ? "decimal" : f === "expires_in_seconds" ? "numeric" : undefined}
              onChange={(e) => update(f, e.target.value)}
              aria-invalid={errors[f] ? true : undefined}
              aria-describedby={errors[f] ? `${uid}-${f}-err` : undefined}
            />
            {errors[f] && (
              <p className="field-error" id={`${uid}-${f}-err`} data-testid={`hold-error-${f}`}>
                {errors[f]}
              </p>
            )}
          </div>
        ))}
        {formError && <div className="error-box" role="alert">{formError}</div>}
        <button type="submit" disabled={busy || accounts.length === 0}>
          {busy ? "Placing…" : "Place hold"}
        </button>
      </form>
      {listError && <p className="error-box" role="alert">{listError}</p>}
      {fetched === null && !listError && <p className="muted" role="status">Loading holds…</p>}
      {holds.length === 0 && fetched !== null && <p className="empty">No holds.</p>}
      {holds.length > 0 && (
        <ul className="transfer-list">
          {holds.map((h) => (
            <HoldRow key={h.id} hold={h} now={now} mine={own.has(h.from_account)} onChange={live.addHold} />
          ))}
        </ul>
      )}
    </section>
  );
}

function HoldRow({ hold, now, mine, onChange }: { hold: Hold; now: number; mine: boolean; onChange: (h: Hold) => void }) {
  const uid = useId();
  const [amount, setAmount] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // One key per action on this hold, so a retried click is the same command.
  const [keys] = useState(() => ({ capture: newIdempotencyKey(), void: newIdempotencyKey() }));
  const open = hold.status === "pending";

  async function act(what: "capture" | "void") {
    if (what === "capture") {
      const e = captureError(amount, hold);
      if (e) return setError(e);
    }
    setBusy(true);
    setError(null);
    try {
      const { body } =
        what === "capture"
          ? await api.captureHold(hold.id, amount.trim() ? normalizeAmount(amount, hold.currency) : null, keys.capture)
          : await api.voidHold(hold.id, keys.void);
      onChange(body);
    } catch (err) {
      setError(problemMessage(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <li className="transfer-row" data-testid="hold-row" data-hold-id={hold.id} data-status={hold.status}>
      <div className="transfer-main">
        <span className="transfer-dir">{mine ? "Hold for" : "Held for you by"}</span>
        <span className="amount">{formatMoney(hold.amount, hold.currency)}</span>
      </div>
      <div className="transfer-meta">
        <span className="mono" title={mine ? hold.to_account : hold.from_account}>
          {shortId(mine ? hold.to_account : hold.from_account)}
        </span>
        <time dateTime={hold.created_at}>{formatDate(hold.created_at)}</time>
        {!isFinalHold(hold.status) && (
          <span data-testid="hold-countdown">expires in {countdown(hold.expires_at, now)}</span>
        )}
      </div>
      {hold.reference && <p className="reference">“{hold.reference}”</p>}
      <div className="transfer-status">
        <StatusChip status={hold.status} />
        {hold.reason && <ReasonText reason={hold.reason} />}
        {hold.captured_amount && (
          <span className="small" data-testid="hold-captured">
            {" "}captured {formatMoney(hold.captured_amount, hold.currency)}
          </span>
        )}
        {hold.capture_transfer_id && (
          <a className="link small" href={`#/transfers/${hold.capture_transfer_id}`}> transfer</a>
        )}
      </div>
      {mine && open && (
        <div className="row hold-actions">
          <label className="sr-only" htmlFor={`${uid}-amount`}>Amount to capture</label>
          <input
            id={`${uid}-amount`}
            placeholder={`all ${hold.amount}`}
            value={amount}
            inputMode="decimal"
            onChange={(e) => setAmount(e.target.value)}
            data-testid="hold-capture-amount"
          />
          <button type="button" onClick={() => void act("capture")} disabled={busy} data-testid="hold-capture">
            Capture
          </button>
          <button type="button" className="secondary" onClick={() => void act("void")} disabled={busy} data-testid="hold-void">
            Void
          </button>
        </div>
      )}
      {error && <p className="field-error" role="alert">{error}</p>}
    </li>
  );
}
