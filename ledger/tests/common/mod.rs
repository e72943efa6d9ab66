//! Helpers shared by the ledger's integration tests (each test file
//! compiles this module on its own, so not every file uses every helper).
#![allow(dead_code)]

use std::str::FromStr;

use chrono::Utc;
use ledger::apply::TransferRequest;
use ledger::{admin, invariants};
use rust_decimal::Decimal;
use shared::money::Currency;
use shared::transfer::IdempotencyKey;
use testkit::TestDb;
use uuid::Uuid;

pub fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// A EUR account of `user`, funded with `funds` when that is above zero.
pub async fn account(db: &TestDb, user: Uuid, funds: &str) -> Uuid {
    let eur = Currency::parse("EUR").unwrap();
    let id = Uuid::new_v4();
    admin::create_account(&db.pool, id, user, eur, Decimal::ZERO)
        .await
        .unwrap();
    if dec(funds) > Decimal::ZERO {
        let key = IdempotencyKey::parse(&format!("seed-{id}")).unwrap();
        admin::fund(&db.pool, id, eur, dec(funds), &key)
            .await
            .unwrap();
    }
    id
}

/// A plain EUR transfer with a fresh id and key.
pub fn transfer(owner: Uuid, from: Uuid, to: Uuid, amount: &str) -> TransferRequest {
    TransferRequest::transfer(
        Uuid::new_v4(),
        owner,
        Uuid::new_v4().to_string(),
        from,
        to,
        dec(amount),
        "EUR".into(),
        None,
        Utc::now(),
    )
}

pub async fn balance(db: &TestDb, id: Uuid) -> Decimal {
    ledger::accounts::get(&db.pool, id)
        .await
        .unwrap()
        .unwrap()
        .balance
}

/// Checks every ledger invariant and fails the test on any violation.
pub async fn assert_invariants(db: &TestDb) -> invariants::Report {
    let report = invariants::check(&db.pool).await.unwrap();
    assert!(
        report.holds(),
        "invariants violated: {:?}",
        report.violations()
    );
    report
}
