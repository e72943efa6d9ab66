import { describe, expect, it } from "vitest";
import { parseBatch, parseCsv, parseCsvRows, serverHeaderProblem } from "./csv";

const A = "a11ce000-0000-4000-8000-000000000001";
const B = "b0b00000-0000-4000-8000-000000000001";

describe("parseCsv", () => {
  it("handles quotes, escaped quotes, commas and CRLF", () => {
    expect(parseCsv('a,b\r\n"x, y","say ""hi"""\n')).toEqual([["a", "b"], ["x, y", 'say "hi"']]);
    expect(parseCsv("\ufeffa,b\n1,2")).toEqual([["a", "b"], ["1", "2"]]);
    expect(parseCsv('a\n"multi\nline"')).toEqual([["a"], ["multi\nline"]]);
  });
});

describe("parseBatch", () => {
  it("validates each line like the form and builds wire bodies", () => {
    const csv = [
      "currency,amount,from_account,to_account,reference",
      `eur,1.5,${A},${B},rent`,
      `EUR,1.234,${A},${B},`,
      `JPY,100,${A},${A},`,
      "",
    ].join("\n");
    const r = parseBatch(csv, [A]);
    expect(r.error).toBeNull();
    expect(r.lines).toHaveLength(3);
    expect(r.lines[0]).toEqual({
      line: 2,
      errors: {},
      body: { from_account: A, to_account: B, amount: "1.50", currency: "EUR", reference: "rent" },
    });
    expect(r.lines[1].errors.amount).toMatch(/2 decimal/);
    expect(r.lines[1].body).toBeNull();
    expect(r.lines[2].errors.to_account).toMatch(/differ/);
  });

  it("explains a bad file", () => {
    expect(parseBatch("").error).toMatch(/empty/);
    expect(parseBatch("from_account,amount\n").error).toMatch(/missing: to_account, currency/);
    expect(parseBatch("from_account,to_account,amount,currency\n").error).toMatch(/no payments/);
  });
});

describe("physical line numbers and the header the API needs", () => {
  it("numbers rows by the line they start on (blank lines and quoted newlines count)", () => {
    expect(parseCsvRows('a\n\n"x\ny",z\r\nlast').map((r) => r.line)).toEqual([1, 2, 3, 5]);
    const r = parseBatch(`from_account,to_account,amount,currency\n\n${A},${B},1.00,EUR\n`, [A]);
    expect(r.lines.map((l) => l.line)).toEqual([3]);
  });
  it("accepts only the exact column order the batch API reads", () => {
    expect(serverHeaderProblem("from_account,to_account,amount,currency,reference\n")).toBeNull();
    expect(serverHeaderProblem("\ufeff from_account , to_account,amount,currency\n")).toBeNull();
    expect(serverHeaderProblem("currency,amount,from_account,to_account\n")).toMatch(/exactly/);
    expect(serverHeaderProblem("From_Account,to_account,amount,currency\n")).toMatch(/lower case/);
  });
});
