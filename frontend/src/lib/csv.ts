import { normalizeAmount } from "./money";
import type { TransferBody } from "./types";
import { validateTransfer, type FieldErrors, type TransferDraft } from "./validation";

export interface CsvRow {
  /** 1-based physical line where the row starts (what the server reports). */
  line: number;
  fields: string[];
}

/** Parses RFC 4180 CSV: quoted fields, "" escapes, CRLF or LF line ends. */
export function parseCsvRows(text: string): CsvRow[] {
  const rows: CsvRow[] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  let i = 0;
  let line = 1; // physical line of the current character
  let rowStart = 1;
  const src = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text; // BOM
  while (i < src.length) {
    const c = src[i];
    if (quoted) {
      if (c === '"') {
        if (src[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else {
        field += c;
        if (c === "\n" || (c === "\r" && src[i + 1] !== "\n")) line += 1;
      }
      i += 1;
      continue;
    }
    if (c === '"' && field === "") quoted = true;
    else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      row.push(field);
      rows.push({ line: rowStart, fields: row });
      row = [];
      field = "";
      if (c === "\r" && src[i + 1] === "\n") i += 1;
      line += 1;
      rowStart = line;
    } else field += c;
    i += 1;
  }
  if (field !== "" || row.length > 0) {
    row.push(field);
    rows.push({ line: rowStart, fields: row });
  }
  return rows;
}

export function parseCsv(text: string): string[][] {
  return parseCsvRows(text).map((r) => r.fields);
}

export const BATCH_COLUMNS = ["from_account", "to_account", "amount", "currency", "reference"] as const;
export const BATCH_MAX_LINES = 10_000;

export interface BatchLine {
  line: number; // 1-based physical line in the file (the header is usually line 1)
  body: TransferBody | null;
  errors: FieldErrors;
}

export interface BatchParse {
  error: string | null;
  lines: BatchLine[];
}

/**
 * Reads a payments CSV with the header `from_account,to_account,amount,currency[,reference]`
 * (any column order) and checks each line like the transfer form does.
 */
export function parseBatch(text: string, ownAccounts?: readonly string[]): BatchParse {
  const all = parseCsvRows(text).filter((r) => r.fields.some((f) => f.trim() !== ""));
  const rows = all.map((r) => r.fields);
  if (rows.length === 0) return { error: "The file is empty.", lines: [] };
  const header = rows[0].map((h) => h.trim().toLowerCase());
  const index: Partial<Record<(typeof BATCH_COLUMNS)[number], number>> = {};
  for (const col of BATCH_COLUMNS) {
    const at = header.indexOf(col);
    if (at >= 0) index[col] = at;
  }
  const missing = BATCH_COLUMNS.filter((c) => c !== "reference" && index[c] === undefined);
  if (missing.length)
    return { error: `The first line must name the columns; missing: ${missing.join(", ")}.`, lines: [] };
  if (rows.length - 1 > BATCH_MAX_LINES)
    return { error: `At most ${BATCH_MAX_LINES} payments per file (this one has ${rows.length - 1}).`, lines: [] };
  if (rows.length === 1) return { error: "The file has a header but no payments.", lines: [] };
  const lines = rows.slice(1).map((r, n): BatchLine => {
    const line = all[n + 1].line;
    const get = (c: (typeof BATCH_COLUMNS)[number]) => (index[c] === undefined ? "" : (r[index[c]!] ?? "").trim());
    const draft: TransferDraft = {
      from_account: get("from_account"),
      to_account: get("to_account"),
      amount: get("amount"),
      currency: get("currency").toUpperCase(),
      reference: get("reference"),
    };
    const errors = validateTransfer(draft, ownAccounts);
    const ok = Object.keys(errors).length === 0;
    const body: TransferBody | null = ok
      ? {
          from_account: draft.from_account.toLowerCase(),
          to_account: draft.to_account.toLowerCase(),
          amount: normalizeAmount(draft.amount, draft.currency),
          currency: draft.currency,
          ...(draft.reference ? { reference: draft.reference } : {}),
        }
      : null;
    return { line, body, errors };
  });
  return { error: null, lines };
}

/**
 * The batch API reads the header literally: exactly these columns in this
 * order (reference may be left out). Returns a problem to show, or null.
 */
export function serverHeaderProblem(text: string): string | null {
  const first = parseCsvRows(text).find((r) => r.fields.some((f) => f.trim() !== ""));
  if (!first) return null;
  const got = first.fields.map((f) => f.trim());
  const want = [...BATCH_COLUMNS];
  const same = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
  if (same(got, want) || same(got, want.slice(0, 4))) return null;
  return `To send this file, its first line must be exactly "${want.join(",")}" (in this order, lower case).`;
}
