//! Statements over more entries than one page of the read, against the
//! real PostgreSQL: every entry once, in order, the running balance
//! continuous across pages and ending at the closing balance.

use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};
use rust_decimal::Decimal;
use testkit::TestDb;
use uuid::Uuid;

const ENTRIES: i64 = 2_345;

#[tokio::test]
async fn a_long_statement_is_complete_ordered_and_adds_up() {
    let db = TestDb::new().await;
    let owner = Uuid::new_v4();
    let account = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO users (id, username, password_hash, role) VALUES ($1, 'st', 'x', 'customer')",
    )
    .bind(owner)
    .execute(&db.pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO accounts (id, owner_id, currency) VALUES ($1, $2, 'EUR')")
        .bind(account)
        .bind(owner)
        .execute(&db.pool)
        .await
        .unwrap();
    // One entry a minute; pairs of entries share a moment (ties go by id).
    let start: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
    sqlx::query(
        "INSERT INTO entries (transfer_id, account_id, amount, balance_after, created_at)
         SELECT gen_random_uuid(), $1, CASE WHEN i % 3 = 0 THEN -2.5 ELSE 1.75 END, 0,
                $2 + (i / 2) * interval '1 minute'
           FROM generate_series(1, $3) i",
    )
    .bind(account)
    .bind(start)
    .bind(ENTRIES)
    .execute(&db.pool)
    .await
    .unwrap();

    let total = ledger::statements::balance_as_of(&db.pool, account, start + TimeDelta::days(30))
        .await
        .unwrap();
    // From the second hour on: the first 119 entries make the opening.
    let from = start + TimeDelta::hours(1);
    let to = start + TimeDelta::days(30);
    let opening =
        ledger::statements::balance_as_of(&db.pool, account, from - TimeDelta::microseconds(1))
            .await
            .unwrap();
    let mut statement = ledger::statements::open(&db.pool, account, from, to)
        .await
        .unwrap();
    let s = statement.summary;
    assert_eq!(s.opening, opening);
    assert_eq!(s.closing(), total);
    let mut running = s.opening;
    let mut last: Option<(DateTime<Utc>, i64)> = None;
    let mut n = 0;
    let (mut debits, mut credits) = (Decimal::ZERO, Decimal::ZERO);
    while let Some(row) = statement.rows.recv().await {
        let row = row.unwrap();
        running += row.amount;
        assert_eq!(row.running_balance, running);
        assert!(row.created_at >= from && row.created_at <= to);
        assert!(last < Some((row.created_at, row.entry_id)), "ordered");
        last = Some((row.created_at, row.entry_id));
        match row.amount < Decimal::ZERO {
            true => debits -= row.amount,
            false => credits += row.amount,
        }
        n += 1;
    }
    assert_eq!(n, s.entry_count);
    assert!(n > 2 * 1000, "crosses pages: {n}");
    assert_eq!(running, s.closing());
    assert_eq!((debits, credits), (s.debits, s.credits));
    assert_eq!(
        ledger::statements::balance_as_of(&db.pool, account, start - TimeDelta::seconds(1))
            .await
            .unwrap(),
        Decimal::from_str("0").unwrap()
    );
}
