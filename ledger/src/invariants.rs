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
    let below_overdraft =
        sqlx::query_scalar("SELECT id FROM accounts WHERE balance < -overdraft_limit")
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
        transfers,
        committed,
        entries,
    })
}
