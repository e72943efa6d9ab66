//! A batch of independent transfers goes around accounts another
//! transaction holds: what it can apply commits without waiting, the rest
//! waits, and every account still sees its transfers in batch order.

mod common;

use std::time::Duration;

use common::{account, assert_invariants, balance, dec, transfer};
use ledger::apply::{Mode, Outcome, apply};
use shared::transfer::RejectReason;
use testkit::TestDb;
use uuid::Uuid;

async fn stored(db: &TestDb, id: Uuid) -> bool {
    ledger::transfers::get(&db.pool, id)
        .await
        .unwrap()
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_applies_around_a_held_account_and_keeps_each_accounts_order() {
    let db = TestDb::new().await;
    let user = ledger::users::ensure(&db.pool, "alice", "!", "customer")
        .await
        .unwrap();
    // a: held by another transaction; b: empty, so the b -> e transfer
    // below can only commit after a -> b has credited it.
    let a = account(&db, user, "100").await;
    let b = account(&db, user, "0").await;
    let (c, d, e) = (
        account(&db, user, "100").await,
        account(&db, user, "100").await,
        account(&db, user, "100").await,
    );
    let batch = vec![
        transfer(user, a, b, "10"), // waits: a is held
        transfer(user, c, d, "1"),  // goes at once
        transfer(user, b, e, "10"), // waits: b follows a -> b in batch order
        transfer(user, d, c, "2"),  // goes at once
    ];

    let mut holder = db.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE")
        .bind(a)
        .execute(&mut *holder)
        .await
        .unwrap();
    let pool = db.pool.clone();
    let sent = batch.clone();
    let applying =
        tokio::spawn(async move { apply(&pool, &sent, &[], Mode::Independent).await.unwrap() });

    // The free part commits while `a` is still held; the rest waits.
    let mut waited = Duration::ZERO;
    while !stored(&db, batch[1].id).await {
        assert!(waited < Duration::from_secs(10), "c -> d never committed");
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    assert!(stored(&db, batch[3].id).await);
    assert!(!stored(&db, batch[0].id).await, "a -> b went past the lock");
    assert!(!stored(&db, batch[2].id).await, "b -> e went before a -> b");
    assert!(!applying.is_finished());

    holder.commit().await.unwrap();
    let applied = applying.await.unwrap();
    assert_eq!(applied.outcomes, vec![Outcome::Committed; 4]);
    for (i, t) in applied.transfers.iter().enumerate() {
        assert_eq!(t.request, i);
        assert_eq!(t.transfer.id, batch[i].id);
    }
    assert_eq!(balance(&db, a).await, dec("90"));
    assert_eq!(balance(&db, b).await, dec("0"));
    assert_eq!(balance(&db, e).await, dec("110"));
    assert_eq!(balance(&db, c).await, dec("101"));
    assert_eq!(balance(&db, d).await, dec("99"));
    // The answer's balances are the final ones.
    let b_now = applied.accounts.iter().find(|x| x.id == b).unwrap();
    assert_eq!(b_now.balance, dec("0"));
    assert_invariants(&db).await;
}

/// An unknown account is not "held": the waiting round finds it missing
/// and rejects the transfer; a duplicate inside the batch stays one.
#[tokio::test]
async fn an_unknown_account_and_a_repeated_id_are_answered_in_the_waiting_round() {
    let db = TestDb::new().await;
    let user = ledger::users::ensure(&db.pool, "bob", "!", "customer")
        .await
        .unwrap();
    let acc = [
        account(&db, user, "50").await,
        account(&db, user, "50").await,
    ];
    let ok = transfer(user, acc[0], acc[1], "5");
    let unknown = transfer(user, acc[0], Uuid::new_v4(), "5");
    let batch = vec![ok.clone(), unknown, ok];
    let applied = apply(&db.pool, &batch, &[], Mode::Independent)
        .await
        .unwrap();
    assert_eq!(applied.outcomes[0], Outcome::Committed);
    assert!(
        matches!(applied.outcomes[1], Outcome::Rejected(r) if r != RejectReason::BatchAborted),
        "{:?}",
        applied.outcomes[1]
    );
    assert_eq!(applied.outcomes[2], Outcome::Duplicate);
    assert_eq!(balance(&db, acc[0]).await, dec("45"));
    assert_invariants(&db).await;
}
