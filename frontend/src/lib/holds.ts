// Holds (two-phase payments) and reversals on the page: live updates that
// arrive out of order, the expiry countdown, and the forms' checks. Pure
// functions, unit-tested; the components only render them.

import { amountError, compareDecimal } from "./money";
import { UUID_RE } from "./validation";

export type HoldStatus = "requested" | "pending" | "captured" | "voided" | "expired" | "rejected";

export interface Hold {
  id: string;
  status: HoldStatus | string;
  reason?: string | null;
  from_account: string;
  to_account: string;
  amount: string;
  captured_amount?: string | null;
  currency: string;
  reference?: string | null;
  created_at: string;
  expires_at: string;
  finished_at?: string | null;
  capture_transfer_id?: string | null;
}

export interface HoldBody {
  from_account: string;
  to_account: string;
  amount: string;
  currency: string;
  reference?: string;
  expires_in_seconds: number;
}

/** The longest a hold may last (the server's bound): a week. */
export const EXPIRES_MAX_SECONDS = 604_800;
/** The longest reversal reason the server takes. */
export const REASON_MAX = 200;

/** How far along a hold is: a later state never gives way to an earlier one. */
const RANK: Readonly<Record<string, number>> = { requested: 0, pending: 1, captured: 2, voided: 2, expired: 2, rejected: 2 };

export function isFinalHold(status: string): boolean {
  return (RANK[status] ?? 0) >= 2;
}

/** Of two views of one hold, the one further along (ties: `next`, the later message). */
export function newerHold(current: Hold, next: Hold): Hold {
  return (RANK[next.status] ?? 0) >= (RANK[current.status] ?? 0) ? next : current;
}

/** `list` with `hold` added or updated, newest first. */
export function upsertHold(list: readonly Hold[], hold: Hold): Hold[] {
  const i = list.findIndex((h) => h.id === hold.id);
  const out = list.slice();
  if (i >= 0) out[i] = newerHold(list[i], hold);
  else out.push(hold);
  return out.sort((a, b) => (a.created_at === b.created_at ? 0 : a.created_at < b.created_at ? 1 : -1));
}

/** A fetched list with the live updates applied (each kept if further along). */
export function mergeHolds(fetched: readonly Hold[], live: readonly Hold[]): Hold[] {
  return live.reduce<Hold[]>((acc, h) => upsertHold(acc, h), fetched.slice());
}

/** Time left until `expiresAt`, in words ("4 min 05 s"), or "expiring" once due. */
export function countdown(expiresAt: string, nowMs: number): string {
  const left = Math.floor((Date.parse(expiresAt) - nowMs) / 1000);
  if (Number.isNaN(left)) return "";
  if (left <= 0) return "expiring…";
  const d = Math.floor(left / 86_400);
  const h = Math.floor((left % 86_400) / 3600);
  const m = Math.floor((left % 3600) / 60);
  const s = left % 60;
  if (d > 0) return `${d} d ${h} h`;
  if (h > 0) return `${h} h ${String(m).padStart(2, "0")} min`;
  if (m > 0) return `${m} min ${String(s).padStart(2, "0")} s`;
  return `${s} s`;
}

export interface HoldDraft {
  from_account: string;
  to_account: string;
  amount: string;
  currency: string;
  reference: string;
  expires_in_seconds: string;
}

export type HoldErrors = Partial<Record<keyof HoldDraft, string>>;

/** What is wrong with a hold form, by field (empty when it can be sent). */
export function holdErrors(d: HoldDraft): HoldErrors {
  const e: HoldErrors = {};
  if (!UUID_RE.test(d.from_account.trim())) e.from_account = "Choose one of your accounts.";
  if (!UUID_RE.test(d.to_account.trim())) e.to_account = "Enter the payee's account id (a UUID).";
  else if (d.to_account.trim().toLowerCase() === d.from_account.trim().toLowerCase())
    e.to_account = "The payee must be another account.";
  const amount = amountError(d.amount, d.currency);
  if (amount) e.amount = amount;
  const secs = d.expires_in_seconds.trim();
  if (!/^\d+$/.test(secs) || Number(secs) < 1 || Number(secs) > EXPIRES_MAX_SECONDS)
    e.expires_in_seconds = `Between 1 and ${EXPIRES_MAX_SECONDS} seconds (a week).`;
  if (d.reference.length > 140) e.reference = "At most 140 characters.";
  return e;
}

/** A capture amount: empty means the whole hold; otherwise at most what is held. */
export function captureError(text: string, hold: Hold): string | null {
  if (text.trim() === "") return null;
  const e = amountError(text, hold.currency);
  if (e) return e;
  return compareDecimal(text.trim(), hold.amount) > 0 ? "More than the amount held." : null;
}

export interface ReversalDraft {
  transfer_id: string;
  amount: string;
  reason: string;
}

/** What is wrong with a reversal form, by field. `currency` checks decimals when known. */
export function reversalErrors(d: ReversalDraft, currency = "EUR"): Partial<Record<keyof ReversalDraft, string>> {
  const e: Partial<Record<keyof ReversalDraft, string>> = {};
  if (!UUID_RE.test(d.transfer_id.trim())) e.transfer_id = "Enter the transfer id (a UUID).";
  if (d.amount.trim() !== "") {
    const a = amountError(d.amount, currency);
    if (a) e.amount = a;
  }
  const reason = d.reason.trim();
  if (reason === "") e.reason = "A reason is required.";
  else if ([...reason].length > REASON_MAX) e.reason = `At most ${REASON_MAX} characters.`;
  return e;
}
