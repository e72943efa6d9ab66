//! The ledger's own invariants (double entry, balances, overdraft limits)
//! and conservation against what the checker itself funded.

use rust_decimal::Decimal;

use super::{Row, row};
use crate::bank::Bank;
use crate::workload::{CURRENCIES, FUNDS_CENTS, Load};

/// Appends the ledger's rows: overdraft limits, double entry, and one
/// conservation row per currency.
pub async fn check(bank: &Bank, load: &Load, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    // The ledger's own invariants (double entry, balances, overdraft limits).
    let report = ledger::invariants::check(&bank.pool).await?;
    let v = report.violations();
    let below: Vec<String> = v
        .iter()
        .filter(|s| s.starts_with("below"))
        .cloned()
        .collect();
    let sums: Vec<String> = v
        .iter()
        .filter(|s| !s.starts_with("below"))
        .cloned()
        .collect();
    row(
        rows,
        "no balance below -overdraft_limit",
        &below,
        "all accounts within their limit".into(),
    );
    row(
        rows,
        "double entry: balances = sum of entries, 2 entries per commit summing to 0",
        &sums,
        format!("{} transfers, {} entries", report.transfers, report.entries),
    );

    // Conservation against what the checker itself funded.
    let totals: Vec<(String, Decimal)> = sqlx::query_as(
        "SELECT currency::text, sum(balance) FROM accounts WHERE kind = 'customer' GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&bank.pool)
    .await?;
    let funded = Decimal::new(FUNDS_CENTS * load.users.len() as i64, 2);
    for c in CURRENCIES {
        let total = totals
            .iter()
            .find(|(cur, _)| cur == c)
            .map(|(_, t)| *t)
            .unwrap_or_default();
        let bad = if total == funded {
            vec![]
        } else {
            vec![format!("sum {total} != funded {funded}")]
        };
        row(
            rows,
            &format!("conservation {c}"),
            &bad,
            format!("customer balances sum to {} = funded", total.normalize()),
        );
    }
    Ok(())
}
