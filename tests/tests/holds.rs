//! Holds end to end: reserve, capture (partly), void, expire; what each
//! does to `balance` and `available`; refused captures and voids with their
//! reasons; duplicates under the same Idempotency-Key; the invariants.

use std::time::Duration;

use serde_json::{Value, json};
use system_tests::*;

fn hold_body(amount: &str, seconds: u64) -> Value {
    json!({"from_account": ALICE_EUR, "to_account": BOB_EUR, "amount": amount,
           "currency": "EUR", "reference": "hotel", "expires_in_seconds": seconds})
}

async fn assert_invariants(stack: &Stack) {
    let report = ledger::invariants::check(&stack.db.pool).await.unwrap();
    assert!(report.holds(), "{:?}", report.violations());
}

/// Creates a hold and waits until it is decided; returns its view.
async fn decided_hold(stack: &Stack, token: &str, key: &str, amount: &str, secs: u64) -> Value {
    let (status, headers, body) = stack
        .post_keyed(token, "/v1/holds", key, Some(&hold_body(amount, secs)))
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "requested");
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(headers["location"], format!("/v1/holds/{id}").as_str());
    stack
        .wait_for(token, &format!("/v1/holds/{id}"), |h| {
            h["status"] != "requested"
        })
        .await
}

/// Creates a hold and waits until it is pending; returns its id.
async fn pending_hold(stack: &Stack, token: &str, key: &str, amount: &str, secs: u64) -> String {
    let hold = decided_hold(stack, token, key, amount, secs).await;
    assert_eq!(hold["status"], "pending", "{hold}");
    hold["id"].as_str().unwrap().to_owned()
}

