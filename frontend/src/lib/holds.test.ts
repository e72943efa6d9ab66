import { describe, expect, it } from "vitest";
import { captureError, countdown, holdErrors, isFinalHold, mergeHolds, reversalErrors, upsertHold, type Hold } from "./holds";

const A = "a11ce000-0000-4000-8000-000000000001";
const B = "b0b00000-0000-4000-8000-000000000001";

function hold(id: string, status: string, created_at = "2026-11-30T10:00:00Z"): Hold {
  return {
    id, status, from_account: A, to_account: B, amount: "10.00", currency: "EUR",
    created_at, expires_at: "2026-11-30T11:00:00Z",
  };
}

describe("live hold updates", () => {
  it("never let an earlier state replace a later one", () => {
    let list = upsertHold([], hold("h1", "pending"));
    list = upsertHold(list, hold("h1", "captured"));
    list = upsertHold(list, hold("h1", "pending")); // late duplicate
    expect(list).toHaveLength(1);
    expect(list[0].status).toBe("captured");
    expect(isFinalHold("captured")).toBe(true);
    expect(isFinalHold("pending")).toBe(false);
  });

  it("keep newest first and merge fetched with live", () => {
    const merged = mergeHolds(
      [hold("old", "pending", "2026-11-30T09:00:00Z")],
      [hold("new", "requested", "2026-11-30T10:00:00Z"), hold("old", "voided", "2026-11-30T09:00:00Z")],
    );
    expect(merged.map((h) => [h.id, h.status])).toEqual([["new", "requested"], ["old", "voided"]]);
  });
});

describe("countdown", () => {
  const at = Date.parse("2026-11-30T10:00:00Z");
  it("reads in words and stops at expiry", () => {
    expect(countdown("2026-11-30T10:04:05Z", at)).toBe("4 min 05 s");
    expect(countdown("2026-11-30T10:00:09Z", at)).toBe("9 s");
    expect(countdown("2026-11-30T12:30:00Z", at)).toBe("2 h 30 min");
    expect(countdown("2026-12-03T10:00:00Z", at)).toBe("3 d 0 h");
    expect(countdown("2026-11-30T09:59:59Z", at)).toBe("expiring…");
  });
});

describe("forms", () => {
  const draft = { from_account: A, to_account: B, amount: "5.00", currency: "EUR", reference: "", expires_in_seconds: "3600" };
  it("checks a hold like the server", () => {
    expect(holdErrors(draft)).toEqual({});
    expect(holdErrors({ ...draft, expires_in_seconds: "0" }).expires_in_seconds).toMatch(/604800/);
    expect(holdErrors({ ...draft, expires_in_seconds: "604801" }).expires_in_seconds).toBeTruthy();
    expect(holdErrors({ ...draft, to_account: A }).to_account).toMatch(/another/);
    expect(holdErrors({ ...draft, amount: "1.234" }).amount).toMatch(/decimal/);
  });

  it("allows a full or partial capture, never more than held", () => {
    const h = hold("h", "pending");
    expect(captureError("", h)).toBeNull();
    expect(captureError("4.00", h)).toBeNull();
    expect(captureError("10.00", h)).toBeNull();
    expect(captureError("10.01", h)).toMatch(/More/);
  });

  it("requires a reversal reason", () => {
    const r = { transfer_id: A, amount: "", reason: "fraud reported" };
    expect(reversalErrors(r)).toEqual({});
    expect(reversalErrors({ ...r, reason: "  " }).reason).toMatch(/required/);
    expect(reversalErrors({ ...r, reason: "x".repeat(201) }).reason).toMatch(/200/);
    expect(reversalErrors({ ...r, transfer_id: "abc" }).transfer_id).toBeTruthy();
    expect(reversalErrors({ ...r, amount: "-1" }).amount).toBeTruthy();
  });
});
