import { describe, expect, it } from "vitest";
import { amountError, compareDecimal, formatMoney, isNegative, normalizeAmount } from "./money";

describe("amountError", () => {
  it.each([
    ["12.34", "EUR"], ["1", "EUR"], ["0.01", "EUR"], ["100", "JPY"], ["1.234", "KWD"], ["1.5", "BHD"],
    ["1000000000", "EUR"], ["1000000000.00", "EUR"], ["12.30", "EUR"], ["100.0", "JPY"], [" 5.00 ", "USD"],
  ])("accepts %s %s", (a, c) => expect(amountError(a, c)).toBeNull());

  it.each([
    ["", "EUR", /enter an amount/i],
    ["0", "EUR", /greater than zero/i],
    ["0.00", "EUR", /greater than zero/i],
    ["-1", "EUR", /greater than zero/i],
    ["1.234", "EUR", /at most 2 decimal/i],
    ["1.5", "JPY", /no decimal/i],
    ["1.2345", "KWD", /at most 3 decimal/i],
    ["12,34", "EUR", /dot/i],
    ["1e3", "EUR", /number such as/i],
    ["1.", "EUR", /number such as/i],
    [".5", "EUR", /number such as/i],
    ["+1", "EUR", /number such as/i],
    ["1 000", "EUR", /number such as/i],
    ["0x10", "EUR", /number such as/i],
    ["1000000000.01", "EUR", /exceed/i],
    ["99999999999999999999", "EUR", /exceed/i],
  ])("rejects %j %s", (a, c, re) => expect(amountError(a, c)).toMatch(re));

  it("never uses floats: digits beyond double precision still compare exactly", () => {
    expect(compareDecimal("1000000000.0000000000000001", "1000000000")).toBe(1);
    expect(amountError("999999999.99", "EUR")).toBeNull();
  });
});

describe("compareDecimal", () => {
  it("orders decimal strings", () => {
    expect(compareDecimal("1", "1.00")).toBe(0);
    expect(compareDecimal("001.5", "1.49")).toBe(1);
    expect(compareDecimal("2", "10")).toBe(-1);
    expect(compareDecimal("0.1", "0.09")).toBe(1);
  });
});

describe("normalizeAmount", () => {
  it("pads to the currency's minor units and trims", () => {
    expect(normalizeAmount(" 1 ", "EUR")).toBe("1.00");
    expect(normalizeAmount("1.5", "EUR")).toBe("1.50");
    expect(normalizeAmount("007.10", "USD")).toBe("7.10");
    expect(normalizeAmount("100", "JPY")).toBe("100");
    expect(normalizeAmount("100.0", "JPY")).toBe("100");
    expect(normalizeAmount("1.5", "KWD")).toBe("1.500");
  });
});

describe("formatMoney", () => {
  it("formats per currency", () => {
    expect(formatMoney("1234.5", "EUR", "en-US")).toBe("€1,234.50");
    expect(formatMoney("-1234.50", "USD", "en-US")).toBe("-$1,234.50");
    expect(formatMoney("1234", "JPY", "en-US")).toBe("¥1,234");
    expect(formatMoney("1.5", "KWD", "en-US")).toMatch(/^KWD\s1\.500$/);
    expect(formatMoney("1234.50", "EUR", "de-DE")).toMatch(/^1\.234,50\s€$/);
  });

  it("keeps every digit of large amounts (no float rounding)", () => {
    expect(formatMoney("12345678901234567.89", "EUR", "en-US")).toBe("€12,345,678,901,234,567.89");
    expect(formatMoney("0.10", "EUR", "en-US")).toBe("€0.10");
  });

  it("falls back to plain text for odd input", () => {
    expect(formatMoney("abc", "EUR", "en-US")).toBe("abc EUR");
    expect(formatMoney("10.00", "ZZZ", "en-US")).toMatch(/10\.00|ZZZ/);
  });
});

describe("isNegative", () => {
  it("spots debits", () => {
    expect(isNegative("-1.00")).toBe(true);
    expect(isNegative("-0.01")).toBe(true);
    expect(isNegative("1.00")).toBe(false);
    expect(isNegative("-0.00")).toBe(false);
    expect(isNegative("0")).toBe(false);
  });
});
