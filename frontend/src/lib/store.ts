import type { Account, Transfer } from "./types";

/** Applies an account snapshot only if it is newer than what we have. */
export function applyAccount(list: readonly Account[], incoming: Account): Account[] {
  const i = list.findIndex((a) => a.id === incoming.id);
  if (i < 0) return [...list, incoming];
  if (!(Number(incoming.version) > Number(list[i].version))) return list as Account[];
  const next = list.slice();
  next[i] = { ...list[i], ...incoming };
  return next;
}

/** Replaces accounts with a fresh list, never going back to an older version. */
export function mergeAccounts(current: readonly Account[], fresh: readonly Account[]): Account[] {
  return fresh.map((f) => {
    const c = current.find((a) => a.id === f.id);
    return c && Number(c.version) > Number(f.version) ? c : f;
  });
}

const RANK: Record<string, number> = { pending: 0, committed: 1, rejected: 1 };
const rank = (s: string) => RANK[s] ?? 0;

function newestFirst(a: Transfer, b: Transfer): number {
  if (a.created_at === b.created_at) return a.id < b.id ? 1 : -1;
  return a.created_at < b.created_at ? 1 : -1;
}

/** Inserts or updates a transfer; a final status is never replaced by pending. */
export function upsertTransfer(list: readonly Transfer[], t: Transfer): Transfer[] {
  const i = list.findIndex((x) => x.id === t.id);
  if (i >= 0) {
    if (rank(t.status) < rank(list[i].status)) return list as Transfer[];
    const next = list.slice();
    next[i] = { ...list[i], ...t };
    return next;
  }
  return [...list, t].sort(newestFirst);
}

/** Merges a page (first page after a refetch, or the next page) into the list. */
export function mergeTransfers(list: readonly Transfer[], page: readonly Transfer[]): Transfer[] {
  let out = list.slice();
  for (const t of page) out = upsertTransfer(out, t);
  return out;
}

export type Direction = "sent" | "received" | "internal" | "other";

export function direction(t: Transfer, own: ReadonlySet<string>): Direction {
  const from = own.has(t.from_account);
  const to = own.has(t.to_account);
  if (from && to) return "internal";
  if (from) return "sent";
  if (to) return "received";
  return "other";
}
