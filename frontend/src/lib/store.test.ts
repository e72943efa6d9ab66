import { describe, expect, it } from "vitest";
import { applyAccount, direction, mergeAccounts, upsertTransfer } from "./store";
import type { Account, Transfer } from "./types";

const acc = (version: number, balance: string): Account => ({
  id: "a1", currency: "EUR", balance, overdraft_limit: "0.00", created_at: "2026-01-01T00:00:00Z", version,
});
const tr = (id: string, status: string, created_at: string, extra: Partial<Transfer> = {}): Transfer => ({
  id, status, from_account: "a1", to_account: "b1", amount: "1.00", currency: "EUR", created_at, ...extra,
});

describe("accounts", () => {
  it("applies account.updated only when the version is newer", () => {
    let list = [acc(3, "10.00")];
    list = applyAccount(list, acc(2, "99.00"));
    expect(list[0].balance).toBe("10.00");
    list = applyAccount(list, acc(3, "99.00"));
    expect(list[0].balance).toBe("10.00");
    list = applyAccount(list, acc(4, "9.00"));
    expect(list[0].balance).toBe("9.00");
  });

  it("a refetch never goes back to an older version", () => {
    expect(mergeAccounts([acc(5, "5.00")], [acc(4, "4.00")])[0].version).toBe(5);
    expect(mergeAccounts([acc(5, "5.00")], [acc(6, "6.00")])[0].balance).toBe("6.00");
  });
});

describe("transfers", () => {
  it("inserts newest first and updates in place", () => {
    let list: Transfer[] = [];
    list = upsertTransfer(list, tr("t1", "pending", "2026-11-28T10:00:00Z"));
    list = upsertTransfer(list, tr("t2", "pending", "2026-11-28T11:00:00Z"));
    expect(list.map((t) => t.id)).toEqual(["t2", "t1"]);
    list = upsertTransfer(list, tr("t1", "committed", "2026-11-28T10:00:00Z"));
    expect(list.find((t) => t.id === "t1")?.status).toBe("committed");
  });

  it("never turns a final status back into pending", () => {
    let list = [tr("t1", "rejected", "2026-11-28T10:00:00Z", { reason: "insufficient_funds" })];
    list = upsertTransfer(list, tr("t1", "pending", "2026-11-28T10:00:00Z"));
    expect(list[0].status).toBe("rejected");
    expect(list[0].reason).toBe("insufficient_funds");
  });

  it("tells sent from received", () => {
    expect(direction(tr("t", "pending", ""), new Set(["a1"]))).toBe("sent");
    expect(direction(tr("t", "pending", ""), new Set(["b1"]))).toBe("received");
    expect(direction(tr("t", "pending", ""), new Set(["a1", "b1"]))).toBe("internal");
  });
});
