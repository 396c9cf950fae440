import { describe, expect, it } from "vitest";
import { formatMoney, parseAmount } from "./money";

describe("formatMoney", () => {
  it("writes minor units with the currency's decimals", () => {
    expect(formatMoney({ amount_minor: 123450, currency: "EUR" })).toBe("1,234.50 EUR");
    expect(formatMoney({ amount_minor: 5, currency: "EUR" })).toBe("0.05 EUR");
    expect(formatMoney({ amount_minor: 1500, currency: "JPY" })).toBe("1,500 JPY");
    expect(formatMoney({ amount_minor: 1234, currency: "BHD" })).toBe("1.234 BHD");
    // The locale's separators; large amounts to the cent.
    expect(formatMoney({ amount_minor: 123450, currency: "EUR" }, "de-DE")).toBe("1.234,50 EUR");
    expect(formatMoney({ amount_minor: -2000, currency: "EUR" }, "en-GB")).toBe("-20.00 EUR");
    expect(formatMoney({ amount_minor: 900719925474099, currency: "EUR" }, "en-US")).toBe("9,007,199,254,740.99 EUR");
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

  it("reads the browser's locale, and never takes a decimal mark for grouping", () => {
    expect(parseAmount("12,50", "EUR", "de-DE")).toEqual({ ok: true, minor: 1250 });
    expect(parseAmount("1.234,56", "EUR", "de-DE")).toEqual({ ok: true, minor: 123456 });
    expect(parseAmount("12.50", "EUR", "de-DE").ok).toBe(false);
    expect(parseAmount("12,50", "EUR", "en-US").ok).toBe(false);
    expect(parseAmount("1,234,567.8", "EUR", "en-US")).toEqual({ ok: true, minor: 123456780 });
    expect(parseAmount("1,23,456", "EUR", "en-US").ok).toBe(false);
    expect(parseAmount("1 234,5", "EUR", "fr-FR")).toEqual({ ok: true, minor: 123450 });
  });
});
