import { describe, expect, it } from "vitest";
import { REASON_WORDS, reasonWords, statusWords } from "./reasons";

const CODES = [
  "insufficient_funds", "source_account_not_found", "destination_account_not_found", "source_account_not_owned",
  "currency_mismatch", "same_account", "invalid_amount", "idempotency_key_reused", "processing_failed",
];

describe("reasonWords", () => {
  it("has words for every documented code", () => {
    for (const c of CODES) {
      expect(REASON_WORDS[c]).toBeTruthy();
      expect(reasonWords(c)).not.toMatch(/_/);
    }
    expect(reasonWords("insufficient_funds")).toBe("Not enough money in the source account.");
    expect(reasonWords("currency_mismatch")).toMatch(/currency/i);
  });

  it("stays readable for unknown or missing codes", () => {
    expect(reasonWords("daily_limit_exceeded")).toBe("Daily limit exceeded.");
    expect(reasonWords(undefined)).toBe("Rejected.");
    expect(reasonWords("")).toBe("Rejected.");
  });

  it("names statuses", () => {
    expect(statusWords("committed")).toBe("Committed");
    expect(statusWords("pending")).toBe("Pending");
    expect(statusWords("rejected")).toBe("Rejected");
    expect(statusWords("weird")).toBe("weird");
    expect(statusWords("voided")).toBe("Voided");
  });

  it("has words for the hold and reversal codes", () => {
    for (const c of ["hold_not_pending", "capture_exceeds_hold", "reversal_exceeds_original", "original_not_committed"]) {
      expect(reasonWords(c)).not.toMatch(/_/);
    }
  });
});
