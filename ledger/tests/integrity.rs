//! What the schema itself refuses, whatever code writes to it: an entry
//! without its account, and an account going away under its entries.

use rust_decimal::Decimal;
use shared::money::Currency;
use testkit::TestDb;
use uuid::Uuid;

async fn account(db: &TestDb) -> Uuid {
    let user = ledger::users::ensure(&db.pool, "alice", "!", "customer")
        .await
        .unwrap();
    let id = Uuid::new_v4();
    ledger::admin::create_account(
        &db.pool,
        id,
        user,
        Currency::parse("EUR").unwrap(),
        Decimal::ZERO,
    )
    .await
    .unwrap();
    id
}

const INSERT_ENTRIES: &str = "INSERT INTO entries (transfer_id, account_id, amount, balance_after)
     SELECT gen_random_uuid(), a, 1, 1 FROM unnest($1::uuid[]) AS a";

/// One orphan among many rows fails the whole statement with the foreign
/// key's SQLSTATE (the check runs once per statement, not per row), and
/// nothing of it is written.
#[tokio::test]
async fn an_entry_naming_no_account_fails_its_whole_statement() {
    let db = TestDb::new().await;
    let known = account(&db).await;
    let err = sqlx::query(INSERT_ENTRIES)
        .bind(vec![known, known, Uuid::new_v4(), known])
        .execute(&db.pool)
        .await
        .unwrap_err();
    let code = err
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned());
    assert_eq!(code.as_deref(), Some("23503"), "{err}");
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM entries")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(n, 0, "the failed statement wrote nothing");

    // Rows that all name an account go in (as the apply's do).
    let done = sqlx::query(INSERT_ENTRIES)
        .bind(vec![known, known])
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 2);
}

#[tokio::test]
async fn accounts_are_never_deleted() {
    let db = TestDb::new().await;
    account(&db).await;
    for sql in ["DELETE FROM accounts", "TRUNCATE accounts CASCADE"] {
        let err = sqlx::query(sql).execute(&db.pool).await.unwrap_err();
        assert!(err.to_string().contains("refused"), "{sql}: {err}");
    }
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM accounts")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
}
