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

const FORMATS = new Map<string, Intl.NumberFormat>();

/**
 * `1,234.50 EUR` for 123450 minor units, in the browser's locale (`1.234,50 EUR` in
 * German) and with the ISO code, as bank staff read amounts. The exact decimal is given
 * to `Intl` as text, so no amount goes through floating point.
 */
export function formatMoney(money: Money, locale?: string): string {
  const digits = minorDigits(money.currency);
  const key = `${locale ?? ""}/${digits}`;
  let format = FORMATS.get(key);
  if (!format) {
    format = new Intl.NumberFormat(locale, { minimumFractionDigits: digits, maximumFractionDigits: digits });
    FORMATS.set(key, format);
  }
  const negative = money.amount_minor < 0;
  const absolute = BigInt(Math.abs(money.amount_minor));
  const scale = 10n ** BigInt(digits);
  const fraction = digits > 0 ? `.${String(absolute % scale).padStart(digits, "0")}` : "";
  const exact = `${negative ? "-" : ""}${absolute / scale}${fraction}`;
  // format() takes a decimal string exactly (Intl.NumberFormat v3).
  return `${format.format(exact as unknown as number)} ${money.currency}`;
}

/** The locale's decimal and grouping marks (`.` and `,` in English, `,` and `.` in German). */
export function separators(locale?: string): { decimal: string; group: string } {
  const parts = new Intl.NumberFormat(locale).formatToParts(12345.6);
  const decimal = parts.find((p) => p.type === "decimal")?.value ?? ".";
  const group = parts.find((p) => p.type === "group")?.value ?? (decimal === "," ? "." : ",");
  return { decimal, group };
}

/**
 * Parses what a person types ("12", "12.5", "1,234.56"; in German "12,5", "1.234,56")
 * into minor units, or returns an error message. Grouping marks are taken only between
 * groups of three digits, so "12,50" in English is refused rather than read as 1250.
 * Never goes through floating point.
 */
export function parseAmount(
  text: string,
  currency: string,
  locale?: string,
): { ok: true; minor: number } | { ok: false; error: string } {
  const digits = minorDigits(currency);
  const { decimal, group } = separators(locale);
  const esc = (mark: string) => mark.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  // A space-like group mark (French, Swiss) may be typed as any space.
  const groupMark = /\s/.test(group) ? "[ \\u00a0\\u202f]" : esc(group);
  const integer = `(\\d{1,3}(?:${groupMark}\\d{3})+|\\d+)`;
  const pattern =
    digits > 0 ? new RegExp(`^${integer}(?:${esc(decimal)}(\\d{1,${digits}}))?$`) : new RegExp(`^${integer}$`);
  const match = pattern.exec(text.trim());
  if (!match) {
    return {
      ok: false,
      error: digits > 0 ? `Enter an amount such as 1${group}234${decimal}50, with at most ${digits} decimals` : "Enter a whole amount",
    };
  }
  const whole = BigInt(match[1].replace(/\D/g, ""));
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
