import { describe, expect, it } from "vitest";
import { validateTransfer, type TransferDraft } from "./validation";

const ALICE_EUR = "a11ce000-0000-4000-8000-000000000001";
const BOB_EUR = "b0b00000-0000-4000-8000-000000000001";
const ok: TransferDraft = { from_account: ALICE_EUR, to_account: BOB_EUR, amount: "1.00", currency: "EUR", reference: "" };

describe("validateTransfer", () => {
  it("accepts a good transfer", () => {
    expect(validateTransfer(ok, [ALICE_EUR])).toEqual({});
    expect(validateTransfer({ ...ok, to_account: BOB_EUR.toUpperCase(), reference: "Rent März" }, [ALICE_EUR])).toEqual({});
  });

  it("requires the destination to be a UUID", () => {
    expect(validateTransfer({ ...ok, to_account: "bob" }).to_account).toMatch(/UUID/);
    expect(validateTransfer({ ...ok, to_account: "" }).to_account).toMatch(/destination/);
  });

  it("refuses sending to the same account", () => {
    expect(validateTransfer({ ...ok, to_account: ALICE_EUR.toUpperCase() }).to_account).toMatch(/differ/);
  });

  it("requires the source to be one of mine", () => {
    expect(validateTransfer(ok, ["a11ce000-0000-4000-8000-000000000002"]).from_account).toMatch(/your accounts/);
    expect(validateTransfer({ ...ok, from_account: "" }).from_account).toBeTruthy();
  });

  it("knows currencies", () => {
    expect(validateTransfer({ ...ok, currency: "XYZ" }).currency).toMatch(/not a supported/);
    expect(validateTransfer({ ...ok, currency: "eur" }).currency).toMatch(/three-letter/);
    expect(validateTransfer({ ...ok, currency: "" }).currency).toBeTruthy();
  });

  it("checks the amount against the currency's minor units", () => {
    expect(validateTransfer({ ...ok, amount: "1.001" }).amount).toMatch(/2 decimal/);
    expect(validateTransfer({ ...ok, currency: "JPY", amount: "1.5" }).amount).toMatch(/no decimal/);
    expect(validateTransfer({ ...ok, currency: "KWD", amount: "1.125" }).amount).toBeUndefined();
    expect(validateTransfer({ ...ok, amount: "0" }).amount).toMatch(/greater than zero/);
    expect(validateTransfer({ ...ok, amount: "-5" }).amount).toMatch(/greater than zero/);
  });

  it("limits the reference like the server", () => {
    expect(validateTransfer({ ...ok, reference: "x".repeat(140) }).reference).toBeUndefined();
    expect(validateTransfer({ ...ok, reference: "x".repeat(141) }).reference).toMatch(/140/);
    expect(validateTransfer({ ...ok, reference: "a\u0007b" }).reference).toMatch(/control/);
    // 140 characters, not bytes
    expect(validateTransfer({ ...ok, reference: "€".repeat(140) }).reference).toBeUndefined();
  });
});
