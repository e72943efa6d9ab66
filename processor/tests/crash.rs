//! `kill -9` of the processor binary with 1,000 transfers in flight, then a
//! restart with two replicas: every transfer reaches a final state, none is
//! applied twice, and the ledger's invariants hold.

mod common;

use common::{count, spawn_processor};
use std::str::FromStr;
use std::time::Duration;

use chrono::Utc;
use rust_decimal::Decimal;
use shared::messages::{SCHEMA_VERSION, TransferCommand};
use shared::transfer::{IdempotencyKey, transfer_id};
use testkit::{TestDb, TestNats, TestRedis};
use uuid::Uuid;

const TRANSFERS: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_batch_loses_nothing_and_applies_nothing_twice() {
    let db = TestDb::new().await;
    admin::seed_demo(&db.pool).await.expect("seed");
    let nats = TestNats::new().await;
    let redis = TestRedis::new();
    let alice = ledger::users::id_by_name(&db.pool, "alice")
        .await
        .unwrap()
        .unwrap();
    let bob = ledger::users::id_by_name(&db.pool, "bob")
        .await
        .unwrap()
        .unwrap();
    let alice_eur = Uuid::from_str("a11ce000-0000-4000-8000-000000000001").unwrap();
    let bob_eur = Uuid::from_str("b0b00000-0000-4000-8000-000000000001").unwrap();

    let mut first = spawn_processor(&db, &nats, &redis, &[]);
    // Two hot accounts in both directions; some transfers overdraw.
    let mut acks = Vec::new();
    for i in 0..TRANSFERS {
        let (owner, from, to, amount) = if i % 2 == 0 {
            (alice, alice_eur, bob_eur, "7.00")
        } else {
            (
                bob,
                bob_eur,
                alice_eur,
                if i % 10 == 1 { "5000.00" } else { "3.00" },
            )
        };
        let key = IdempotencyKey::parse(&format!("crash-{i}")).unwrap();
        let cmd = TransferCommand {
            v: SCHEMA_VERSION,
            id: transfer_id(owner, &key),
            owner,
            idempotency_key: key.as_str().to_owned(),
            from_account: from,
            to_account: to,
            amount: Decimal::from_str(amount).unwrap(),
            currency: "EUR".into(),
            reference: None,
            accepted_at: Utc::now(),
            batch: None,
            op: Default::default(),
            hold_id: None,
            expires_at: None,
            reverses: None,
            reversal_reason: None,
        };
        let ack = nats
            .js
            .publish(
                nats.topology.command_subject(cmd.id),
                serde_json::to_vec(&cmd).unwrap().into(),
            )
            .await
            .expect("publish");
        acks.push(ack);
    }
    for ack in acks {
        ack.await.expect("JetStream ack");
    }

    // Kill it once it is part-way through.
    testkit::eventually(Duration::from_secs(60), "the processor to start applying", || async {
        (count(&db, "SELECT count(*) FROM transfers WHERE owner_id <> (SELECT id FROM users WHERE username = 'bank')").await >= 100).then_some(())
    })
    .await;
    first.kill().expect("kill -9");
    let _ = first.wait();
    let at_kill = count(&db, "SELECT count(*) FROM transfers").await;
    eprintln!("killed with {at_kill} transfer rows written");

    // Restart as two replicas sharing the durable consumer.
    let mut replicas = vec![
        spawn_processor(&db, &nats, &redis, &[]),
        spawn_processor(&db, &nats, &redis, &[]),
    ];
    let user_rows = "SELECT count(*) FROM transfers WHERE owner_id IN (SELECT id FROM users WHERE username IN ('alice', 'bob'))";
    testkit::eventually(
        Duration::from_secs(90),
        "every transfer to reach a final state",
        || async { (count(&db, user_rows).await == TRANSFERS as i64).then_some(()) },
    )
    .await;
    for r in &mut replicas {
        let _ = r.kill();
        let _ = r.wait();
    }

    assert_eq!(
        count(&db, "SELECT count(DISTINCT id) FROM transfers").await,
        count(&db, "SELECT count(*) FROM transfers").await
    );
    let committed = count(
        &db,
        "SELECT count(*) FROM transfers WHERE status = 'committed'",
    )
    .await;
    assert_eq!(
        count(&db, "SELECT count(*) FROM entries").await,
        2 * committed,
        "two entries per commit, none twice"
    );
    let rejected = count(
        &db,
        "SELECT count(*) FROM transfers WHERE status = 'rejected'",
    )
    .await;
    assert!(rejected > 0, "the overdrawing transfers were rejected");
    let report = ledger::invariants::check(&db.pool).await.unwrap();
    assert!(report.holds(), "{:?}", report.violations());
    eprintln!("final: {committed} committed, {rejected} rejected");
}
