//! The core pipeline end to end: HTTP → JetStream → ledger → Redis → WebSocket.

use std::time::Duration;

use serde_json::{Value, json};
use system_tests::*;

fn eur(from: &str, to: &str, amount: &str) -> Value {
    json!({"from_account": from, "to_account": to, "amount": amount, "currency": "EUR", "reference": "test"})
}

async fn entries_of(stack: &Stack, id: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM entries WHERE transfer_id = $1::uuid")
        .bind(id)
        .fetch_one(&stack.db.pool)
        .await
        .unwrap()
}

async fn assert_invariants(stack: &Stack) {
    let report = ledger::invariants::check(&stack.db.pool).await.unwrap();
    assert!(report.holds(), "{:?}", report.violations());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transfer_is_accepted_committed_and_pushed_live() {
    let stack = Stack::start().await;
    let alice = stack.login("alice").await;
    let bob = stack.login("bob").await;
    let mut alice_ws = stack.connect_ws(&alice, None).await;
    let mut bob_ws = stack.connect_ws(&bob, None).await;
    let ready = alice_ws.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(ready["type"], "ready");
    assert_eq!(
        bob_ws.next(Duration::from_secs(5)).await.unwrap()["type"],
        "ready"
    );

    let (status, headers, body) = stack
        .transfer(&alice, "e2e-1", &eur(ALICE_EUR, BOB_EUR, "12.50"))
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "pending");
    assert_eq!(body["amount"], "12.50");
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(headers["location"], format!("/v1/transfers/{id}").as_str());

    let is_commit =
        |v: &Value| v["type"] == "transfer.updated" && v["transfer"]["id"] == id.as_str();
    let pushed = alice_ws
        .until(Duration::from_secs(15), is_commit)
        .await
        .expect("alice sees the commit");
    assert_eq!(pushed["transfer"]["status"], "committed");
    assert!(pushed["id"].as_str().unwrap().contains('.'));
    let to_bob = bob_ws
        .until(Duration::from_secs(15), is_commit)
        .await
        .expect("bob sees it too");
    assert_eq!(to_bob["transfer"]["status"], "committed");
    let balance = alice_ws
        .until(Duration::from_secs(5), |v| {
            v["type"] == "account.updated" && v["account"]["id"] == ALICE_EUR
        })
        .await
        .expect("alice's balance pushed");
    assert_eq!(balance["account"]["balance"], "9987.50");

    assert_eq!(stack.balance(&alice, ALICE_EUR).await, "9987.50");
    assert_eq!(stack.balance(&bob, BOB_EUR).await, "2512.50");
    assert_eq!(entries_of(&stack, &id).await, 2);
    let (status, view) = stack.get(&bob, &format!("/v1/transfers/{id}")).await;
    assert_eq!((status, view["status"].as_str()), (200, Some("committed")));
    let (_, list) = stack.get(&bob, "/v1/transfers?limit=10").await;
    assert_eq!(list["items"][0]["id"], id.as_str());
    let (_, page) = stack
        .get(&alice, &format!("/v1/accounts/{ALICE_EUR}/entries?limit=1"))
        .await;
    assert_eq!(page["items"][0]["amount"], "-12.50");
    assert!(page["next_cursor"].is_string());
    // The next page goes on where this one ended (the older funding entry);
    // a cursor the API never gave is refused.
    let cursor = page["next_cursor"].as_str().unwrap();
    let (status, older) = stack
        .get(
            &alice,
            &format!("/v1/accounts/{ALICE_EUR}/entries?limit=1&cursor={cursor}"),
        )
        .await;
    assert_eq!(status, 200);
    assert!(older["items"][0]["id"].as_i64() < page["items"][0]["id"].as_i64());
    assert_eq!(older["items"][0]["amount"], "10000.00");
    let (status, _) = stack
        .get(
            &alice,
            &format!("/v1/accounts/{ALICE_EUR}/entries?cursor=12"),
        )
        .await;
    assert_eq!(status, 422);
    // The processor put the results straight into Redis: nothing went
    // through the results stream.
    assert_eq!(stack.nats.results_published().await, 0);
    assert_invariants(&stack).await;
    alice_ws.close().await;
    bob_ws.close().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn results_redis_did_not_take_directly_go_through_the_results_stream() {
    // The processor's Redis answers every call 200 ms late and its direct
    // push gives up after 10 ms (it cannot even connect), as with Redis
    // slow: every result batch goes onto the results stream, and the relay,
    // which waits for Redis, takes it from there. (A timeout of zero would
    // not do: tokio's timer fires on the next millisecond tick, and a local
    // Redis often answers first; CI saw that once.)
    let slow_redis = testkit::slow_redis(Duration::from_millis(200)).await;
    let stack = Stack::start_processor_with(|p| {
        p.redis_url = slow_redis;
        p.relay_timeout = Duration::from_millis(10);
    })
    .await;
    let alice = stack.login("alice").await;
    let mut ws = stack.connect_ws(&alice, None).await;
    assert_eq!(
        ws.next(Duration::from_secs(5)).await.unwrap()["type"],
        "ready"
    );
    let (status, _, body) = stack
        .transfer(&alice, "stream-1", &eur(ALICE_EUR, BOB_EUR, "1.00"))
        .await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let pushed = ws
        .until(Duration::from_secs(15), |v| {
            v["type"] == "transfer.updated" && v["transfer"]["id"] == id.as_str()
        })
        .await
        .expect("alice sees the commit through the relay");
    assert_eq!(pushed["transfer"]["status"], "committed");
    testkit::eventually(
        Duration::from_secs(15),
        "the relay to take the batch",
        || async { (stack.nats.results_relayed().await >= 1).then_some(()) },
    )
    .await;
    assert!(stack.nats.results_published().await >= 1);
    assert_invariants(&stack).await;
    ws.close().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_move_money_once_and_a_changed_body_is_refused() {
    let stack = Stack::start().await;
    let alice = stack.login("alice").await;
    let body = eur(ALICE_EUR, BOB_EUR, "100.00");
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (stack, alice, body) = (&stack, alice.clone(), body.clone());
        tasks.push(async move { stack.transfer(&alice, "same-key", &body).await });
    }
    let answers = futures::future::join_all(tasks).await;
    let ids: std::collections::HashSet<String> = answers
        .iter()
        .map(|(status, _, body)| {
            assert_eq!(*status, 202, "{body}");
            body["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "every retry names the same transfer");
    let replayed = answers
        .iter()
        .filter(|(_, h, _)| h.get("idempotent-replayed").is_some())
        .count();
    assert_eq!(replayed, 9, "one original, nine replays");
    let id = ids.into_iter().next().unwrap();
    let done = stack.final_state(&alice, &id).await;
    assert_eq!(done["status"], "committed");

    // After it was applied: a replay answers from the ledger.
    let (status, headers, again) = stack.transfer(&alice, "same-key", &body).await;
    assert_eq!((status, again["status"].as_str()), (202, Some("committed")));
    assert_eq!(headers["idempotent-replayed"], "true");

    // Same key, different amount: refused, nothing moves.
    let published = stack.nats.transfers_published().await;
    let (status, _, problem) = stack
        .transfer(&alice, "same-key", &eur(ALICE_EUR, BOB_EUR, "1.00"))
        .await;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .ends_with("idempotency-key-reused")
    );
    assert_eq!(stack.nats.transfers_published().await, published);

    assert_eq!(entries_of(&stack, &id).await, 2);
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM transfers WHERE idempotency_key = 'same-key'")
            .fetch_one(&stack.db.pool)
            .await
            .unwrap();
    assert_eq!(count, 1);
    assert_eq!(stack.balance(&alice, ALICE_EUR).await, "9900.00");
    assert_invariants(&stack).await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_gets_a_problem_and_publishes_nothing() {
    let stack = Stack::start().await;
    let alice = stack.login("alice").await;
    let published = stack.nats.transfers_published().await;
    let long_key = "k".repeat(300);
    let forged = {
        let other = shared::auth::JwtKeys::new(&[(
            "k1".into(),
            "another-secret-another-secret-0123456789".into(),
        )])
        .unwrap();
        other
            .issue(uuid::Uuid::new_v4(), shared::auth::Role::Customer)
            .unwrap()
            .0
    };
    let ok = eur(ALICE_EUR, BOB_EUR, "1.00");
    // (token, key, raw body, expected status, what)
    let cases: Vec<(&str, &str, String, u16, &str)> = vec![
        (&alice, "b1", "{not json".into(), 400, "malformed JSON"),
        (&alice, "b2", eur(ALICE_EUR, BOB_EUR, "0").to_string(), 422, "zero amount"),
        (&alice, "b3", eur(ALICE_EUR, BOB_EUR, "-1").to_string(), 422, "negative amount"),
        (&alice, "b4", eur(ALICE_EUR, BOB_EUR, "1.001").to_string(), 422, "three decimals in EUR"),
        (&alice, "b5", eur(ALICE_EUR, BOB_EUR, "abc").to_string(), 422, "not a number"),
        (&alice, "b6", json!({"from_account": ALICE_EUR, "to_account": BOB_EUR, "amount": 5, "currency": "EUR"}).to_string(), 422, "JSON number amount"),
        (&alice, "b7", json!({"from_account": ALICE_EUR, "to_account": BOB_EUR, "amount": "1.00", "currency": "XYZ"}).to_string(), 422, "unknown currency"),
        (&alice, "b8", eur(ALICE_EUR, ALICE_EUR, "1.00").to_string(), 422, "same account"),
        (&alice, "", ok.to_string(), 422, "missing key"),
        (&alice, &long_key, ok.to_string(), 422, "300-char key"),
        ("", "b9", ok.to_string(), 401, "no token"),
        ("not.a.jwt", "b10", ok.to_string(), 401, "garbage token"),
        (&forged, "b11", ok.to_string(), 401, "forged token"),
        (&alice, "b12", eur(BOB_EUR, ALICE_EUR, "1.00").to_string(), 403, "someone else's account"),
        (&alice, "b13", eur(ALICE_EUR, BOB_USD, "1.00").to_string(), 422, "currency mismatch"),
        (&alice, "b14", eur(ALICE_EUR, "00000000-0000-4000-8000-000000000000", "1.00").to_string(), 422, "unknown destination"),
        (&alice, "b15", eur(ALICE_EUR, BOB_EUR, "1000000001").to_string(), 422, "above the maximum"),
    ];
    for (token, key, body, expected, what) in cases {
        let mut req = stack
            .http
            .post(format!("{}/v1/transfers", stack.api))
            .header("content-type", "application/json")
            .body(body);
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        if !key.is_empty() {
            req = req.header("Idempotency-Key", key);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), expected, "{what}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{what}"
        );
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["status"], expected, "{what}: {problem}");
        assert!(
            problem["title"].is_string() && problem["detail"].is_string(),
            "{what}: {problem}"
        );
    }
    // An expired token.
    let expired = {
        let claims = shared::auth::Claims {
            iss: shared::auth::TOKEN_ISSUER.into(),
            aud: shared::auth::TOKEN_AUDIENCE.into(),
            sub: uuid::Uuid::new_v4(),
            role: shared::auth::Role::Customer,
            exp: shared::auth::unix_now() - 120,
            nbf: shared::auth::unix_now() - 1000,
            iat: shared::auth::unix_now() - 1000,
            jti: uuid::Uuid::new_v4(),
            sid: uuid::Uuid::now_v7(),
        };
        let mut header = jsonwebtoken_header();
        header.kid = Some("k1".into());
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()).unwrap(),
        )
        .unwrap()
    };
    let (status, _, _) = stack.transfer(&expired, "b16", &ok).await;
    assert_eq!(status, 401, "expired token");
    // The ops role reads but never moves money.
    let ops = stack.login("ops").await;
    let (status, _, _) = stack.transfer(&ops, "b17", &ok).await;
    assert_eq!(status, 403, "ops moving money");

    assert_eq!(
        stack.nats.transfers_published().await,
        published,
        "nothing was published"
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM transfers WHERE owner_id IN (SELECT id FROM users WHERE username <> 'bank')")
        .fetch_one(&stack.db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "no trace in the ledger");
    stack.stop().await;
}

fn jsonwebtoken_header() -> jsonwebtoken::Header {
    jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rejections_are_final_states_with_a_reason() {
    let stack = Stack::start().await;
    let bob = stack.login("bob").await;
    let (status, _, body) = stack
        .transfer(&bob, "too-much", &eur(BOB_EUR, ALICE_EUR, "2500.01"))
        .await;
    assert_eq!(status, 202, "{body}");
    let refused = body["id"].as_str().unwrap().to_owned();
    let done = stack.final_state(&bob, &refused).await;
    assert_eq!(done["status"], "rejected");
    assert_eq!(done["reason"], "insufficient_funds");
    assert_eq!(stack.balance(&bob, BOB_EUR).await, "2500.00");
    // Exactly the balance is fine.
    let (_, _, body) = stack
        .transfer(&bob, "all-of-it", &eur(BOB_EUR, ALICE_EUR, "2500.00"))
        .await;
    let paid = body["id"].as_str().unwrap().to_owned();
    let done = stack.final_state(&bob, &paid).await;
    assert_eq!(done["status"], "committed");
    assert_eq!(stack.balance(&bob, BOB_EUR).await, "0.00");
    // The payee sees the money that arrived, not the refused attempt: that
    // bob lacked the funds is bob's business (nor is alice notified of it).
    let alice = stack.login("alice").await;
    let (status, _) = stack.get(&alice, &format!("/v1/transfers/{paid}")).await;
    assert_eq!(status, 200);
    let (status, body) = stack.get(&alice, &format!("/v1/transfers/{refused}")).await;
    assert_eq!(status, 404, "{body}");
    let (status, page) = stack.get(&alice, "/v1/transfers?limit=50").await;
    assert_eq!(status, 200);
    let listed = item_ids(&page);
    assert!(listed.contains(&paid), "{page}");
    assert!(!listed.contains(&refused), "{page}");
    // Ops see both.
    let ops = stack.login("ops").await;
    assert_eq!(
        stack.get(&ops, &format!("/v1/transfers/{refused}")).await.0,
        200
    );
    assert_invariants(&stack).await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn customers_see_only_their_own_data() {
    let stack = Stack::start().await;
    let alice = stack.login("alice").await;
    let (status, accounts) = stack.get(&alice, "/v1/accounts").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = accounts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![ALICE_EUR, ALICE_USD]);
    assert_eq!(accounts[0]["balance"], "10000.00");
    assert_eq!(
        stack
            .get(&alice, &format!("/v1/accounts/{BOB_EUR}"))
            .await
            .0,
        404
    );
    assert_eq!(
        stack
            .get(&alice, &format!("/v1/accounts/{BOB_EUR}/entries"))
            .await
            .0,
        404
    );
    assert_eq!(stack.get(&alice, "/v1/accounts/not-a-uuid").await.0, 404);
    assert_eq!(stack.get(&alice, "/v1/transfers?limit=0").await.0, 422);
    assert_eq!(stack.get(&alice, "/v1/transfers?cursor=zzz").await.0, 422);
    let ops = stack.login("ops").await;
    assert_eq!(
        stack.get(&ops, &format!("/v1/accounts/{BOB_EUR}")).await.0,
        200
    );
    let (status, me) = stack.get(&alice, "/v1/me").await;
    assert_eq!(
        (status, me["username"].as_str(), me["role"].as_str()),
        (200, Some("alice"), Some("customer"))
    );
    // Unknown user and wrong password: the same 401.
    for (user, password) in [("alice", "wrong"), ("nobody", "alice-dev-password")] {
        let r = stack
            .http
            .post(format!("{}/v1/auth/login", stack.api))
            .json(&json!({"username": user, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["detail"], "unknown user or wrong password");
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn websocket_replays_missed_events_and_asks_for_resync_when_it_cannot() {
    let stack = Stack::start().await;
    let alice = stack.login("alice").await;
    let mut ws = stack.connect_ws(&alice, None).await;
    let ready = ws.next(Duration::from_secs(5)).await.unwrap();
    let since = ready["id"].as_str().unwrap().to_owned();
    ws.close().await;

    let mut ids = Vec::new();
    for i in 0..3 {
        let (_, _, body) = stack
            .transfer(
                &alice,
                &format!("missed-{i}"),
                &eur(ALICE_EUR, BOB_EUR, "1.00"),
            )
            .await;
        let id = body["id"].as_str().unwrap().to_owned();
        stack.final_state(&alice, &id).await;
        ids.push(id);
    }
    // Events reach Redis shortly after the commit.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut ws = stack.connect_ws(&alice, Some(&since)).await;
    let mut seen = Vec::new();
    loop {
        let v = ws
            .next(Duration::from_secs(5))
            .await
            .expect("replay then ready");
        if v["type"] == "ready" {
            break;
        }
        if v["type"] == "transfer.updated" {
            seen.push(v["transfer"]["id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(seen, ids, "every missed transfer, in order");
    ws.close().await;

    // An id from another epoch (Redis lost its data): resync.
    let mut ws = stack.connect_ws(&alice, Some("ffffffff.1")).await;
    assert_eq!(
        ws.next(Duration::from_secs(5)).await.unwrap()["type"],
        "resync"
    );
    ws.close().await;

    // A forged token cannot connect.
    let r = stack
        .http
        .get(format!(
            "{}?access_token=bad",
            stack.ws.replace("ws://", "http://")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    stack.stop().await;
}
