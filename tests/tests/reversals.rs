//! Reversals end to end: full and partial, never beyond the original,
//! only by the reverser role, refused when the payee lacks the money,
//! idempotent by key, linked both ways, audited, pushed to both customers.

use std::time::Duration;

use serde_json::{Value, json};
use system_tests::*;

async fn assert_invariants(stack: &Stack) {
    let report = ledger::invariants::check(&stack.db.pool).await.unwrap();
    assert!(report.holds(), "{:?}", report.violations());
}

/// A committed transfer from `from` (logged in as `token`) to `to`.
async fn committed(
    stack: &Stack,
    token: &str,
    key: &str,
    from: &str,
    to: &str,
    amount: &str,
) -> String {
    let (status, _, body) = stack
        .transfer(
            token,
            key,
            &json!({"from_account": from, "to_account": to, "amount": amount, "currency": "EUR"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let t = stack.final_state(token, &id).await;
    assert_eq!(t["status"], "committed", "{t}");
    id
}

async fn reverse(
    stack: &Stack,
    token: &str,
    original: &str,
    key: &str,
    body: Value,
) -> (u16, Value) {
    let (status, _, body) = stack
        .post_keyed(
            token,
            &format!("/v1/transfers/{original}/reversals"),
            key,
            Some(&body),
        )
        .await;
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partial_then_full_reversal_and_no_more() {
    let stack = Stack::start().await;
    let alice = stack.login("alice").await;
    let bob = stack.login("bob").await;
    let rita = stack.login("rita").await;
    let original = committed(&stack, &alice, "pay-1", ALICE_EUR, BOB_EUR, "100.00").await;
    let mut alice_ws = stack.connect_ws(&alice, None).await;
    let mut bob_ws = stack.connect_ws(&bob, None).await;

    let (status, body) = reverse(
        &stack,
        &rita,
        &original,
        "rev-1",
        json!({"amount": "30.00", "reason": "duplicate charge"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "pending");
    assert_eq!(body["reverses"], original.as_str());
    assert_eq!(body["reversal_reason"], "duplicate charge");
    assert_eq!(
        (body["from_account"].as_str(), body["to_account"].as_str()),
        (Some(BOB_EUR), Some(ALICE_EUR))
    );
    let first = body["id"].as_str().unwrap().to_owned();
    let t = stack.final_state(&rita, &first).await;
    assert_eq!(
        (t["status"].as_str(), t["amount"].as_str()),
        (Some("committed"), Some("30.00"))
    );
    assert_eq!(stack.balance(&alice, ALICE_EUR).await, "9930.00");
    assert_eq!(stack.balance(&bob, BOB_EUR).await, "2570.00");
    // Both customers hear about it; both may read it.
    let is_it =
        |v: &Value| v["type"] == "transfer.updated" && v["transfer"]["id"] == first.as_str();
    assert!(
        alice_ws
            .until(Duration::from_secs(15), is_it)
            .await
            .is_some()
    );
    assert!(bob_ws.until(Duration::from_secs(15), is_it).await.is_some());
    for token in [&alice, &bob] {
        let (status, _) = stack.get(token, &format!("/v1/transfers/{first}")).await;
        assert_eq!(status, 200);
    }

    // The same key again: the same reversal; another body: refused.
    let (status, again) = reverse(
        &stack,
        &rita,
        &original,
        "rev-1",
        json!({"amount": "30.00", "reason": "duplicate charge"}),
    )
    .await;
    assert_eq!((status, again["id"].as_str()), (202, Some(first.as_str())));
    let (status, _) = reverse(
        &stack,
        &rita,
        &original,
        "rev-1",
        json!({"amount": "31.00", "reason": "duplicate charge"}),
    )
    .await;
    assert_eq!(status, 422);

    // No amount: what is left (70).
    let (status, body) = reverse(
        &stack,
        &rita,
        &original,
        "rev-2",
        json!({"reason": "refund the rest"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let rest = stack.final_state(&rita, body["id"].as_str().unwrap()).await;
    assert_eq!(
        (rest["status"].as_str(), rest["amount"].as_str()),
        (Some("committed"), Some("70.00"))
    );

    // Nothing is left: refused with the reason.
    let (status, body) = reverse(
        &stack,
        &rita,
        &original,
        "rev-3",
        json!({"amount": "0.01", "reason": "one cent more"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let over = stack.final_state(&rita, body["id"].as_str().unwrap()).await;
    assert_eq!(
        (over["status"].as_str(), over["reason"].as_str()),
        (Some("rejected"), Some("reversal_exceeds_original"))
    );

    // A reversal of a reversal is refused.
    let (status, body) = reverse(&stack, &rita, &first, "rev-4", json!({"reason": "again"})).await;
    assert_eq!(status, 202, "{body}");
    let twice = stack.final_state(&rita, body["id"].as_str().unwrap()).await;
    assert_eq!(twice["reason"], "original_not_committed");

    // The original lists its reversals.
    let (status, orig) = stack
        .get(&alice, &format!("/v1/transfers/{original}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(orig["reversed_amount"], "100.00");
    assert_eq!(orig["reversals"].as_array().map(Vec::len), Some(3));
    assert_eq!(stack.balance(&alice, ALICE_EUR).await, "10000.00");
    assert_eq!(stack.balance(&bob, BOB_EUR).await, "2500.00");

    let audit = stack.audit_rows("transfer.reversed", 5).await;
    assert!(
        audit
            .iter()
            .any(|r| r.record.target.as_deref() == Some(original.as_str()))
    );
    assert_invariants(&stack).await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_reversers_reverse_and_payees_must_have_the_money() {
    let stack = Stack::start().await;
    let alice = stack.login("alice").await;
    let bob = stack.login("bob").await;
    let ops = stack.login("ops").await;
    let rita = stack.login("rita").await;
    let original = committed(&stack, &alice, "pay-2", ALICE_EUR, BOB_EUR, "100.00").await;

    for token in [&alice, &bob, &ops] {
        let (status, body) =
            reverse(&stack, token, &original, "nope", json!({"reason": "x"})).await;
        assert_eq!(status, 403, "{body}");
    }
    // The reverser moves no money of its own.
    let (status, _, _) = stack
        .transfer(
            &rita,
            "rita-pay",
            &json!({"from_account": ALICE_EUR, "to_account": BOB_EUR,
            "amount": "1.00", "currency": "EUR"}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = reverse(&stack, &rita, &original, "no-reason", json!({})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "reason");

    // Bob spends everything; the reversal finds nothing to take back.
    committed(&stack, &bob, "spend", BOB_EUR, ALICE_EUR, "2600.00").await;
    let (status, body) = reverse(
        &stack,
        &rita,
        &original,
        "rev-poor",
        json!({"reason": "fraud"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let t = stack.final_state(&rita, body["id"].as_str().unwrap()).await;
    assert_eq!(
        (t["status"].as_str(), t["reason"].as_str()),
        (Some("rejected"), Some("insufficient_funds"))
    );
    assert_eq!(stack.balance(&bob, BOB_EUR).await, "0.00");
    assert_invariants(&stack).await;
    stack.stop().await;
}
