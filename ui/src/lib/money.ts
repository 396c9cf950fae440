// Money is integer minor units with an ISO 4217 currency, as the API speaks it.

export type Money = { amount_minor: number; currency: string };

/** Digits after the point for the currencies whose count is not 2. */
const MINOR_DIGITS: Record<string, number> = {
  BHD: 3, BIF: 0, CLP: 0, DJF: 0, GNF: 0, IQD: 3, ISK: 0, JOD: 3, JPY: 0, KMF: 0, KRW: 0, KWD: 3,
  LYD: 3, OMR: 3, PYG: 0, RWF: 0, TND: 3, UGX: 0, VND: 0, VUV: 0, XAF: 0, XOF: 0, XPF: 0,
};

export function minorDigits(currency: string): number {
  return MINOR_DIGITS[currency] ?? 2;
}

/** `1234.5 EUR` for 123450 minor units, grouped for reading. */
export function formatMoney(money: Money): string {
  const digits = minorDigits(money.currency);
  const negative = money.amount_minor < 0;
  const absolute = Math.abs(money.amount_minor);
  const scale = 10 ** digits;
  const whole = Math.floor(absolute / scale).toLocaleString("en-GB");
  const fraction = digits > 0 ? "." + String(absolute % scale).padStart(digits, "0") : "";
  return `${negative ? "-" : ""}${whole}${fraction} ${money.currency}`;
}

/**
 * Parses what a person types ("12", "12.5", "1,234.56") into minor units, or returns an
 * error message. Never goes through floating point.
 */
export function parseAmount(text: string, currency: string): { ok: true; minor: number } | { ok: false; error: string } {
  const digits = minorDigits(currency);
  const cleaned = text.trim().replace(/,/g, "");
  const pattern = digits > 0 ? new RegExp(`^(\\d+)(?:\\.(\\d{1,${digits}}))?$`) : /^(\d+)$/;
  const match = pattern.exec(cleaned);
  if (!match) {
    return { ok: false, error: digits > 0 ? `Enter an amount with at most ${digits} decimals` : "Enter a whole amount" };
  }
  const whole = BigInt(match[1]);
  const fraction = BigInt((match[2] ?? "").padEnd(digits, "0") || "0");
  const minor = whole * 10n ** BigInt(digits) + fraction;
  if (minor <= 0n) {
    return { ok: false, error: "The amount must be more than zero" };
  }
  if (minor > 1_000_000_000_000_000n) {
    return { ok: false, error: "The amount is too large" };
  }
  return { ok: true, minor: Number(minor) };
}
