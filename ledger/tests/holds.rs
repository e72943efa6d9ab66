//! Holds and reversals in the batched apply against a real PostgreSQL: a
//! batch mixing every kind of command keeps one transaction, decides in
//! order, and applied again changes nothing.

mod common;

use chrono::{TimeDelta, Utc};
use common::{account, assert_invariants, dec, transfer};
use ledger::apply::{Mode, Outcome, TransferRequest, apply};
use rust_decimal::Decimal;
use shared::hold::Op;
use shared::transfer::RejectReason;
use testkit::TestDb;
use uuid::Uuid;

fn request(op: Op, owner: Uuid, from: Uuid, to: Uuid, amount: &str) -> TransferRequest {
    let mut r = transfer(owner, from, to, amount);
    r.op = op;
    if op == Op::HoldCreate {
        r.expires_at = Some(Utc::now() + TimeDelta::hours(1));
    }
    r
}

async fn user(db: &TestDb, name: &str, role: &str) -> Uuid {
    ledger::users::ensure(&db.pool, name, "!", role)
        .await
        .unwrap()
}

async fn row(db: &TestDb, id: Uuid) -> ledger::accounts::AccountRow {
    ledger::accounts::get(&db.pool, id).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_mixed_batch_is_one_transaction_decided_in_order() {
    let db = TestDb::new().await;
    let alice = user(&db, "alice", "customer").await;
    let bob = user(&db, "bob", "customer").await;
    let rita = user(&db, "rita", "reverser").await;
    let a = account(&db, alice, "100").await;
    let b = account(&db, bob, "0").await;

    let pay = request(Op::Transfer, alice, a, b, "10");
    let hold = request(Op::HoldCreate, alice, a, b, "50");
    let mut capture = request(Op::HoldCapture, alice, a, b, "20");
    capture.hold_id = Some(hold.id);
    // 40 available after the hold, 70 after the capture released it: 71 is too much.
    let too_big = request(Op::HoldCreate, alice, a, b, "71");
    let first = vec![pay.clone(), hold.clone(), capture.clone(), too_big];
    let applied = apply(&db.pool, &first, &[], Mode::Independent)
        .await
        .unwrap();
    assert_eq!(
        applied.outcomes,
        vec![
            Outcome::Committed,
            Outcome::Committed,
            Outcome::Committed,
            Outcome::Rejected(RejectReason::InsufficientFunds),
        ]
    );
    let (ra, rb) = (row(&db, a).await, row(&db, b).await);
    assert_eq!(
        (ra.balance, ra.held, rb.balance),
        (dec("70"), dec("0"), dec("30"))
    );
    let h = ledger::holds::get(&db.pool, hold.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (h.status.as_str(), h.captured_amount),
        ("captured", Some(dec("20")))
    );

    // Applied again (a redelivery): nothing moves.
    let again = apply(&db.pool, &first, &[], Mode::Independent)
        .await
        .unwrap();
    assert!(
        again.outcomes.iter().all(|o| *o == Outcome::Duplicate),
        "{:?}",
        again.outcomes
    );
    assert_eq!(row(&db, a).await.balance, dec("70"));

    // A reversal, a void of the captured hold, an expiry of nothing pending.
    let mut reversal = request(Op::Reversal, rita, Uuid::nil(), Uuid::nil(), "4");
    reversal.reverses = Some(pay.id);
    reversal.reversal_reason = Some("refund".into());
    let mut void = request(Op::HoldVoid, alice, a, b, "0");
    void.hold_id = Some(hold.id);
    let mut expire = request(Op::HoldExpire, Uuid::nil(), Uuid::nil(), Uuid::nil(), "0");
    expire.hold_id = Some(hold.id);
    let applied = apply(
        &db.pool,
        &[reversal.clone(), void, expire],
        &[],
        Mode::Independent,
    )
    .await
    .unwrap();
    assert_eq!(
        applied.outcomes,
        vec![
            Outcome::Committed,
            Outcome::Rejected(RejectReason::HoldNotPending),
            Outcome::Duplicate,
        ]
    );
    let t = &applied.transfers[0];
    assert_eq!((t.transfer.from_account, t.transfer.to_account), (b, a));
    assert_eq!((t.payer_owner, t.payee_owner), (Some(bob), Some(alice)));
    assert_eq!(row(&db, a).await.balance, dec("74"));
    assert_eq!(row(&db, b).await.balance, dec("26"));

    // A reversal of "the rest" (no amount) is stored under the fingerprint
    // of the request as sent, not of the amount that moved: the same
    // request again, a client's retry or a redelivery, is a duplicate.
    let mut rest = request(Op::Reversal, rita, Uuid::nil(), Uuid::nil(), "0");
    rest.reverses = Some(pay.id);
    rest.reversal_reason = Some("the rest".into());
    let first = apply(&db.pool, &[rest.clone()], &[], Mode::Independent)
        .await
        .unwrap();
    assert_eq!(first.outcomes, vec![Outcome::Committed]);
    assert!(first.transfers[0].transfer.amount > Decimal::ZERO);
    assert_eq!(
        first.transfers[0].transfer.fingerprint,
        shared::hold::reversal_fingerprint(pay.id, None, "the rest").to_vec(),
        "what the gateway compares a retry with"
    );
    let again = apply(&db.pool, &[rest], &[], Mode::Independent)
        .await
        .unwrap();
    assert_eq!(again.outcomes, vec![Outcome::Duplicate]);

    assert_invariants(&db).await;
}

#[tokio::test]
async fn hold_commands_given_up_on_end_rejected_and_move_nothing() {
    let db = TestDb::new().await;
    let alice = user(&db, "alice", "customer").await;
    let a = account(&db, alice, "100").await;
    let b = account(&db, alice, "0").await;
    let held = request(Op::HoldCreate, alice, a, b, "30");
    apply(
        &db.pool,
        std::slice::from_ref(&held),
        &[],
        Mode::Independent,
    )
    .await
    .unwrap();

    // A new hold, a capture of the pending one, an expiry, and the stored
    // hold again: only the first two are recorded.
    let lost = request(Op::HoldCreate, alice, a, b, "10");
    let mut capture = request(Op::HoldCapture, alice, a, b, "5");
    capture.hold_id = Some(held.id);
    let mut expire = request(Op::HoldExpire, Uuid::nil(), Uuid::nil(), Uuid::nil(), "0");
    expire.hold_id = Some(held.id);
    let given = [lost.clone(), capture.clone(), expire, held.clone()];
    let out = ledger::apply::record_hold_failures(&db.pool, &given)
        .await
        .unwrap();
    let shown: Vec<(usize, &str, Option<&str>)> = out
        .iter()
        .map(|h| (h.request, h.hold.status.as_str(), h.hold.reason.as_deref()))
        .collect();
    assert_eq!(
        shown,
        vec![
            (0, "rejected", Some("processing_failed")),
            (1, "pending", None),
            (3, "pending", None),
        ]
    );
    let action = out[1].action.as_ref().expect("the capture asked for");
    assert_eq!(
        (action.status.as_str(), action.reason.as_deref()),
        ("rejected", Some("processing_failed"))
    );
    // Recorded again (the dead letter retried): nothing changes.
    let again = ledger::apply::record_hold_failures(&db.pool, &given)
        .await
        .unwrap();
    assert_eq!(again.len(), 3);
    // The pending hold still holds its 30, nothing moved; it can still be
    // captured by a new request.
    let ra = row(&db, a).await;
    assert_eq!((ra.balance, ra.held), (dec("100"), dec("30")));
    let mut later = request(Op::HoldCapture, alice, a, b, "30");
    later.hold_id = Some(held.id);
    let applied = apply(&db.pool, &[later], &[], Mode::Independent)
        .await
        .unwrap();
    assert_eq!(applied.outcomes, vec![Outcome::Committed]);
    assert_invariants(&db).await;
}
