//! The ledger against a real PostgreSQL: batches, duplicates, overdrafts and
//! concurrency, with the invariants checked after each scenario.

mod common;

use common::{assert_invariants, balance, dec, transfer};
use ledger::apply::{Mode, Outcome, TransferRequest, apply, record_failures};
use ledger::{LedgerError, admin};
use rand::RngExt;
use rust_decimal::Decimal;
use shared::money::Currency;
use shared::transfer::{IdempotencyKey, RejectReason};
use testkit::TestDb;
use uuid::Uuid;

fn eur() -> Currency {
    Currency::parse("EUR").unwrap()
}

/// A user with `n` funded EUR accounts.
async fn customer(db: &TestDb, name: &str, n: usize, funds: &str) -> (Uuid, Vec<Uuid>) {
    let user = ledger::users::ensure(&db.pool, name, "!", "customer")
        .await
        .unwrap();
    let mut accounts = Vec::new();
    for i in 0..n {
        let id = Uuid::new_v4();
        admin::create_account(&db.pool, id, user, eur(), Decimal::ZERO)
            .await
            .unwrap();
        if dec(funds) > Decimal::ZERO {
            let key = IdempotencyKey::parse(&format!("seed-{name}-{i}")).unwrap();
            let outcome = admin::fund(&db.pool, id, eur(), dec(funds), &key)
                .await
                .unwrap();
            assert_eq!(outcome, Outcome::Committed);
        }
        accounts.push(id);
    }
    (user, accounts)
}

fn request(owner: Uuid, from: Uuid, to: Uuid, amount: &str) -> TransferRequest {
    let mut r = transfer(owner, from, to, amount);
    r.reference = Some("test".into());
    r
}

#[tokio::test]
async fn a_batch_commits_and_rejects_each_transfer_on_its_own() {
    let db = TestDb::new().await;
    let (alice, a) = customer(&db, "alice", 1, "100").await;
    let (bob, b) = customer(&db, "bob", 1, "0").await;

    let batch = vec![
        request(alice, a[0], b[0], "60"),
        request(alice, a[0], b[0], "60"), // only 40 left: rejected alone
        request(alice, a[0], b[0], "40"),
        request(alice, a[0], a[0], "1"),
        request(alice, b[0], a[0], "1"), // bob's account
        request(alice, a[0], Uuid::new_v4(), "1"),
    ];
    let applied = apply(&db.pool, &batch, &[], Mode::Independent)
        .await
        .unwrap();
    assert_eq!(
        applied.outcomes,
        vec![
            Outcome::Committed,
            Outcome::Rejected(RejectReason::InsufficientFunds),
            Outcome::Committed,
            Outcome::Rejected(RejectReason::SameAccount),
            Outcome::Rejected(RejectReason::SourceAccountNotOwned),
            Outcome::Rejected(RejectReason::DestinationAccountNotFound),
        ]
    );
    assert_eq!(balance(&db, a[0]).await, Decimal::ZERO);
    assert_eq!(balance(&db, b[0]).await, dec("100"));
    // The ledger names the payee's owner (the processor decides who hears).
    assert_eq!(applied.transfers[0].payee_owner, Some(bob));
    assert_eq!(applied.transfers[0].transfer.owner_id, alice);
    assert_eq!(applied.transfers[5].payee_owner, None);
    assert_eq!(applied.accounts.len(), 2);

    // The whole batch again (a redelivery): nothing moves, results re-emitted.
    let again = apply(&db.pool, &batch, &[], Mode::Independent)
        .await
        .unwrap();
    assert!(again.outcomes.iter().all(|o| *o == Outcome::Duplicate));
    assert_eq!(again.transfers[0].transfer, applied.transfers[0].transfer);
    assert_eq!(balance(&db, b[0]).await, dec("100"));

    // Same id, different body: refused, nothing moves.
    let mut reused = batch[2].clone();
    reused.amount = dec("1");
    let r = apply(&db.pool, &[reused], &[], Mode::Independent)
        .await
        .unwrap();
    assert_eq!(r.outcomes, vec![Outcome::KeyReused]);
    assert_eq!(balance(&db, b[0]).await, dec("100"));

    let report = assert_invariants(&db).await;
    // 1 funding + 2 commits, 2 entries each.
    assert_eq!(report.committed, 3);
    assert_eq!(report.entries, 6);
}

