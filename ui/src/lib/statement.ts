// Account statements: a period's transactions as a CSV file a spreadsheet opens safely,
// and the figures a printed statement shows. Amounts stay in integer minor units until
// written out, so no total is ever off by a cent.

import { isDebit, kindWords } from "./format";
import { minorDigits } from "./money";

export type Row = {
  id: string;
  occurred_at: string;
  kind: string;
  amount: { amount_minor: number; currency: string };
  balance_after: { amount_minor: number; currency: string };
  counterparty_account_id?: string | null;
  counterparty_account_number?: string | null;
  description?: string | null;
};

/** Minor units as a plain decimal ("-1234.50"): what a spreadsheet reads as a number. */
export function decimal(minor: number, currency: string): string {
  const digits = minorDigits(currency);
  const sign = minor < 0 ? "-" : "";
  const absolute = Math.abs(minor);
  if (digits === 0) return `${sign}${absolute}`;
  const scale = 10 ** digits;
  return `${sign}${Math.floor(absolute / scale)}.${String(absolute % scale).padStart(digits, "0")}`;
}

/** One CSV field (RFC 4180); text that a spreadsheet would run as a formula is defused. */
function field(value: string, text = false): string {
  const safe = text && /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** The rows (any order) oldest first, as CSV with a header line. */
export function toCsv(rows: Row[]): string {
  const header = ["date", "kind", "counterparty_account", "debit", "credit", "balance_after", "currency", "description", "transaction_id"];
  const lines = [...rows]
    .sort((a, b) => a.occurred_at.localeCompare(b.occurred_at))
    .map((r) => {
      const currency = r.amount.currency;
      const amount = decimal(r.amount.amount_minor, currency);
      return [
        field(r.occurred_at),
        field(kindWords(r.kind)),
        field(r.counterparty_account_number ?? r.counterparty_account_id ?? ""),
        isDebit(r.kind) ? amount : "",
        isDebit(r.kind) ? "" : amount,
        decimal(r.balance_after.amount_minor, currency),
        field(currency),
        field(r.description ?? "", true),
        field(r.id),
      ].join(",");
    });
  return [header.join(","), ...lines].join("\r\n") + "\r\n";
}

export type Summary = { opening: number; closing: number; debits: number; credits: number; count: number };

/** Opening and closing balances and the period's totals, in minor units. */
export function summarize(rows: Row[]): Summary | null {
  if (rows.length === 0) return null;
  const ordered = [...rows].sort((a, b) => a.occurred_at.localeCompare(b.occurred_at));
  let debits = 0;
  let credits = 0;
  for (const r of ordered) {
    if (isDebit(r.kind)) debits += r.amount.amount_minor;
    else credits += r.amount.amount_minor;
  }
  const first = ordered[0];
  const signed = isDebit(first.kind) ? -first.amount.amount_minor : first.amount.amount_minor;
  return {
    opening: first.balance_after.amount_minor - signed,
    closing: ordered[ordered.length - 1].balance_after.amount_minor,
    debits,
    credits,
    count: ordered.length,
  };
}
