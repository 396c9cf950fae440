import { describe, expect, it } from "vitest";
import { balanceSeries, polyline } from "./chart";

const row = (at: string, balance: number) => ({ occurred_at: at, balance_after: { amount_minor: balance } });

describe("balance chart", () => {
  it("orders the history oldest first", () => {
    const series = balanceSeries([row("2026-01-03T00:00:00Z", 30), row("2026-01-01T00:00:00Z", 10), row("2026-01-02T00:00:00Z", 20)]);
    expect(series.map((p) => p.balance)).toEqual([10, 20, 30]);
  });

  it("scales into the box with zero at the bottom", () => {
    const series = balanceSeries([row("2026-01-01T00:00:00Z", 0), row("2026-01-02T00:00:00Z", 50), row("2026-01-03T00:00:00Z", 100)]);
    expect(polyline(series, 200, 100)).toBe("0,100 100,50 200,0");
    expect(polyline([], 200, 100)).toBe("");
    expect(polyline(series.slice(0, 1), 200, 100)).toBe("100,100");
  });
});
