//! Batch payments: streamed uploads, all-or-nothing validation, safe
//! resubmission, atomic mode, progress and per-payment outcomes.

use std::time::Duration;

use serde_json::{Value, json};
use system_tests::*;

const BATCH_EUR: &str = "ba7c0000-0000-4000-8000-000000000001";

async fn upload(
    stack: &Stack,
    token: &str,
    key: &str,
    content_type: &str,
    body: String,
    mode: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut url = format!("{}/v1/batches", stack.api);
    if let Some(m) = mode {
        url.push_str(&format!("?mode={m}"));
    }
    let r = stack
        .http
        .post(url)
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.json().await.unwrap_or(Value::Null))
}

fn csv(lines: &[(&str, &str, &str)]) -> String {
    let mut out = String::from("from_account,to_account,amount,currency,reference\n");
    for (i, (from, to, amount)) in lines.iter().enumerate() {
        out.push_str(&format!("{from},{to},{amount},EUR,\"pay, #{i}\"\n"));
    }
    out
}

async fn done(stack: &Stack, token: &str, id: &str) -> Value {
    testkit::eventually(Duration::from_secs(30), "the batch to finish", || async {
        let (status, b) = stack.get(token, &format!("/v1/batches/{id}")).await;
        (status == 200 && b["done"] == true).then_some(b)
    })
    .await
}

