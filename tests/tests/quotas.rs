//! Per-role quotas against the real services: a customer's money-moving
//! budget and burst, batch lines counted instead of requests, ops reads.

use futures::future::join_all;
use gateway::quotas::{Moves, RoleQuota};
use serde_json::{Value, json};
use shared::auth::Role;
use system_tests::*;

const BATCH_EUR: &str = "ba7c0000-0000-4000-8000-000000000001";

fn transfer_body() -> Value {
    json!({"from_account": ALICE_EUR, "to_account": BOB_EUR, "amount": "1.00", "currency": "EUR"})
}

/// The 429's Retry-After and the quota it names.
fn refusal(status: u16, headers: &reqwest::header::HeaderMap, body: &Value) -> (u64, String) {
    assert_eq!(status, 429, "{body}");
    assert!(
        body["type"].as_str().unwrap().ends_with("/rate-limited"),
        "{body}"
    );
    let wait = headers["retry-after"].to_str().unwrap().parse().unwrap();
    (
        wait,
        body["quota"].as_str().expect("quota named").to_owned(),
    )
}

fn quota(role: Role, moves: Option<(u64, u64)>, reads: u64) -> RoleQuota {
    RoleQuota {
        role,
        moves: moves.map(|(per_minute, per_second)| Moves {
            per_minute,
            per_second,
        }),
        reads_per_minute: reads,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_customer_over_the_move_budget_gets_429_while_reads_pass() {
    let stack = Stack::start_with(|c| {
        c.quotas.set(quota(Role::Customer, Some((5, 0)), 1_000));
    })
    .await;
    let alice = stack.login("alice").await;
    let published = stack.nats.transfers_published().await;
    for i in 0..5 {
        let (status, _, body) = stack
            .transfer(&alice, &format!("q-{i}"), &transfer_body())
            .await;
        assert_eq!(status, 202, "{body}");
    }
    let (status, headers, body) = stack.transfer(&alice, "q-over", &transfer_body()).await;
    let (wait, name) = refusal(status, &headers, &body);
    assert_eq!(name, "customer.moves");
    assert!(
        (1..=60).contains(&wait),
        "Retry-After {wait}: within the minute"
    );
    assert_eq!(
        stack.nats.transfers_published().await,
        published + 5,
        "the refused one was not published"
    );
    // Reads have their own budget; bob his own moves.
    assert_eq!(stack.get(&alice, "/v1/accounts").await.0, 200);
    assert_eq!(
        stack
            .get(&alice, &format!("/v1/accounts/{ALICE_EUR}"))
            .await
            .0,
        200
    );
    let bob = stack.login("bob").await;
    let (status, _, body) = stack
        .transfer(
            &bob,
            "bob-1",
            &json!({"from_account": BOB_EUR, "to_account": ALICE_EUR, "amount": "1.00", "currency": "EUR"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_customer_burst_is_cut_at_the_per_second_budget() {
    let stack = Stack::start_with(|c| {
        c.quotas.set(quota(Role::Customer, Some((1_000, 3)), 1_000));
    })
    .await;
    let alice = stack.login("alice").await;
    let body = transfer_body();
    let answers = join_all((0..12).map(|i| {
        let (stack, alice, body) = (&stack, &alice, &body);
        async move { stack.transfer(alice, &format!("burst-{i}"), body).await }
    }))
    .await;
    let accepted = answers.iter().filter(|(s, _, _)| *s == 202).count();
    let refused: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 429).collect();
    // Three a second: one window, or two if the burst straddles a second.
    assert!((3..=6).contains(&accepted), "{accepted} accepted");
    assert_eq!(accepted + refused.len(), 12);
    let (wait, name) = refusal(429, &refused[0].1, &refused[0].2);
    assert_eq!((wait, name.as_str()), (1, "customer.moves"));
    stack.stop().await;
}

async fn upload(
    stack: &Stack,
    token: &str,
    key: &str,
    lines: usize,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let payments: Vec<Value> = (0..lines)
        .map(|_| json!({"from_account": BATCH_EUR, "to_account": BOB_EUR, "amount": "1.00", "currency": "EUR"}))
        .collect();
    let r = stack
        .http
        .post(format!("{}/v1/batches", stack.api))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&json!({ "payments": payments }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batch_uploads_spend_their_lines_and_ops_has_a_read_budget() {
    let stack = Stack::start_with(|c| {
        c.quotas.set(quota(Role::Batch, Some((10, 0)), 1_000));
        c.quotas.set(quota(Role::Ops, None, 3));
    })
    .await;
    let batch = stack.login("batch").await;
    let (status, _, body) = upload(&stack, &batch, "lines-1", 6).await;
    assert_eq!(status, 202, "{body}");
    // Two requests, but 12 lines: over the 10 a minute.
    let (status, headers, body) = upload(&stack, &batch, "lines-2", 6).await;
    let (_, name) = refusal(status, &headers, &body);
    assert_eq!(name, "batch.moves");
    // What is left still fits; a batch larger than the whole budget never can.
    let (status, _, body) = upload(&stack, &batch, "lines-3", 4).await;
    assert_eq!(status, 202, "{body}");
    let (status, _, body) = upload(&stack, &batch, "lines-4", 11).await;
    assert_eq!(status, 422, "{body}");
    // Reads are a separate budget.
    assert_eq!(stack.get(&batch, "/v1/accounts").await.0, 200);

    let ops = stack.login("ops").await;
    for _ in 0..3 {
        assert_eq!(stack.get(&ops, "/v1/ops/transfers").await.0, 200);
    }
    let r = stack
        .http
        .get(format!("{}/v1/ops/transfers", stack.api))
        .bearer_auth(&ops)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body: Value = r.json().await.unwrap();
    assert_eq!(refusal(status, &headers, &body).1, "ops.reads");
    stack.stop().await;
}
