//! The audit trail against a real PostgreSQL: concurrent writers keep one
//! unbroken chain, the table refuses rewrites, and tampering by a superuser
//! (triggers disabled) is found at the right row.

use ledger::audit::{self, Record, Verification};
use serde_json::json;
use testkit::TestDb;

fn record(i: usize) -> Record {
    Record::new("test.event", "ok")
        .actor(format!("writer-{}", i % 7))
        .target(format!("t{i}"))
        .detail(json!({"i": i, "note": "x\0y", "fraction": 0.25}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_form_one_chain() {
    let db = TestDb::new().await;
    assert!(matches!(
        audit::verify(&db.pool).await.unwrap(),
        Verification::Intact { rows: 0, .. }
    ));
    // 8 writers, 20 batches each of 1..=10 records, all at once.
    let writers = (0..8).map(|w| {
        let pool = db.pool.clone();
        tokio::spawn(async move {
            for b in 0..20 {
                let batch: Vec<Record> = (0..1 + (w + b) % 10)
                    .map(|i| record(w * 1000 + b * 10 + i))
                    .collect();
                audit::append(&pool, &batch).await.unwrap();
            }
        })
    });
    for w in futures::future::join_all(writers).await {
        w.unwrap();
    }
    let expected: i64 = (0..8)
        .flat_map(|w| (0..20).map(move |b| 1 + (w + b) % 10))
        .sum::<usize>() as i64;
    match audit::verify(&db.pool).await.unwrap() {
        Verification::Intact { rows, .. } => assert_eq!(rows as i64, expected),
        broken => panic!("{broken:?}"),
    }
    // Stored as hashed: NUL replaced, fraction as a string.
    let page = audit::page(&db.pool, None, 1).await.unwrap();
    assert_eq!(page[0].id, expected);
    assert_eq!(page[0].record.detail["fraction"], "0.25");
    assert_eq!(page[0].record.detail["note"], "x\u{FFFD}y");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrites_are_refused_and_tampering_is_found() {
    let db = TestDb::new().await;
    let batch: Vec<Record> = (0..5).map(record).collect();
    audit::append(&db.pool, &batch).await.unwrap();
    for sql in [
        "UPDATE audit_log SET outcome = 'changed' WHERE id = 2",
        "DELETE FROM audit_log WHERE id = 5",
        "TRUNCATE audit_log",
        "DELETE FROM audit_head",
    ] {
        let e = sqlx::query(sql).execute(&db.pool).await.unwrap_err();
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
    // A direct INSERT that bypasses the writer collides on the id.
    assert!(
        sqlx::query("INSERT INTO audit_log (at, action, outcome, prev_hash, hash) VALUES (now(), 'x', 'y', $1, $1)")
            .bind(vec![0u8; 32])
            .execute(&db.pool)
            .await
            .is_err()
    );

    // A superuser changes row 3 behind the trigger's back.
    db.tamper_with_audit("UPDATE audit_log SET outcome = 'forged' WHERE id = 3")
        .await;
    assert!(matches!(
        audit::verify(&db.pool).await.unwrap(),
        Verification::Broken { id: 3, .. }
    ));
    db.tamper_with_audit("UPDATE audit_log SET outcome = 'ok' WHERE id = 3")
        .await;
    assert!(matches!(
        audit::verify(&db.pool).await.unwrap(),
        Verification::Intact { rows: 5, .. }
    ));

    // Removing a row in the middle, or the last one.
    db.tamper_with_audit("DELETE FROM audit_log WHERE id = 5")
        .await;
    match audit::verify(&db.pool).await.unwrap() {
        Verification::Broken { id: 5, reason } => assert!(reason.contains("missing"), "{reason}"),
        other => panic!("{other:?}"),
    }
    db.tamper_with_audit("DELETE FROM audit_log WHERE id = 2")
        .await;
    assert!(matches!(
        audit::verify(&db.pool).await.unwrap(),
        Verification::Broken { id: 2, .. }
    ));
}
