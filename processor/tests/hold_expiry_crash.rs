//! `kill -9` of the processor binary while holds are expiring, then a
//! restart with two replicas: every hold ends expired exactly once, no
//! money moved, nothing stays held, and the ledger's invariants hold.

mod common;

use common::{count, spawn_processor};
use std::str::FromStr;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use rust_decimal::Decimal;
use shared::hold::{Op, hold_id};
use shared::messages::{SCHEMA_VERSION, TransferCommand};
use shared::transfer::IdempotencyKey;
use testkit::{TestDb, TestNats, TestRedis};
use uuid::Uuid;

const HOLDS: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_holds_expire_releases_each_once() {
    let db = TestDb::new().await;
    admin::seed_demo(&db.pool).await.expect("seed");
    let nats = TestNats::new().await;
    let redis = TestRedis::new();
    let alice = ledger::users::id_by_name(&db.pool, "alice")
        .await
        .unwrap()
        .unwrap();
    let alice_eur = Uuid::from_str("a11ce000-0000-4000-8000-000000000001").unwrap();
    let bob_eur = Uuid::from_str("b0b00000-0000-4000-8000-000000000001").unwrap();

    let mut first = spawn_processor(
        &db,
        &nats,
        &redis,
        &[("PROCESSOR_HOLD_EXPIRY_INTERVAL_MS", "50")],
    );
    let mut acks = Vec::new();
    for i in 0..HOLDS {
        let key = IdempotencyKey::parse(&format!("hold-{i}")).unwrap();
        let now = Utc::now();
        let cmd = TransferCommand {
            v: SCHEMA_VERSION,
            id: hold_id(alice, &key),
            owner: alice,
            idempotency_key: key.as_str().to_owned(),
            from_account: alice_eur,
            to_account: bob_eur,
            amount: Decimal::from_str("1.00").unwrap(),
            currency: "EUR".into(),
            reference: None,
            accepted_at: now,
            batch: None,
            op: Op::HoldCreate,
            hold_id: None,
            // Spread over about two seconds, so the kill lands mid-expiry.
            expires_at: Some(now + TimeDelta::milliseconds(500 + 5 * i as i64)),
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
    testkit::eventually(Duration::from_secs(60), "some holds to expire", || async {
        (count(&db, "SELECT count(*) FROM holds WHERE status = 'expired'").await >= 30)
            .then_some(())
    })
    .await;
    first.kill().expect("kill -9");
    let _ = first.wait();
    let at_kill = count(&db, "SELECT count(*) FROM holds WHERE status = 'expired'").await;
    eprintln!("killed with {at_kill} holds expired");

    let mut replicas = vec![
        spawn_processor(
            &db,
            &nats,
            &redis,
            &[("PROCESSOR_HOLD_EXPIRY_INTERVAL_MS", "50")],
        ),
        spawn_processor(
            &db,
            &nats,
            &redis,
            &[("PROCESSOR_HOLD_EXPIRY_INTERVAL_MS", "50")],
        ),
    ];
    testkit::eventually(Duration::from_secs(90), "every hold to expire", || async {
        (count(&db, "SELECT count(*) FROM holds WHERE status = 'expired'").await == HOLDS as i64)
            .then_some(())
    })
    .await;
    for r in &mut replicas {
        let _ = r.kill();
        let _ = r.wait();
    }
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM transfers WHERE hold_id IS NOT NULL"
        )
        .await,
        0
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM accounts WHERE held <> 0").await,
        0
    );
    let report = ledger::invariants::check(&db.pool).await.unwrap();
    assert!(report.holds(), "{:?}", report.violations());
}
