import { amountError, isKnownCurrency } from "./money";

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const REFERENCE_MAX = 140;

export type TransferField = "from_account" | "to_account" | "amount" | "currency" | "reference";

export interface TransferDraft {
  from_account: string;
  to_account: string;
  amount: string;
  currency: string;
  reference: string;
}

export type FieldErrors = Partial<Record<TransferField | "Idempotency-Key", string>>;

// Control characters (Unicode category Cc), as the server's char::is_control.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Client-side checks that mirror the server's (gateway `validate`): the server
 * stays the authority, this only saves a round trip and explains early.
 * `ownAccounts` are the caller's account ids; when given, `from_account` must
 * be one of them.
 */
export function validateTransfer(d: TransferDraft, ownAccounts?: readonly string[]): FieldErrors {
  const errors: FieldErrors = {};
  const from = d.from_account.trim();
  const to = d.to_account.trim();
  if (!from) errors.from_account = "Choose the account to send from.";
  else if (!UUID_RE.test(from)) errors.from_account = "Must be an account id (a UUID).";
  else if (ownAccounts && !ownAccounts.some((a) => a.toLowerCase() === from.toLowerCase()))
    errors.from_account = "Choose one of your accounts.";

  if (!to) errors.to_account = "Enter the destination account id.";
  else if (!UUID_RE.test(to))
    errors.to_account = "Must be an account id (a UUID like 0a1b2c3d-…-…).";
  else if (from && to.toLowerCase() === from.toLowerCase())
    errors.to_account = "Must differ from the account you send from.";

  const currency = d.currency.trim();
  if (!currency) errors.currency = "Choose a currency.";
  else if (!/^[A-Z]{3}$/.test(currency)) errors.currency = "Must be a three-letter code such as EUR.";
  else if (!isKnownCurrency(currency)) errors.currency = `${currency} is not a supported currency.`;

  const amountMsg = amountError(d.amount, errors.currency ? "" : currency);
  if (amountMsg) errors.amount = amountMsg;

  if ([...d.reference].length > REFERENCE_MAX)
    errors.reference = `At most ${REFERENCE_MAX} characters.`;
  else if (CONTROL.test(d.reference)) errors.reference = "Must not contain control characters.";
  return errors;
}

export function hasErrors(e: FieldErrors): boolean {
  return Object.keys(e).length > 0;
}
