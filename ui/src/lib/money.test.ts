import { describe, expect, it } from "vitest";
import { formatMoney, parseAmount } from "./money";

describe("formatMoney", () => {
  it("writes minor units with the currency's decimals", () => {
    expect(formatMoney({ amount_minor: 123450, currency: "EUR" })).toBe("1,234.50 EUR");
    expect(formatMoney({ amount_minor: 5, currency: "EUR" })).toBe("0.05 EUR");
    expect(formatMoney({ amount_minor: 1500, currency: "JPY" })).toBe("1,500 JPY");
    expect(formatMoney({ amount_minor: 1234, currency: "BHD" })).toBe("1.234 BHD");
  });
});

describe("parseAmount", () => {
  it("reads amounts without floating point", () => {
    expect(parseAmount("12", "EUR")).toEqual({ ok: true, minor: 1200 });
    expect(parseAmount("12.5", "EUR")).toEqual({ ok: true, minor: 1250 });
    expect(parseAmount("1,234.56", "EUR")).toEqual({ ok: true, minor: 123456 });
    expect(parseAmount("0.10", "EUR")).toEqual({ ok: true, minor: 10 });
    expect(parseAmount("300", "JPY")).toEqual({ ok: true, minor: 300 });
  });

  it("refuses what is not an amount", () => {
    for (const bad of ["", "abc", "-5", "1.234", "0", "0.00", "1e3", "12.", "99999999999999999999"]) {
      expect(parseAmount(bad, "EUR").ok, bad).toBe(false);
    }
    expect(parseAmount("1.5", "JPY").ok).toBe(false);
  });
});
