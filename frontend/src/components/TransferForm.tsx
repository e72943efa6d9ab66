import { useEffect, useId, useMemo, useRef, useState, type FormEvent } from "react";
import { api, ApiError, problemMessage } from "../lib/api";
import { clearPending, isFinalStatus, keyFor, loadPending, type PendingSubmission } from "../lib/idempotency";
import { formatMoney, MINOR_UNITS, normalizeAmount } from "../lib/money";
import { retryDelay } from "../lib/live";
import type { Transfer, TransferBody } from "../lib/types";
import type { LiveData } from "../lib/useLiveData";
import { hasErrors, validateTransfer, type FieldErrors, type TransferDraft, type TransferField } from "../lib/validation";
import { ReasonText, StatusChip } from "./StatusChip";

const AUTO_RETRIES = 3;
const FIELDS: TransferField[] = ["from_account", "to_account", "amount", "currency", "reference"];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const EMPTY: TransferDraft = { from_account: "", to_account: "", amount: "", currency: "", reference: "" };

function draftFromBody(b: TransferBody): TransferDraft {
  return { ...b, reference: b.reference ?? "" };
}

export function TransferForm({ live }: { live: LiveData }) {
  const accounts = live.accounts ?? [];
  const [draft, setDraft] = useState<TransferDraft>(EMPTY);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [retryable, setRetryable] = useState<PendingSubmission | null>(null);
  const [busy, setBusy] = useState(false);
  const [lastId, setLastId] = useState<string | null>(null);
  const [replayed, setReplayed] = useState(false);
  const [interrupted, setInterrupted] = useState<PendingSubmission | null>(() => loadPending(sessionStorage));
  const inFlight = useRef(false);
  const uid = useId();
  const fieldRefs = useRef<Partial<Record<TransferField, HTMLInputElement | HTMLSelectElement | null>>>({});

  // Default "from" to the first account and the currency to its currency.
  useEffect(() => {
    if (!draft.from_account && accounts.length > 0 && !interrupted) {
      setDraft((d) => ({ ...d, from_account: accounts[0].id, currency: d.currency || accounts[0].currency }));
    }
  }, [accounts, draft.from_account, interrupted]);

  // A submission interrupted by a reload: show it in the form.
  useEffect(() => {
    if (interrupted) setDraft(draftFromBody(interrupted.body));
  }, [interrupted]);

  const last: Transfer | undefined = useMemo(
    () => (lastId ? (live.transfers ?? []).find((t) => t.id === lastId) : undefined),
    [lastId, live.transfers],
  );
  const currencies = useMemo(() => {
    const set = new Set(accounts.map((a) => a.currency));
    Object.keys(MINOR_UNITS).forEach((c) => set.add(c));
    if (draft.currency) set.add(draft.currency);
    return [...set];
  }, [accounts, draft.currency]);

  function update(field: TransferField, value: string) {
    setDraft((d) => {
      const next = { ...d, [field]: value };
      if (field === "from_account") {
        const acc = accounts.find((a) => a.id === value);
        if (acc) next.currency = acc.currency;
      }
      return next;
    });
    if (errors[field]) setErrors((e) => ({ ...e, [field]: undefined }));
  }

  function focusFirst(e: FieldErrors) {
    const first = FIELDS.find((f) => e[f]);
    if (first) fieldRefs.current[first]?.focus();
  }

  async function send(pending: PendingSubmission) {
    if (inFlight.current) return; // double click / double Enter
    inFlight.current = true;
    setBusy(true);
    setFormError(null);
    setRetryable(null);
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const { transfer, replayed: wasReplayed } = await api.createTransfer(pending.body, pending.key);
          clearPending(sessionStorage, pending.key);
          setInterrupted(null);
          live.addTransfer(transfer);
          setLastId(transfer.id);
          setReplayed(wasReplayed);
          setDraft((d) => ({ ...d, amount: "", reference: "" }));
          setErrors({});
          return;
        } catch (e) {
          const err = e instanceof ApiError ? e : new ApiError(0, { detail: String(e) });
          if (isFinalStatus(err.status)) {
            clearPending(sessionStorage, pending.key);
            setInterrupted(null);
            const byField: FieldErrors = {};
            const other: string[] = [];
            for (const fe of err.problem.errors ?? []) {
              if ((FIELDS as string[]).includes(fe.field)) byField[fe.field as TransferField] = fe.message;
              else other.push(fe.field === "Idempotency-Key" ? `Submission key: ${fe.message}` : `${fe.field}: ${fe.message}`);
            }
            setErrors(byField);
            if (!hasErrors(byField) || other.length) {
              setFormError([problemMessage(err), ...other].join(" "));
            }
            focusFirst(byField);
            return;
          }
          if (err.status === 401) return; // signed out; the key stays for after sign-in
          if (attempt >= AUTO_RETRIES) {
            setRetryable(pending);
            setFormError(
              `${problemMessage(err)} The transfer may or may not have been received. ` +
                "Sending again is safe: it will not be made twice.",
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

  function submit(e: FormEvent) {
    e.preventDefault();
    if (inFlight.current) return;
    const found = validateTransfer(draft, accounts.length ? accounts.map((a) => a.id) : undefined);
    setErrors(found);
    if (hasErrors(found)) {
      setFormError(null);
      focusFirst(found);
      return;
    }
    const body: TransferBody = {
      from_account: draft.from_account.trim().toLowerCase(),
      to_account: draft.to_account.trim().toLowerCase(),
      amount: normalizeAmount(draft.amount, draft.currency),
      currency: draft.currency,
    };
    if (draft.reference.trim()) body.reference = draft.reference.trim();
    setLastId(null);
    void send(keyFor(body, sessionStorage));
  }

  function discardInterrupted() {
    clearPending(sessionStorage);
    setInterrupted(null);
    setRetryable(null);
    setFormError(null);
  }

  const describe = (f: TransferField, hint?: string) =>
    [errors[f] ? `${uid}-${f}-err` : null, hint ? `${uid}-${f}-hint` : null].filter(Boolean).join(" ") || undefined;
  const err = (f: TransferField) =>
    errors[f] ? (
      <p className="field-error" id={`${uid}-${f}-err`} data-testid={`error-${f}`}>
        {errors[f]}
      </p>
    ) : null;

  const fromAcc = accounts.find((a) => a.id === draft.from_account);

  return (
    <section className="panel transfer-form" aria-labelledby="new-transfer-title">
      <h2 id="new-transfer-title">New transfer</h2>
      {interrupted && !busy && (
        <div className="banner warn" role="alert" data-testid="interrupted-banner">
          <p>
            A transfer of {formatMoney(interrupted.body.amount, interrupted.body.currency)} was sent but no answer was
            received. Sending it again is safe: it will not be made twice.
          </p>
          <div className="row">
            <button type="button" onClick={() => void send(interrupted)}>Send again</button>
            <button type="button" className="secondary" onClick={discardInterrupted}>Discard</button>
          </div>
        </div>
      )}
      <form onSubmit={submit} noValidate aria-describedby={formError ? `${uid}-form-err` : undefined}>
        <div className="field">
          <label htmlFor={`${uid}-from`}>From account</label>
          <select
            id={`${uid}-from`}
            name="from_account"
            ref={(el) => { fieldRefs.current.from_account = el; }}
            value={draft.from_account}
            onChange={(e) => update("from_account", e.target.value)}
            aria-invalid={errors.from_account ? true : undefined}
            aria-describedby={describe("from_account")}
            disabled={accounts.length === 0}
          >
            {accounts.length === 0 && <option value="">No accounts</option>}
            {draft.from_account && !fromAcc && <option value={draft.from_account}>{draft.from_account}</option>}
            {accounts.map((a) => (
              <option key={a.id} value={a.id}>
                {a.currency} · {formatMoney(a.balance, a.currency)} · {a.id.slice(0, 8)}…
              </option>
            ))}
          </select>
          {err("from_account")}
        </div>
        <div className="field">
          <label htmlFor={`${uid}-to`}>To account (account id)</label>
          <input
            id={`${uid}-to`}
            name="to_account"
            ref={(el) => { fieldRefs.current.to_account = el; }}
            value={draft.to_account}
            onChange={(e) => update("to_account", e.target.value)}
            placeholder="e.g. 0a1b2c3d-0000-4000-8000-000000000001"
            list={`${uid}-own`}
            autoComplete="off"
            autoCapitalize="none"
            spellCheck={false}
            inputMode="text"
            className="mono"
            aria-invalid={errors.to_account ? true : undefined}
            aria-describedby={describe("to_account")}
          />
          <datalist id={`${uid}-own`}>
            {accounts
              .filter((a) => a.id !== draft.from_account)
              .map((a) => (
                <option key={a.id} value={a.id}>{`Your ${a.currency} account`}</option>
              ))}
          </datalist>
          {err("to_account")}
        </div>
        <div className="field-row">
          <div className="field grow">
            <label htmlFor={`${uid}-amount`}>Amount</label>
            <input
              id={`${uid}-amount`}
              name="amount"
              ref={(el) => { fieldRefs.current.amount = el; }}
              value={draft.amount}
              onChange={(e) => update("amount", e.target.value)}
              inputMode="decimal"
              autoComplete="off"
              placeholder={MINOR_UNITS[draft.currency] === 0 ? "100" : "12.34"}
              aria-invalid={errors.amount ? true : undefined}
              aria-describedby={describe("amount", "h")}
            />
            <p className="hint" id={`${uid}-amount-hint`}>
              {draft.currency && MINOR_UNITS[draft.currency] !== undefined
                ? `Up to ${MINOR_UNITS[draft.currency]} decimal places for ${draft.currency}.`
                : "Digits and an optional dot."}
              {fromAcc && ` Available: ${formatMoney(fromAcc.balance, fromAcc.currency)}.`}
            </p>
            {err("amount")}
          </div>
          <div className="field">
            <label htmlFor={`${uid}-currency`}>Currency</label>
            <select
              id={`${uid}-currency`}
              name="currency"
              ref={(el) => { fieldRefs.current.currency = el; }}
              value={draft.currency}
              onChange={(e) => update("currency", e.target.value)}
              aria-invalid={errors.currency ? true : undefined}
              aria-describedby={describe("currency")}
            >
              {!draft.currency && <option value="">Choose</option>}
              {currencies.map((c) => (
                <option key={c} value={c}>{c}</option>
              ))}
            </select>
            {err("currency")}
          </div>
        </div>
        <div className="field">
          <label htmlFor={`${uid}-reference`}>Reference (optional)</label>
          <input
            id={`${uid}-reference`}
            name="reference"
            ref={(el) => { fieldRefs.current.reference = el; }}
            value={draft.reference}
            onChange={(e) => update("reference", e.target.value)}
            maxLength={200}
            autoComplete="off"
            aria-invalid={errors.reference ? true : undefined}
            aria-describedby={describe("reference")}
          />
          {err("reference")}
        </div>
        {formError && (
          <div className="error-box" id={`${uid}-form-err`} role="alert" data-testid="form-error">
            <p>{formError}</p>
            {retryable && (
              <button type="button" onClick={() => void send(retryable)}>Send again</button>
            )}
          </div>
        )}
        <button type="submit" disabled={busy || accounts.length === 0} aria-disabled={busy}>
          {busy ? "Sending…" : "Send money"}
        </button>
      </form>
      <div aria-live="polite" className="last-result">
        {lastId && (
          <div className="result" data-testid="last-transfer" data-transfer-id={lastId} data-status={last?.status ?? "pending"}>
            <p>
              {replayed ? "This transfer was already submitted; its current state: " : "Transfer submitted: "}
              <StatusChip status={last?.status ?? "pending"} />
            </p>
            {last?.status === "rejected" && (
              <p>
                <ReasonText reason={last.reason} />
              </p>
            )}
            {last?.status === "pending" && live.status !== "connected" && (
              <p className="muted small">Live updates are paused; checking every few seconds.</p>
            )}
          </div>
        )}
      </div>
    </section>
  );
}
