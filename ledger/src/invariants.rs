//! The ledger's invariants, checked with SQL over the whole database.
//! Used by tests, the bank checker and the benchmark after every run.

use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

use crate::LedgerError;

/// Every figure is a count of violations except `totals`.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Sum of all balances per currency: zero when money is conserved (the
    /// funding account holds minus everything issued).
    pub totals: Vec<(String, Decimal)>,
    pub below_overdraft: Vec<Uuid>,
    pub balance_not_sum_of_entries: Vec<Uuid>,
    /// Committed transfers without exactly a matching debit and credit, and
    /// rejected transfers with any entry.
    pub bad_transfer_entries: Vec<Uuid>,
    pub orphan_entries: i64,
    /// Entries whose running balance does not match `balance_after`.
    pub bad_running_balances: i64,
    /// Accounts whose `held` is not the sum of their pending holds.
    pub held_not_sum_of_pending: Vec<Uuid>,
    /// Captured holds whose capture is missing, more than held, not one
    /// committed transfer of the captured amount, or captured twice.
    pub bad_captures: Vec<Uuid>,
    /// Voided, expired or rejected holds that moved money.
    pub released_holds_with_money: Vec<Uuid>,
    /// Transfers whose committed reversals add up to more than they moved
    /// (or that reverse a reversal or an uncommitted transfer).
    pub over_reversed: Vec<Uuid>,
    pub transfers: i64,
    pub committed: i64,
    pub entries: i64,
}

