//! Revocable sessions against the real services: logout, a password change
//! and an administrator disabling a user end access tokens at once, at the
//! gateway and at the notifier (open WebSockets closed with 4003).

use std::time::Duration;

use serde_json::{Value, json};
use system_tests::*;

/// How long a revocation made elsewhere (bankadmin) may take to reach a
/// replica: it is pushed over Redis pub/sub, within milliseconds.
const PROPAGATION: Duration = Duration::from_secs(5);
/// How long an open socket may take to be closed.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

async fn post(stack: &Stack, path: &str, token: &str, body: Value) -> (u16, Value) {
    let r = stack
        .http
        .post(format!("{}{path}", stack.api))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A socket that got its `ready` message.
async fn ready_ws(stack: &Stack, token: &str) -> Ws {
    let mut ws = stack.connect_ws(token, None).await;
    ws.until(Duration::from_secs(10), |v| v["type"] == "ready")
        .await
        .expect("ready");
    ws
}

fn session(login: &testkit::Login) -> (String, Value) {
    (
        login.access_token.clone(),
        login.body["refresh_token"].clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logout_ends_the_session_at_gateway_and_notifier() {
    let stack = Stack::start().await;
    let (access, refresh) = session(&stack.login_response("alice").await);
    let (other, _) = session(&stack.login_response("alice").await);
    let mut ws = ready_ws(&stack, &access).await;
    let mut other_ws = ready_ws(&stack, &other).await;
    assert_eq!(stack.get(&access, "/v1/me").await.0, 200);

    let (status, _) = post(
        &stack,
        "/v1/auth/logout",
        &access,
        json!({"refresh_token": refresh}),
    )
    .await;
    assert_eq!(status, 204);
    // The very next request is refused, money-moving or not.
    let (status, body) = stack.get(&access, "/v1/me").await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("session"),
        "{body}"
    );
    let (status, _, _) = stack
        .transfer(
            &access,
            "after-logout",
            &json!({"from_account": ALICE_EUR, "to_account": BOB_EUR, "amount": "1.00", "currency": "EUR"}),
        )
        .await;
    assert_eq!(status, 401);
    // The open socket of that session is closed, a new one refused.
    let (code, reason) = ws.closed_with(CLOSE_WAIT).await.expect("closed");
    assert_eq!((code, reason.as_str()), (4003, "session revoked"));
    assert_eq!(stack.try_connect_ws(&access).await.err(), Some(401));
    // The user's other session goes on.
    assert_eq!(stack.get(&other, "/v1/me").await.0, 200);
    assert!(
        other_ws
            .closed_with(Duration::from_millis(500))
            .await
            .is_none(),
        "another session's socket stays open"
    );
    let rows = stack.audit_rows("logout", 1).await;
    assert_eq!(rows[0].record.outcome, "success");
    assert!(rows[0].record.detail["sid"].is_string());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_password_change_ends_every_other_session_and_the_old_password() {
    let stack = Stack::start().await;
    let (mine, _) = session(&stack.login_response("bob").await);
    let (elsewhere, elsewhere_refresh) = session(&stack.login_response("bob").await);
    let mut ws = ready_ws(&stack, &elsewhere).await;
    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});

    // Wrong current password: 401, nothing changes.
    let (status, body) = post(
        &stack,
        "/v1/auth/password",
        &mine,
        change("not-bobs-password", "a much better secret"),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    // Rules: long enough, not the username, not the same.
    for weak in ["short", "bob-bob-bob-bob-bob", "bob-dev-password"] {
        let (status, body) = post(
            &stack,
            "/v1/auth/password",
            &mine,
            change("bob-dev-password", weak),
        )
        .await;
        assert_eq!(status, 422, "{weak}: {body}");
        assert_eq!(body["errors"][0]["field"], "new_password");
    }
    assert_eq!(stack.get(&elsewhere, "/v1/me").await.0, 200);

    let (status, fresh) = post(
        &stack,
        "/v1/auth/password",
        &mine,
        change("bob-dev-password", "a much better secret"),
    )
    .await;
    assert_eq!(status, 200, "{fresh}");
    // Every session before the change is over, on every channel.
    assert_eq!(stack.get(&mine, "/v1/me").await.0, 401);
    assert_eq!(stack.get(&elsewhere, "/v1/me").await.0, 401);
    let (status, _) = post(
        &stack,
        "/v1/auth/refresh",
        "",
        json!({"refresh_token": elsewhere_refresh}),
    )
    .await;
    assert_eq!(status, 401);
    let (code, _) = ws.closed_with(CLOSE_WAIT).await.expect("closed");
    assert_eq!(code, 4003);
    // The new session answered by the change works.
    let new_access = fresh["access_token"].as_str().unwrap();
    assert_eq!(stack.get(new_access, "/v1/me").await.0, 200);
    let mut new_ws = ready_ws(&stack, new_access).await;
    // Only the new password logs in.
    assert_eq!(stack.try_login("bob", "bob-dev-password").await.0, 401);
    let (status, _, login) = stack.try_login("bob", "a much better secret").await;
    assert_eq!(status, 200, "{login}");
    assert!(
        new_ws
            .closed_with(Duration::from_millis(300))
            .await
            .is_none()
    );
    let rows = stack.audit_rows("password.change", 2).await;
    let outcomes: Vec<&str> = rows.iter().map(|r| r.record.outcome.as_str()).collect();
    assert!(
        outcomes.contains(&"failure") && outcomes.contains(&"success"),
        "{outcomes:?}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_disabled_user_gets_401_everywhere_and_cannot_log_in() {
    let stack = Stack::start().await;
    let (access, refresh) = session(&stack.login_response("bob").await);
    let mut ws = ready_ws(&stack, &access).await;
    let redis_url = testkit::redis_url();
    let disable = |disabled: bool| {
        admin::set_user_disabled(
            &stack.db.pool,
            "bob",
            disabled,
            &redis_url,
            &stack.redis.prefix,
        )
    };
    disable(true).await.expect("disable bob");
    // Revoked by another process: it reaches the gateway over pub/sub.
    testkit::eventually(PROPAGATION, "bob's token refused", || async {
        (stack.get(&access, "/v1/me").await.0 == 401).then_some(())
    })
    .await;
    let (code, _) = ws.closed_with(CLOSE_WAIT).await.expect("closed");
    assert_eq!(code, 4003);
    assert_eq!(stack.try_connect_ws(&access).await.err(), Some(401));
    let (status, _, body) = stack.try_login("bob", "bob-dev-password").await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = post(
        &stack,
        "/v1/auth/refresh",
        "",
        json!({"refresh_token": refresh}),
    )
    .await;
    assert_eq!(status, 401);
    // Alice is not affected.
    let alice = stack.login("alice").await;
    assert_eq!(stack.get(&alice, "/v1/me").await.0, 200);
    assert_eq!(
        stack.audit_rows("admin.disable_user", 1).await[0]
            .record
            .outcome,
        "ok"
    );
    testkit::eventually(PROPAGATION, "the refused login audited", || async {
        let rows = ledger::audit::by_action(&stack.db.pool, "login")
            .await
            .ok()?;
        rows.iter()
            .any(|r| r.record.outcome == "disabled")
            .then_some(())
    })
    .await;
    // Enabled again: a new login works, the old token stays revoked.
    disable(false).await.expect("enable bob");
    let again = stack.login("bob").await;
    assert_eq!(stack.get(&again, "/v1/me").await.0, 200);
    assert_eq!(stack.get(&access, "/v1/me").await.0, 401);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_the_revocation_list_money_stops_and_reads_go_on() {
    let stack = Stack::start_with(|c| {
        // Nothing listens there: the gateway cannot know of revocations.
        c.redis_url = "redis://127.0.0.1:1".into();
    })
    .await;
    let alice = stack.login("alice").await;
    assert_eq!(stack.get(&alice, "/v1/me").await.0, 200);
    let (status, headers, body) = stack
        .transfer(
            &alice,
            "no-redis",
            &json!({"from_account": ALICE_EUR, "to_account": BOB_EUR, "amount": "1.00", "currency": "EUR"}),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert!(headers.contains_key("retry-after"));
    stack.stop().await;
}