async fn rows(stack: &Stack, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&stack.db.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_csv_batch_is_applied_once_even_when_resubmitted() {
    let stack = Stack::start().await;
    let batch = stack.login("batch").await;
    let mut ws = stack.connect_ws(&batch, None).await;
    let lines: Vec<(&str, &str, &str)> = (0..50).map(|_| (BATCH_EUR, BOB_EUR, "2.00")).collect();
    let body = csv(&lines);
    let (status, headers, accepted) =
        upload(&stack, &batch, "payroll-1", "text/csv", body.clone(), None).await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["count"], 50);
    assert!(headers.get("idempotent-replayed").is_none());
    let id = accepted["id"].as_str().unwrap().to_owned();
    let b = done(&stack, &batch, &id).await;
    assert_eq!(
        (
            b["committed"].as_i64(),
            b["rejected"].as_i64(),
            b["pending"].as_i64()
        ),
        (Some(50), Some(0), Some(0))
    );
    assert_eq!(
        b["totals"][0],
        json!({"currency": "EUR", "committed": "100.00", "rejected": "0.00"})
    );
    // The owner hears the progress, throttled, the last update saying done.
    let pushed = ws
        .until(Duration::from_secs(10), |v| {
            v["type"] == "batch.updated" && v["batch"]["done"] == true
        })
        .await
        .expect("batch.updated done");
    assert_eq!(pushed["batch"]["committed"], 50);
    ws.close().await;

    // The client crashed and sends the same file again: same batch, nothing twice.
    let (status, headers, again) =
        upload(&stack, &batch, "payroll-1", "text/csv", body, None).await;
    assert_eq!(status, 202);
    assert_eq!(again["id"], id.as_str());
    assert_eq!(headers["idempotent-replayed"], "true");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        rows(
            &stack,
            &format!("SELECT count(*) FROM transfers WHERE batch_id = '{id}'")
        )
        .await,
        50
    );
    assert_eq!(
        stack.balance(&stack.login("bob").await, BOB_EUR).await,
        "2600.00"
    );

    // Outcomes by line, paged.
    let (_, page) = stack
        .get(&batch, &format!("/v1/batches/{id}/payments?limit=20"))
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 20);
    assert_eq!(page["items"][0]["line"], 2, "line 1 is the header");
    assert_eq!(page["items"][0]["reference"], "pay, #0");
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, next) = stack
        .get(
            &batch,
            &format!("/v1/batches/{id}/payments?limit=20&cursor={cursor}"),
        )
        .await;
    assert_eq!(next["items"][0]["line"], 22);
    let (_, pending) = stack
        .get(&batch, &format!("/v1/batches/{id}/payments?status=pending"))
        .await;
    assert_eq!(pending["items"].as_array().unwrap().len(), 0);

    // Same key, different file: refused.
    let (status, _, problem) = upload(
        &stack,
        &batch,
        "payroll-1",
        "text/csv",
        csv(&[(BATCH_EUR, BOB_EUR, "3.00")]),
        None,
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    // Someone else cannot see it.
    assert_eq!(
        stack
            .get(&stack.login("alice").await, &format!("/v1/batches/{id}"))
            .await
            .0,
        404
    );
    let report = ledger::invariants::check(&stack.db.pool).await.unwrap();
    assert!(report.holds(), "{:?}", report.violations());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_invalid_line_refuses_the_whole_batch_and_publishes_nothing() {
    let stack = Stack::start().await;
    let batch = stack.login("batch").await;
    let published = stack.nats.transfers_published().await;
    let body = csv(&[
        (BATCH_EUR, BOB_EUR, "1.00"),
        (BATCH_EUR, BOB_EUR, "0"),
        (BATCH_EUR, "nope", "1.00"),
        (BOB_EUR, BATCH_EUR, "1.00"),
    ]);
    let (status, _, problem) = upload(&stack, &batch, "bad-1", "text/csv", body, None).await;
    assert_eq!(status, 422, "{problem}");
    let errors = problem["errors"].as_array().unwrap();
    assert_eq!(
        errors[0],
        json!({"line": 3, "field": "amount", "message": "must be greater than zero"})
    );
    assert_eq!(errors[1]["line"], 4);
    assert_eq!(errors[1]["field"], "to_account");
    let (status, _, problem) = upload(
        &stack,
        &batch,
        "bad-2",
        "text/csv",
        csv(&[(BOB_EUR, BATCH_EUR, "1.00")]),
        None,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(
        problem["errors"][0]["field"], "from_account",
        "someone else's account"
    );
    let (status, _, _) = upload(&stack, &batch, "bad-3", "text/plain", "x".into(), None).await;
    assert_eq!(status, 415);
    let (status, _, _) = upload(
        &stack,
        &batch,
        "bad-4",
        "text/csv",
        "wrong,header\n".into(),
        None,
    )
    .await;
    assert_eq!(status, 422);
    let ops = stack.login("ops").await;
    let (status, _, _) = upload(
        &stack,
        &ops,
        "bad-5",
        "text/csv",
        csv(&[(BATCH_EUR, BOB_EUR, "1.00")]),
        None,
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(stack.nats.transfers_published().await, published);
    assert_eq!(rows(&stack, "SELECT count(*) FROM batches").await, 0);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_atomic_batch_applies_all_or_nothing() {
    let stack = Stack::start().await;
    let alice = stack.login("alice").await;
    // One payment would overdraw: nothing moves.
    let body = csv(&[
        (ALICE_EUR, BOB_EUR, "1.00"),
        (ALICE_EUR, BOB_EUR, "20000.00"),
        (ALICE_EUR, BOB_EUR, "1.00"),
    ]);
    let (status, _, accepted) =
        upload(&stack, &alice, "atomic-1", "text/csv", body, Some("atomic")).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_owned();
    let b = done(&stack, &alice, &id).await;
    assert_eq!(
        (b["committed"].as_i64(), b["rejected"].as_i64()),
        (Some(0), Some(3))
    );
    let (_, page) = stack
        .get(&alice, &format!("/v1/batches/{id}/payments"))
        .await;
    let reasons: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        ["batch_aborted", "insufficient_funds", "batch_aborted"]
    );
    assert_eq!(stack.balance(&alice, ALICE_EUR).await, "10000.00");

    // All can be applied: all are, in one transaction.
    let ndjson = format!(
        "{}\n{}\n",
        json!({"from_account": ALICE_EUR, "to_account": BOB_EUR, "amount": "10.00", "currency": "EUR"}),
        json!({"from_account": ALICE_EUR, "to_account": BOB_EUR, "amount": "5.00", "currency": "EUR"})
    );
    let (status, _, accepted) = upload(
        &stack,
        &alice,
        "atomic-2",
        "application/x-ndjson",
        ndjson,
        Some("atomic"),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let b = done(&stack, &alice, accepted["id"].as_str().unwrap()).await;
    assert_eq!(b["committed"], 2);
    assert_eq!(stack.balance(&alice, ALICE_EUR).await, "9985.00");

    // JSON documents work too (independent mode).
    let doc = json!({"payments": [{"from_account": ALICE_EUR, "to_account": BOB_EUR, "amount": "1.50", "currency": "EUR"}]});
    let (status, _, accepted) = upload(
        &stack,
        &alice,
        "json-1",
        "application/json",
        doc.to_string(),
        None,
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    done(&stack, &alice, accepted["id"].as_str().unwrap()).await;
    assert_eq!(stack.balance(&alice, ALICE_EUR).await, "9983.50");
    let report = ledger::invariants::check(&stack.db.pool).await.unwrap();
    assert!(report.holds(), "{:?}", report.violations());
    stack.stop().await;
}
