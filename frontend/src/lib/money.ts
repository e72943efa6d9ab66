// Money travels as decimal strings ("1234.50"). Nothing here turns an amount
// into a float for arithmetic: validation works on the text, formatting hands
// the string to Intl.NumberFormat (which keeps string input exact).

/** ISO 4217 minor units for the currencies this page knows. Mirrors the server. */
export const MINOR_UNITS: Readonly<Record<string, number>> = Object.freeze({
  EUR: 2,
  USD: 2,
  GBP: 2,
  CHF: 2,
  JPY: 0,
  KWD: 3,
  BHD: 3,
  // Other common ones (the server accepts any ISO 4217 money currency).
  AUD: 2,
  CAD: 2,
  CZK: 2,
  DKK: 2,
  HUF: 2,
  NOK: 2,
  PLN: 2,
  SEK: 2,
  OMR: 3,
  JOD: 3,
  TND: 3,
  KRW: 0,
  ISK: 0,
});

/** Largest amount of one transfer, in major units (server: AMOUNT_MAX). */
export const AMOUNT_MAX_INTEGER = "1000000000";

export function isKnownCurrency(code: string): boolean {
  return Object.prototype.hasOwnProperty.call(MINOR_UNITS, code);
}

export function minorUnits(code: string): number | undefined {
  return isKnownCurrency(code) ? MINOR_UNITS[code] : undefined;
}

const PLAIN_DECIMAL = /^\d+(\.\d+)?$/;

/** Compares two non-negative plain decimal strings: -1, 0 or 1. */
export function compareDecimal(a: string, b: string): number {
  const [ai, af = ""] = a.split(".");
  const [bi, bf = ""] = b.split(".");
  const aInt = ai.replace(/^0+(?=\d)/, "");
  const bInt = bi.replace(/^0+(?=\d)/, "");
  if (aInt.length !== bInt.length) return aInt.length < bInt.length ? -1 : 1;
  if (aInt !== bInt) return aInt < bInt ? -1 : 1;
  const len = Math.max(af.length, bf.length);
  const aF = af.padEnd(len, "0");
  const bF = bf.padEnd(len, "0");
  if (aF === bF) return 0;
  return aF < bF ? -1 : 1;
}

/**
 * Validates an amount typed by a person, the way the server does: a plain
 * decimal ("12.34"), greater than zero, at most AMOUNT_MAX, and no more
 * decimals than the currency has (trailing zeros beyond it are fine, as on
 * the server). Returns an error message, or null when valid.
 */
export function amountError(text: string, currency: string): string | null {
  const t = text.trim();
  if (t === "") return "Enter an amount.";
  if (/^-\d/.test(t)) return "Amount must be greater than zero.";
  if (/^\d+,\d+$/.test(t)) return "Use a dot as decimal separator, e.g. 12.34.";
  if (!PLAIN_DECIMAL.test(t)) return "Amount must be a number such as 12.34 (digits and one dot).";
  if (/^[0.]+$/.test(t)) return "Amount must be greater than zero.";
  const units = minorUnits(currency);
  if (units !== undefined) {
    const frac = (t.split(".")[1] ?? "").replace(/0+$/, "");
    if (frac.length > units) {
      return units === 0
        ? `${currency} has no decimal places.`
        : `${currency} allows at most ${units} decimal place${units === 1 ? "" : "s"}.`;
    }
  }
  if (compareDecimal(t, AMOUNT_MAX_INTEGER) > 0) return "Amount must not exceed 1,000,000,000.";
  return null;
}

/** The wire form of a valid amount: trimmed, padded to the currency's decimals. */
export function normalizeAmount(text: string, currency: string): string {
  const t = text.trim();
  const units = minorUnits(currency);
  if (units === undefined) return t;
  let [int, frac = ""] = t.split(".");
  int = int.replace(/^0+(?=\d)/, "");
  frac = frac.replace(/0+$/, "").padEnd(units, "0");
  return units === 0 ? int : `${int}.${frac}`;
}

const formatters = new Map<string, Intl.NumberFormat>();

function formatter(currency: string, locale?: string): Intl.NumberFormat | null {
  const key = `${locale ?? ""}|${currency}`;
  let f = formatters.get(key);
  if (!f) {
    try {
      f = new Intl.NumberFormat(locale, { style: "currency", currency });
    } catch {
      return null;
    }
    formatters.set(key, f);
  }
  return f;
}

/** Groups the integer digits of a plain decimal string by thousands. */
function groupDigits(int: string, sep = ","): string {
  return int.replace(/\B(?=(\d{3})+(?!\d))/g, sep);
}

/**
 * Formats a decimal string for display, e.g. ("-1234.5", "EUR") → "-€1,234.50".
 * The string is passed to Intl as a string so large values keep every digit;
 * engines without exact string formatting fall back to a plain rendering.
 */
export function formatMoney(amount: string, currency: string, locale?: string): string {
  const text = amount.trim();
  const m = /^([+-]?)(\d+)(?:\.(\d+))?$/.exec(text);
  if (!m) return `${text} ${currency}`;
  const [, sign, intRaw, fracRaw = ""] = m;
  const int = intRaw.replace(/^0+(?=\d)/, "");
  const units = minorUnits(currency);
  const frac = units === undefined ? fracRaw : fracRaw.padEnd(units, "0").slice(0, Math.max(units, fracRaw.replace(/0+$/, "").length));
  const exact = `${sign === "-" ? "-" : ""}${int}${frac ? "." + frac : ""}`;
  const f = formatter(currency, locale);
  if (f) {
    // ES2023 Intl.NumberFormat accepts a string and formats it exactly.
    const out = (f.format as (v: string) => string)(exact);
    const digitsIn = (int + frac).replace(/^0+/, "");
    const digitsOut = out.replace(/\D/g, "").replace(/^0+/, "");
    if (digitsOut.startsWith(digitsIn.slice(0, 15)) && digitsOut.length >= digitsIn.length) return out;
  }
  return `${sign === "-" ? "-" : ""}${groupDigits(int)}${frac ? "." + frac : ""} ${currency}`;
}

/** True when a signed decimal string is negative (a debit). */
export function isNegative(amount: string): boolean {
  return /^-\s*\d*[1-9]/.test(amount.trim()) || /^-\s*0*\.\d*[1-9]/.test(amount.trim());
}
