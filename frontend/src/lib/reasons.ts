/** Rejection reasons (machine codes from the API) in words a customer reads. */
export const REASON_WORDS: Readonly<Record<string, string>> = Object.freeze({
  insufficient_funds: "Not enough money in the source account.",
  source_account_not_found: "The source account does not exist.",
  destination_account_not_found: "The destination account does not exist.",
  source_account_not_owned: "You can only send from your own accounts.",
  currency_mismatch: "The currency does not match both accounts.",
  same_account: "The source and destination are the same account.",
  invalid_amount: "The amount is not valid for this currency.",
  idempotency_key_reused: "This submission key was already used for a different transfer.",
  processing_failed: "The transfer could not be processed. No money was moved; please try again.",
  // Holds and reversals.
  hold_not_pending: "The hold is no longer pending: it was already captured, voided or expired.",
  capture_exceeds_hold: "The capture is more than the amount held.",
  reversal_exceeds_original: "The reversals would add up to more than the original transfer.",
  original_not_committed: "Only a committed transfer can be reversed.",
});

export function reasonWords(code: string | null | undefined): string {
  if (!code) return "Rejected.";
  const words = REASON_WORDS[code];
  if (words) return words;
  // An unknown code: still readable ("some_new_code" → "Some new code.").
  const text = code.replace(/[_-]+/g, " ").trim();
  return text ? `${text.charAt(0).toUpperCase()}${text.slice(1)}.` : "Rejected.";
}

export const STATUS_WORDS: Readonly<Record<string, string>> = Object.freeze({
  pending: "Pending",
  committed: "Committed",
  rejected: "Rejected",
  requested: "Requested",
  captured: "Captured",
  voided: "Voided",
  expired: "Expired",
});

export function statusWords(status: string): string {
  return STATUS_WORDS[status] ?? status;
}