#[tokio::test]
async fn duplicates_inside_one_batch_apply_once() {
    let db = TestDb::new().await;
    let (alice, a) = customer(&db, "alice", 2, "10").await;
    let t = request(alice, a[0], a[1], "3");
    let applied = apply(&db.pool, &[t.clone(), t.clone(), t], &[], Mode::Independent)
        .await
        .unwrap();
    assert_eq!(
        applied.outcomes,
        vec![Outcome::Committed, Outcome::Duplicate, Outcome::Duplicate]
    );
    assert_eq!(balance(&db, a[1]).await, dec("13"));
    assert_invariants(&db).await;
}

#[tokio::test]
async fn an_atomic_batch_commits_all_or_stores_all_rejected() {
    let db = TestDb::new().await;
    let (alice, a) = customer(&db, "alice", 2, "10").await;
    let ok = vec![
        request(alice, a[0], a[1], "3"),
        request(alice, a[1], a[0], "1"),
    ];
    let applied = apply(&db.pool, &ok, &[], Mode::Atomic).await.unwrap();
    assert_eq!(applied.outcomes, vec![Outcome::Committed; 2]);
    assert_eq!(balance(&db, a[1]).await, dec("12"));

    let refused = vec![
        request(alice, a[0], a[1], "1"),
        request(alice, a[0], a[1], "100"), // overdraws: the batch aborts
        request(alice, a[1], a[0], "1"),
    ];
    let applied = apply(&db.pool, &refused, &[], Mode::Atomic).await.unwrap();
    assert_eq!(
        applied.outcomes,
        vec![
            Outcome::Rejected(RejectReason::BatchAborted),
            Outcome::Rejected(RejectReason::InsufficientFunds),
            Outcome::Rejected(RejectReason::BatchAborted),
        ]
    );
    assert!(applied.accounts.is_empty());
    for (t, r) in applied.transfers.iter().zip(&refused) {
        assert_eq!(t.transfer.id, r.id);
        assert_eq!(t.transfer.status, "rejected");
    }
    assert_eq!(balance(&db, a[1]).await, dec("12"));
    // Redelivered: the stored answers stand.
    let again = apply(&db.pool, &refused, &[], Mode::Atomic).await.unwrap();
    assert!(again.outcomes.iter().all(|o| *o == Outcome::Duplicate));
    assert_invariants(&db).await;
}

#[tokio::test]
async fn given_up_transfers_are_stored_rejected_once() {
    let db = TestDb::new().await;
    let (alice, a) = customer(&db, "alice", 2, "10").await;
    let done = request(alice, a[0], a[1], "3");
    apply(
        &db.pool,
        std::slice::from_ref(&done),
        &[],
        Mode::Independent,
    )
    .await
    .unwrap();
    let mut odd = request(alice, a[0], a[1], "1");
    odd.currency = "EURO".into();
    let rows = record_failures(&db.pool, &[done.clone(), odd.clone()])
        .await
        .unwrap();
    // An existing transfer keeps its row; a new one is stored rejected.
    assert_eq!(rows[0].status, "committed");
    assert_eq!(rows[1].id, odd.id);
    assert_eq!(rows[1].reason.as_deref(), Some("processing_failed"));
    assert_eq!(rows[1].currency, "EUR");
    assert_eq!(balance(&db, a[1]).await, dec("13"));
    assert_invariants(&db).await;
}

