import { describe, expect, it } from "vitest";
import { formatWhen, idTail, isDebit, kindWords } from "./format";

describe("format", () => {
  it("names the time zone of a time", () => {
    const text = formatWhen("2026-11-27T10:15:00Z");
    expect(text).toMatch(/2026/);
    expect(text).toMatch(/UTC|GMT|[A-Z]{2,5}|[+-]\d/);
    expect(formatWhen("not a time")).toBe("not a time");
  });

  it("tells debits from credits", () => {
    expect(["withdrawal", "external_debit", "transfer_out"].every(isDebit)).toBe(true);
    expect(["deposit", "opening_deposit", "transfer_in", "external_credit", "transfer_reversal"].some(isDebit)).toBe(false);
    expect(kindWords("transfer_out")).toBe("transfer out");
  });

  it("tells ids made together apart by their tails", () => {
    const a = "01a21ee3-9769-7216-9271-86c0aa01b2c3";
    const b = "01a21ee3-9769-7216-9271-86c0aa44d5e6";
    expect(idTail(a)).toBe("…01b2c3");
    expect(idTail(a)).not.toBe(idTail(b));
  });
});