async fn account(stack: &Stack, token: &str, id: &str) -> Value {
    let (status, body) = stack.get(token, &format!("/v1/accounts/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Waits until the action `action` of hold `hold` is decided; returns it.
async fn decided_action(stack: &Stack, token: &str, hold: &str, action: &str) -> Value {
    let h = stack
        .wait_for(token, &format!("/v1/holds/{hold}"), |h| {
            h["actions"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["id"] == action))
        })
        .await;
    h["actions"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["id"] == action).cloned())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hold_capture_partly_then_refused_captures() {
    let stack = Stack::start().await;
    let alice = stack.login("alice").await;
    let bob = stack.login("bob").await;

    let id = pending_hold(&stack, &alice, "hold-1", "100.00", 3600).await;
    // A hold lowers what can be spent, not the ledger balance.
    let a = account(&stack, &alice, ALICE_EUR).await;
    assert_eq!(
        (
            a["balance"].as_str(),
            a["available"].as_str(),
            a["held"].as_str()
        ),
        (Some("10000.00"), Some("9900.00"), Some("100.00"))
    );
    // Bob (the payee) sees the hold too.
    let (status, _) = stack.get(&bob, &format!("/v1/holds/{id}")).await;
    assert_eq!(status, 200);

    // The same key again: the same hold; another body: refused.
    let (status, headers, body) = stack
        .post_keyed(
            &alice,
            "/v1/holds",
            "hold-1",
            Some(&hold_body("100.00", 3600)),
        )
        .await;
    assert_eq!((status, body["id"].as_str()), (202, Some(id.as_str())));
    assert_eq!(headers["idempotent-replayed"], "true");
    let (status, _, _) = stack
        .post_keyed(
            &alice,
            "/v1/holds",
            "hold-1",
            Some(&hold_body("99.00", 3600)),
        )
        .await;
    assert_eq!(status, 422);

    // A transfer beyond what is available is refused.
    let (status, _, body) = stack
        .transfer(
            &alice,
            "too-much",
            &json!({"from_account": ALICE_EUR, "to_account": BOB_EUR,
                    "amount": "9950.00", "currency": "EUR"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let t = stack
        .final_state(&alice, body["id"].as_str().unwrap())
        .await;
    assert_eq!(
        (t["status"].as_str(), t["reason"].as_str()),
        (Some("rejected"), Some("insufficient_funds"))
    );

    // Bob cannot capture alice's hold.
    let capture = format!("/v1/holds/{id}/capture");
    let (status, _, _) = stack
        .post_keyed(&bob, &capture, "c-bob", Some(&json!({})))
        .await;
    assert_eq!(status, 404);

    // Capture 40 of 100: 40 moves, the rest is released.
    let (status, _, body) = stack
        .post_keyed(&alice, &capture, "cap-1", Some(&json!({"amount": "40.00"})))
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["action"]["status"], "requested");
    let action = body["action"]["id"].as_str().unwrap().to_owned();
    let hold = stack
        .wait_for(&alice, &format!("/v1/holds/{id}"), |h| {
            h["status"] != "pending"
        })
        .await;
    assert_eq!(hold["status"], "captured", "{hold}");
    assert_eq!(hold["captured_amount"], "40.00");
    let transfer = hold["capture_transfer_id"].as_str().unwrap();
    let t = stack.final_state(&alice, transfer).await;
    assert_eq!(
        (
            t["status"].as_str(),
            t["amount"].as_str(),
            t["hold_id"].as_str()
        ),
        (Some("committed"), Some("40.00"), Some(id.as_str()))
    );
    let a = account(&stack, &alice, ALICE_EUR).await;
    assert_eq!(
        (
            a["balance"].as_str(),
            a["available"].as_str(),
            a["held"].as_str()
        ),
        (Some("9960.00"), Some("9960.00"), Some("0.00"))
    );
    assert_eq!(stack.balance(&bob, BOB_EUR).await, "2540.00");

    // The same capture again: replayed, applied once.
    let (status, headers, body) = stack
        .post_keyed(&alice, &capture, "cap-1", Some(&json!({"amount": "40.00"})))
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(body["action"]["id"], action.as_str());
    assert_eq!(body["action"]["status"], "applied");
    let (status, _, _) = stack
        .post_keyed(&alice, &capture, "cap-1", Some(&json!({"amount": "41.00"})))
        .await;
    assert_eq!(status, 422);

    // A second capture is refused with its reason; nothing moves.
    let (status, _, body) = stack
        .post_keyed(&alice, &capture, "cap-2", Some(&json!({})))
        .await;
    assert_eq!(status, 202, "{body}");
    let second = body["action"]["id"].as_str().unwrap().to_owned();
    let refused = decided_action(&stack, &alice, &id, &second).await;
    assert_eq!(
        (refused["status"].as_str(), refused["reason"].as_str()),
        (Some("rejected"), Some("hold_not_pending"))
    );

    // Capturing more than the hold is refused; the hold stays pending.
    let small = pending_hold(&stack, &alice, "hold-2", "10.00", 3600).await;
    let (status, _, body) = stack
        .post_keyed(
            &alice,
            &format!("/v1/holds/{small}/capture"),
            "cap-3",
            Some(&json!({"amount": "10.01"})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let over = body["action"]["id"].as_str().unwrap().to_owned();
    let refused = decided_action(&stack, &alice, &small, &over).await;
    assert_eq!(refused["reason"], "capture_exceeds_hold");
    let (_, h) = stack.get(&alice, &format!("/v1/holds/{small}")).await;
    assert_eq!(h["status"], "pending");

    // The list shows both, newest first.
    let (status, list) = stack
        .get(&alice, &format!("/v1/holds?account={ALICE_EUR}"))
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"][0]["id"], small.as_str());
    assert_eq!(list["items"][1]["id"], id.as_str());
    assert_eq!(stack.balance(&bob, BOB_EUR).await, "2540.00");

    // A hold beyond what is available is rejected. The payee saw the holds
    // that reserved money for them, not this one: that alice lacked the
    // funds is alice's business.
    let hold = decided_hold(&stack, &alice, "hold-too-much", "20000.00", 3600).await;
    let too_much = hold["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (hold["status"].as_str(), hold["reason"].as_str()),
        (Some("rejected"), Some("insufficient_funds"))
    );
    let (status, body) = stack.get(&bob, &format!("/v1/holds/{too_much}")).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = stack.get(&bob, &format!("/v1/holds/{id}")).await;
    assert_eq!(status, 200);
    let (status, list) = stack
        .get(&bob, &format!("/v1/holds?account={BOB_EUR}"))
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(item_ids(&list), vec![small.clone(), id.clone()]);
    let (status, list) = stack
        .get(&alice, &format!("/v1/holds?account={ALICE_EUR}"))
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        item_ids(&list),
        vec![too_much.clone(), small.clone(), id.clone()]
    );
    // Ops see it on either side.
    let ops = stack.login("ops").await;
    let (status, list) = stack
        .get(&ops, &format!("/v1/holds?account={BOB_EUR}"))
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(item_ids(&list), vec![too_much, small, id]);
    assert_invariants(&stack).await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn void_releases_and_later_captures_are_refused() {
    let stack = Stack::start().await;
    let alice = stack.login("alice").await;
    let bob = stack.login("bob").await;
    let ops = stack.login("ops").await;

    // Only movers may hold money.
    let (status, _, _) = stack
        .post_keyed(&ops, "/v1/holds", "ops-hold", Some(&hold_body("1.00", 60)))
        .await;
    assert_eq!(status, 403);
    let (status, _, body) = stack
        .post_keyed(&alice, "/v1/holds", "bad", Some(&hold_body("1.00", 0)))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "expires_in_seconds");

    let mut alice_ws = stack.connect_ws(&alice, None).await;
    let mut bob_ws = stack.connect_ws(&bob, None).await;
    let id = pending_hold(&stack, &alice, "hold-v", "250.00", 3600).await;
    let void = format!("/v1/holds/{id}/void");
    let (status, _, body) = stack.post_keyed(&alice, &void, "void-1", None).await;
    assert_eq!(status, 202, "{body}");
    let hold = stack
        .wait_for(&alice, &format!("/v1/holds/{id}"), |h| {
            h["status"] != "pending"
        })
        .await;
    assert_eq!(hold["status"], "voided");
    assert!(hold["finished_at"].is_string());
    let a = account(&stack, &alice, ALICE_EUR).await;
    assert_eq!(
        (a["balance"].as_str(), a["available"].as_str()),
        (Some("10000.00"), Some("10000.00"))
    );
    // Both owners hear about it live.
    let voided = |v: &Value| v["type"] == "hold.updated" && v["hold"]["status"] == "voided";
    assert!(
        alice_ws
            .until(Duration::from_secs(15), voided)
            .await
            .is_some()
    );
    assert!(
        bob_ws
            .until(Duration::from_secs(15), voided)
            .await
            .is_some()
    );

    // Capture after void: refused; nothing moves.
    let (status, _, body) = stack
        .post_keyed(&alice, &format!("/v1/holds/{id}/capture"), "cap-v", None)
        .await;
    assert_eq!(status, 202, "{body}");
    let action = body["action"]["id"].as_str().unwrap().to_owned();
    let refused = decided_action(&stack, &alice, &id, &action).await;
    assert_eq!(refused["reason"], "hold_not_pending");
    assert_eq!(stack.balance(&bob, BOB_EUR).await, "2500.00");
    assert_eq!(stack.balance(&alice, ALICE_EUR).await, "10000.00");
    assert_invariants(&stack).await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_hold_is_released_exactly_once() {
    let stack = Stack::start().await;
    let alice = stack.login("alice").await;

    let id = pending_hold(&stack, &alice, "hold-e", "70.00", 1).await;
    let hold = stack
        .wait_for(&alice, &format!("/v1/holds/{id}"), |h| {
            h["status"] != "pending"
        })
        .await;
    assert_eq!(hold["status"], "expired", "{hold}");
    let a = account(&stack, &alice, ALICE_EUR).await;
    assert_eq!(
        (
            a["balance"].as_str(),
            a["available"].as_str(),
            a["held"].as_str()
        ),
        (Some("10000.00"), Some("10000.00"), Some("0.00"))
    );
    // Later scans find nothing to expire; a capture is refused.
    let (status, _, body) = stack
        .post_keyed(&alice, &format!("/v1/holds/{id}/capture"), "late", None)
        .await;
    assert_eq!(status, 202, "{body}");
    let action = body["action"]["id"].as_str().unwrap().to_owned();
    let refused = decided_action(&stack, &alice, &id, &action).await;
    assert_eq!(refused["reason"], "hold_not_pending");
    let moved: i64 = sqlx::query_scalar("SELECT count(*) FROM transfers WHERE hold_id = $1::uuid")
        .bind(&id)
        .fetch_one(&stack.db.pool)
        .await
        .unwrap();
    assert_eq!(moved, 0);
    let a = account(&stack, &alice, ALICE_EUR).await;
    assert_eq!(a["held"], "0.00");
    assert_invariants(&stack).await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_captures_voids_and_expiry_end_in_one_final_state() {
    let stack = Stack::start().await;
    let alice = stack.login("alice").await;
    for round in 0..3 {
        let id = pending_hold(&stack, &alice, &format!("race-{round}"), "30.00", 1).await;
        let requests = (0..6).map(|i| {
            let stack = &stack;
            let alice = &alice;
            let id = &id;
            async move {
                let (op, body) = if i % 2 == 0 {
                    ("capture", Some(json!({"amount": "10.00"})))
                } else {
                    ("void", None)
                };
                let path = format!("/v1/holds/{id}/{op}");
                let key = format!("race-{round}-{i}");
                stack.post_keyed(alice, &path, &key, body.as_ref()).await.0
            }
        });
        for status in futures::future::join_all(requests).await {
            assert_eq!(status, 202);
        }
        let hold = stack
            .wait_for(&alice, &format!("/v1/holds/{id}"), |h| {
                h["status"] != "pending" && h["actions"].as_array().is_some_and(|a| a.len() == 6)
            })
            .await;
        let applied = hold["actions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["status"] == "applied")
            .count();
        // Exactly one of them won, or the expiry did and none applied.
        match hold["status"].as_str() {
            Some("captured" | "voided") => assert_eq!(applied, 1, "{hold}"),
            Some("expired") => assert_eq!(applied, 0, "{hold}"),
            other => panic!("unexpected {other:?}: {hold}"),
        }
    }
    let a = account(&stack, &alice, ALICE_EUR).await;
    assert_eq!(a["held"], "0.00");
    assert_invariants(&stack).await;
    stack.stop().await;
}
