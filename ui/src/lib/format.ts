// Dates and times as people read them: the browser's locale and time zone, the zone named.

// dateStyle/timeStyle cannot be combined with timeZoneName, so the parts are named.
const WHEN = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
});
const DAY = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });

/** An instant (RFC 3339) with its date, time and time zone. */
export function formatWhen(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : WHEN.format(date);
}

/** A calendar date (`YYYY-MM-DD`, or an instant's day). */
export function formatDay(iso: string): string {
  const date = new Date(iso.length === 10 ? `${iso}T00:00:00` : iso);
  return Number.isNaN(date.getTime()) ? iso : DAY.format(date);
}

/** The kinds of movement that take money out of the account. */
const DEBITS = new Set(["withdrawal", "external_debit", "transfer_out"]);

export function isDebit(kind: string): boolean {
  return DEBITS.has(kind);
}

/** A kind as words: `transfer_out` → `transfer out`. */
export function kindWords(kind: string): string {
  return kind.replace(/_/g, " ");
}

/** The short, distinct tail of an id (UUIDv7s made together share their first digits). */
export function idTail(id: string): string {
  return `…${id.replace(/-/g, "").slice(-6)}`;
}

/** Whole days (`YYYY-MM-DD`, either may be empty) in the browser's time zone, as the API's instants. */
export function periodParams(from: string, to: string): { from?: string; to?: string } {
  return {
    from: from ? new Date(`${from}T00:00:00`).toISOString() : undefined,
    to: to ? new Date(`${to}T23:59:59.999`).toISOString() : undefined,
  };
}

/** The other account of a transfer: its number when known, else the tail of its id. */
export function counterpartyWords(t: { counterparty_account_id?: string | null; counterparty_account_number?: string | null }): string {
  if (t.counterparty_account_number) return formatAccountNumber(t.counterparty_account_number);
  return t.counterparty_account_id ? `account ${idTail(t.counterparty_account_id)}` : "";
}

/** An account number in groups of four, as printed on statements: `LL70 0000 0000 0042`. */
export function formatAccountNumber(compact: string): string {
  return compact.replace(/\s+/g, "").replace(/(.{4})(?=.)/g, "$1 ");
}