#[tokio::test]
async fn ledger_history_is_append_only() {
    let db = TestDb::new().await;
    customer(&db, "alice", 1, "10").await;
    for sql in [
        "UPDATE entries SET amount = 1",
        "DELETE FROM entries",
        "TRUNCATE entries",
        "UPDATE transfers SET amount = 1",
        "DELETE FROM transfers",
    ] {
        let err = sqlx::query(sql).execute(&db.pool).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    // The overdraft CHECK holds even against a direct write.
    let err = sqlx::query("UPDATE accounts SET balance = -1 WHERE kind = 'customer'")
        .execute(&db.pool)
        .await
        .unwrap_err();
    // (Either CHECK may report it: available = balance - held >= -overdraft
    // implies the balance's own.)
    let text = err.to_string();
    assert!(
        text.contains("balance_within_overdraft") || text.contains("available_within_overdraft"),
        "{err}"
    );
    // Holds: no more held than the balance allows, and no rewriting history.
    let err = sqlx::query("UPDATE accounts SET held = balance + 1 WHERE kind = 'customer'")
        .execute(&db.pool)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("available_within_overdraft"),
        "{err}"
    );
    for sql in [
        "DELETE FROM holds",
        "DELETE FROM hold_actions",
        "UPDATE hold_actions SET kind = 'void'",
    ] {
        let err = sqlx::query(sql).execute(&db.pool).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
}

/// Many concurrent batches over a small hot set of accounts, with the same
/// transfers submitted by several workers at once: no deadlock, no double
/// apply, no overdraft, money conserved.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_batches_on_hot_accounts_keep_every_invariant() {
    let db = TestDb::new().await;
    let mut owners = Vec::new();
    let mut accounts = Vec::new();
    for u in 0..5 {
        let (user, accs) = customer(&db, &format!("user{u}"), 2, "100").await;
        for a in accs {
            owners.push(user);
            accounts.push(a);
        }
    }
    // 40 shared batches of 50 transfers; every batch is applied by two workers.
    let mut rng = rand::rng();
    let batches: Vec<Vec<TransferRequest>> = (0..40)
        .map(|_| {
            (0..50)
                .map(|_| {
                    let i = rng.random_range(0..accounts.len());
                    let mut j = rng.random_range(0..accounts.len());
                    if j == i {
                        j = (j + 1) % accounts.len();
                    }
                    let cents = rng.random_range(1..5000);
                    request(
                        owners[i],
                        accounts[i],
                        accounts[j],
                        &format!("{}.{:02}", cents / 100, cents % 100),
                    )
                })
                .collect()
        })
        .collect();
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let pool = db.pool.clone();
        let mine: Vec<Vec<TransferRequest>> = batches
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 4 == worker % 4)
            .map(|(_, b)| b.clone())
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for b in mine {
                loop {
                    match apply(&pool, &b, &[], Mode::Independent).await {
                        Ok(a) => {
                            outcomes.extend(a.outcomes);
                            break;
                        }
                        Err(e) if e.is_transient() => continue,
                        Err(e) => panic!("{e:?}"),
                    }
                }
            }
            outcomes
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let applied_once = all
        .iter()
        .filter(|o| matches!(o, Outcome::Committed | Outcome::Rejected(_)))
        .count();
    let duplicates = all.iter().filter(|o| **o == Outcome::Duplicate).count();
    assert_eq!(applied_once, 2000, "each transfer decided exactly once");
    assert_eq!(duplicates, 2000, "each second copy seen as a duplicate");
    let report = assert_invariants(&db).await;
    assert_eq!(report.transfers, 2000 + 10);
}

/// The lock statement learns whether a batch's ids exist from a snapshot
/// taken before it waits for the locks. Two deliveries of one transfer
/// waiting on the same accounts: the first to get them commits it; the
/// second, whose snapshot predates that commit, must not apply it again
/// (its write comes up short, it reports a conflict) and on retry sees it
/// as a duplicate. Money moves once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redelivery_racing_its_first_delivery_applies_once() {
    let db = TestDb::new().await;
    let (user, accs) = customer(&db, "racer", 2, "100").await;
    let t = request(user, accs[0], accs[1], "30");

    // A third transaction holds both accounts until both deliveries wait.
    let mut blocker = db.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM accounts WHERE id = ANY($1) FOR UPDATE")
        .bind(&accs)
        .execute(&mut *blocker)
        .await
        .unwrap();
    let deliveries: Vec<_> = (0..2)
        .map(|_| {
            let (pool, batch) = (db.pool.clone(), vec![t.clone()]);
            tokio::spawn(async move { apply(&pool, &batch, &[], Mode::Independent).await })
        })
        .collect();
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        if waiting == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    blocker.commit().await.unwrap();

    let (mut committed, mut conflicts) = (0, 0);
    for d in deliveries {
        match d.await.unwrap() {
            Ok(a) => {
                assert_eq!(a.outcomes, vec![Outcome::Committed]);
                committed += 1;
            }
            Err(e) => {
                assert!(matches!(e, LedgerError::Conflict(_)), "{e:?}");
                assert!(e.is_transient(), "the caller retries a conflict");
                conflicts += 1;
                let again = apply(&db.pool, std::slice::from_ref(&t), &[], Mode::Independent)
                    .await
                    .unwrap();
                assert_eq!(again.outcomes, vec![Outcome::Duplicate]);
            }
        }
    }
    assert_eq!((committed, conflicts), (1, 1));
    assert_eq!(balance(&db, accs[0]).await, dec("70"));
    assert_eq!(balance(&db, accs[1]).await, dec("130"));
    assert_invariants(&db).await;
}