impl Report {
    /// Human-readable violations; empty when every invariant holds.
    pub fn violations(&self) -> Vec<String> {
        let mut v = Vec::new();
        for (currency, total) in &self.totals {
            if !total.is_zero() {
                v.push(format!("{currency}: balances sum to {total}, expected 0"));
            }
        }
        let ids = |ids: &[Uuid]| {
            ids.iter()
                .take(10)
                .map(Uuid::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.below_overdraft.is_empty() {
            v.push(format!("below overdraft: {}", ids(&self.below_overdraft)));
        }
        if !self.balance_not_sum_of_entries.is_empty() {
            v.push(format!(
                "balance != sum of entries: {}",
                ids(&self.balance_not_sum_of_entries)
            ));
        }
        if !self.bad_transfer_entries.is_empty() {
            v.push(format!(
                "transfers with wrong entries: {}",
                ids(&self.bad_transfer_entries)
            ));
        }
        if self.orphan_entries > 0 {
            v.push(format!(
                "{} entries without a transfer",
                self.orphan_entries
            ));
        }
        for (what, list) in [
            (
                "held != sum of pending holds",
                &self.held_not_sum_of_pending,
            ),
            ("holds with a wrong capture", &self.bad_captures),
            (
                "released holds that moved money",
                &self.released_holds_with_money,
            ),
            ("reversed beyond the original", &self.over_reversed),
        ] {
            if !list.is_empty() {
                v.push(format!("{what}: {}", ids(list)));
            }
        }
        if self.bad_running_balances > 0 {
            v.push(format!(
                "{} entries with a wrong balance_after",
                self.bad_running_balances
            ));
        }
        v
    }

    pub fn holds(&self) -> bool {
        self.violations().is_empty()
    }
}

pub async fn check(pool: &PgPool) -> Result<Report, LedgerError> {
    let totals: Vec<(String, Decimal)> = sqlx::query_as(
        "SELECT currency::text, sum(balance) FROM accounts GROUP BY currency ORDER BY currency",
    )
    .fetch_all(pool)
    .await?;
    // Available (balance - held, held >= 0) never below the overdraft.
    let below_overdraft = sqlx::query_scalar(
        "SELECT id FROM accounts WHERE balance - held < -overdraft_limit OR held < 0",
    )
    .fetch_all(pool)
    .await?;
    let balance_not_sum_of_entries = sqlx::query_scalar(
        "SELECT a.id FROM accounts a
           LEFT JOIN (SELECT account_id, sum(amount) AS s FROM entries GROUP BY account_id) e
                  ON e.account_id = a.id
          WHERE a.balance <> coalesce(e.s, 0)",
    )
    .fetch_all(pool)
    .await?;
    let bad_transfer_entries = sqlx::query_scalar(
        "SELECT t.id FROM transfers t
           LEFT JOIN (SELECT transfer_id, count(*) AS n, sum(amount) AS s,
                             bool_or(amount < 0) AS has_debit, bool_or(amount > 0) AS has_credit,
                             min(amount) AS debit, max(amount) AS credit,
                             min(account_id::text) FILTER (WHERE amount < 0) AS debit_acc,
                             min(account_id::text) FILTER (WHERE amount > 0) AS credit_acc
                        FROM entries GROUP BY transfer_id) e ON e.transfer_id = t.id
          WHERE (t.status = 'committed' AND (e.n IS DISTINCT FROM 2 OR e.s <> 0
                   OR e.debit <> -t.amount OR e.credit <> t.amount
                   OR e.debit_acc <> t.from_account::text OR e.credit_acc <> t.to_account::text))
             OR (t.status = 'rejected' AND e.n IS NOT NULL)",
    )
    .fetch_all(pool)
    .await?;
    let orphan_entries = sqlx::query_scalar(
        "SELECT count(*) FROM entries e WHERE NOT EXISTS
           (SELECT 1 FROM transfers t WHERE t.id = e.transfer_id AND t.status = 'committed')",
    )
    .fetch_one(pool)
    .await?;
    let bad_running_balances = sqlx::query_scalar(
        "SELECT count(*) FROM (
           SELECT balance_after,
                  sum(amount) OVER (PARTITION BY account_id ORDER BY id) AS running
             FROM entries) x
          WHERE balance_after <> running",
    )
    .fetch_one(pool)
    .await?;
    let held_not_sum_of_pending = sqlx::query_scalar(
        "SELECT a.id FROM accounts a
           LEFT JOIN (SELECT from_account, sum(amount) AS s FROM holds
                       WHERE status = 'pending' GROUP BY from_account) h
                  ON h.from_account = a.id
          WHERE a.held <> coalesce(h.s, 0)",
    )
    .fetch_all(pool)
    .await?;
    let bad_captures = sqlx::query_scalar(
        "SELECT h.id FROM holds h
           LEFT JOIN (SELECT hold_id, count(*) AS n, min(amount) AS amount,
                             bool_and(status = 'committed') AS ok, min(id::text) AS id
                        FROM transfers WHERE hold_id IS NOT NULL GROUP BY hold_id) t
                  ON t.hold_id = h.id
          WHERE (h.status = 'captured' AND (t.n IS DISTINCT FROM 1 OR NOT t.ok
                   OR t.amount <> h.captured_amount OR h.captured_amount > h.amount
                   OR t.id <> h.capture_transfer_id::text))
             OR (h.status = 'pending' AND t.n IS NOT NULL)",
    )
    .fetch_all(pool)
    .await?;
    let released_holds_with_money = sqlx::query_scalar(
        "SELECT h.id FROM holds h
          WHERE h.status IN ('voided', 'expired', 'rejected')
            AND EXISTS (SELECT 1 FROM transfers t
                         WHERE t.hold_id = h.id AND t.status = 'committed')",
    )
    .fetch_all(pool)
    .await?;
    let over_reversed = sqlx::query_scalar(
        "SELECT o.id FROM transfers o
           JOIN (SELECT reverses, sum(amount) AS s FROM transfers
                  WHERE reverses IS NOT NULL AND status = 'committed' GROUP BY reverses) r
             ON r.reverses = o.id
          WHERE r.s > o.amount OR o.status <> 'committed' OR o.reverses IS NOT NULL",
    )
    .fetch_all(pool)
    .await?;
    let (transfers, committed): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE status = 'committed') FROM transfers",
    )
    .fetch_one(pool)
    .await?;
    let entries = sqlx::query_scalar("SELECT count(*) FROM entries")
        .fetch_one(pool)
        .await?;
    Ok(Report {
        totals,
        below_overdraft,
        balance_not_sum_of_entries,
        bad_transfer_entries,
        orphan_entries,
        bad_running_balances,
        held_not_sum_of_pending,
        bad_captures,
        released_holds_with_money,
        over_reversed,
        transfers,
        committed,
        entries,
    })
}
