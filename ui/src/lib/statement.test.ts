import { describe, expect, it } from "vitest";
import { decimal, summarize, toCsv, type Row } from "./statement";

const eur = (amount_minor: number) => ({ amount_minor, currency: "EUR" });
const rows: Row[] = [
  { id: "t3", occurred_at: "2026-11-03T10:00:00Z", kind: "transfer_out", amount: eur(2000), balance_after: eur(10550), counterparty_account_id: "a-2" },
  { id: "t1", occurred_at: "2026-11-01T10:00:00Z", kind: "opening_deposit", amount: eur(10000), balance_after: eur(10000) },
  { id: "t2", occurred_at: "2026-11-02T10:00:00Z", kind: "deposit", amount: eur(2550), balance_after: eur(12550), description: '=HYPERLINK("x"), "quoted"' },
];

describe("statements", () => {
  it("writes amounts as plain decimals, never through floating point", () => {
    expect(decimal(12550, "EUR")).toBe("125.50");
    expect(decimal(-5, "EUR")).toBe("-0.05");
    expect(decimal(1500, "JPY")).toBe("1500");
    expect(decimal(1234, "KWD")).toBe("1.234");
  });

  it("writes CSV oldest first, debits and credits apart, formulas defused and quotes escaped", () => {
    const lines = toCsv(rows).split("\r\n");
    expect(lines[0]).toBe("date,kind,counterparty_account,debit,credit,balance_after,currency,description,transaction_id");
    expect(lines[1]).toBe("2026-11-01T10:00:00Z,opening deposit,,,100.00,100.00,EUR,,t1");
    expect(lines[2]).toBe(`2026-11-02T10:00:00Z,deposit,,,25.50,125.50,EUR,"'=HYPERLINK(""x""), ""quoted""",t2`);
    expect(lines[3]).toBe("2026-11-03T10:00:00Z,transfer out,a-2,20.00,,105.50,EUR,,t3");
    expect(lines[4]).toBe("");
  });

  it("sums a period and finds its opening and closing balances", () => {
    expect(summarize(rows)).toEqual({ opening: 0, closing: 10550, debits: 2000, credits: 12550, count: 3 });
    expect(summarize(rows.slice(0, 1))).toEqual({ opening: 12550, closing: 10550, debits: 2000, credits: 0, count: 1 });
    expect(summarize([])).toBeNull();
  });
});
