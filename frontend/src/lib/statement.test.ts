import { describe, expect, it } from "vitest";
import { dayStart, defaultDays, defaultFilename, filenameFrom, statementRange } from "./statement";

describe("statementRange", () => {
  it("covers whole UTC days, both included", () => {
    expect(statementRange("2026-11-01", "2026-11-30")).toEqual({
      from: "2026-11-01T00:00:00Z",
      to: "2026-11-30T23:59:59.999999Z",
    });
    expect(statementRange("2026-11-30", "2026-11-30")).toEqual({
      from: "2026-11-30T00:00:00Z",
      to: "2026-11-30T23:59:59.999999Z",
    });
  });

  it("refuses days that do not exist, reversed ranges and more than 366 days", () => {
    expect(statementRange("2026-02-31", "2026-03-01")).toMatch(/start date/);
    expect(statementRange("2026-01-01", "")).toMatch(/end date/);
    expect(statementRange("2026-02-01", "2026-01-01")).toMatch(/before/);
    expect(statementRange("2024-01-01", "2024-12-31")).not.toBeTypeOf("string"); // 366 days (leap year)
    expect(statementRange("2025-01-01", "2026-01-01")).not.toBeTypeOf("string");
    expect(statementRange("2025-01-01", "2026-01-02")).toMatch(/366/);
  });
});

describe("dates and names", () => {
  it("reads real days only", () => {
    expect(dayStart("2026-11-30")).toBe(Date.UTC(2026, 10, 30));
    expect(dayStart("30/11/2026")).toBeNull();
  });

  it("defaults to this month so far", () => {
    expect(defaultDays(new Date("2026-11-30T15:00:00Z"))).toEqual({ fromDay: "2026-11-01", toDay: "2026-11-30" });
  });

  it("takes the server's file name, never a path", () => {
    const fallback = defaultFilename("a1", "2026-11-01", "2026-11-30");
    expect(fallback).toBe("statement-a1-2026-11-01-2026-11-30.csv");
    expect(filenameFrom('attachment; filename="statement-x-2026-11-01-2026-11-30.csv"', fallback)).toBe(
      "statement-x-2026-11-01-2026-11-30.csv",
    );
    expect(filenameFrom('attachment; filename="../../etc/passwd"', fallback)).toBe(fallback);
    expect(filenameFrom(null, fallback)).toBe(fallback);
  });
});
