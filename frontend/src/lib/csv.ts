import { normalizeAmount } from "./money";
import type { TransferBody } from "./types";
import { validateTransfer, type FieldErrors, type TransferDraft } from "./validation";

/** Parses RFC 4180 CSV: quoted fields, "" escapes, CRLF or LF line ends. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  let i = 0;
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
      } else field += c;
      i += 1;
      continue;
    }
    if (c === '"' && field === "") quoted = true;
    else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
      if (c === "\r" && src[i + 1] === "\n") i += 1;
    } else field += c;
    i += 1;
  }
  if (field !== "" || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

export const BATCH_COLUMNS = ["from_account", "to_account", "amount", "currency", "reference"] as const;
export const BATCH_MAX_LINES = 10_000;

export interface BatchLine {
  line: number; // 1-based line in the file (the header is line 1)
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
  const rows = parseCsv(text).filter((r) => r.some((f) => f.trim() !== ""));
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
    return { line: n + 2, body, errors };
  });
  return { error: null, lines };
}
