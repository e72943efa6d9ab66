import { describe, expect, it } from "vitest";
import { formatGap, formatMs, formatRate, isTraceId, percentileRows, stageGapLabel, stageWords } from "./ops";

describe("formatMs", () => {
  it("uses precision that fits the size", () => {
    expect(formatMs(0.4234)).toBe("0.42 ms");
    expect(formatMs(0)).toBe("0 ms");
    expect(formatMs(3.44)).toBe("3.4 ms");
    expect(formatMs(57)).toBe("57 ms");
    expect(formatMs(57.26)).toBe("57.3 ms");
    expect(formatMs(123.6)).toBe("124 ms");
    expect(formatMs(1234.4)).toBe("1234 ms");
    expect(formatMs(12_345)).toBe("12.3 s");
  });
  it("shows missing timings as a dash and keeps the sign of clock skew", () => {
    expect(formatMs(null)).toBe("—");
    expect(formatMs(undefined)).toBe("—");
    expect(formatMs(Number.NaN)).toBe("—");
    expect(formatMs(-0.3)).toBe("-0.30 ms");
  });
  it("formats gaps between stages", () => {
    expect(formatGap(null)).toBe("start");
    expect(formatGap(2.5)).toBe("+2.5 ms");
    expect(stageGapLabel("received")).toBe("queue wait");
    expect(stageGapLabel("rejected")).toBe("apply");
    expect(stageWords("published").title).toBe("Published");
    expect(stageWords("something_new").title).toBe("Something_new");
  });
});

describe("stats", () => {
  it("formats throughput", () => {
    expect(formatRate(0)).toBe("0/s");
    expect(formatRate(0.05)).toBe("0.05/s");
    expect(formatRate(0.5)).toBe("0.5/s");
    expect(formatRate(12.25)).toBe("12.3/s");
    expect(formatRate(3)).toBe("3/s");
    expect(formatRate(1234.4)).toBe("1234/s");
  });
  it("lists every stage, with dashes where the window has no data", () => {
    const rows = percentileRows({
      window_seconds: 60,
      transfers: 2,
      committed: 1,
      rejected: 1,
      per_second: 2 / 60,
      latency_ms: { publish: { p50: 1.2, p90: 2, p99: 3.456 }, queue: null },
    });
    expect(rows.map((r) => r.key)).toEqual(["publish", "queue", "apply", "end_to_end"]);
    expect(rows[0]).toMatchObject({ known: true, p50: "1.2 ms", p90: "2.0 ms", p99: "3.5 ms" });
    expect(rows[1]).toMatchObject({ known: false, p50: "—" });
    expect(rows[3].known).toBe(false);
    expect(percentileRows(null)).toHaveLength(4);
  });
  it("recognises W3C trace ids", () => {
    expect(isTraceId("4bf92f3577b34da6a3ce929d0e0e4736")).toBe(true);
    expect(isTraceId("nope")).toBe(false);
    expect(isTraceId(null)).toBe(false);
  });
});
