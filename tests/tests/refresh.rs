//! The refresh flow against the real services: rotation, reuse detection
//! (the whole login revoked), expiry, logout, and the audit records.

use std::time::Duration;

use serde_json::{Value, json};
use system_tests::*;

/// POSTs `body` to `path` (with `token` if not empty): status and body.
async fn post(stack: &Stack, path: &str, token: &str, body: Value) -> (u16, Value) {
    let mut req = stack.http.post(format!("{}{path}", stack.api)).json(&body);
    if !token.is_empty() {
        req = req.bearer_auth(token);
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    if status != 204 {
        assert!(
            r.headers()["content-type"]
                .to_str()
                .is_ok_and(|ct| ct.ends_with("json")),
            "{path}: JSON"
        );
    }
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Logs in; returns the whole token response.
async fn login(stack: &Stack, user: &str) -> Value {
    stack.login_response(user).await.body
}

async fn refresh(stack: &Stack, refresh_token: &Value) -> (u16, Value) {
    post(
        stack,
        "/v1/auth/refresh",
        "",
        json!({ "refresh_token": refresh_token }),
    )
    .await
}

fn assert_problem_401(body: &Value) {
    assert_eq!(body["status"], 401, "{body}");
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("/unauthorized")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refresh_rotates_and_reuse_revokes_the_whole_login() {
    let stack = Stack::start().await;
    let first = login(&stack, "alice").await;
    // The fields the web page and bankctl read are unchanged; two are new.
    assert_eq!(first["token_type"], "Bearer");
    assert_eq!(first["expires_in"], 900);
    assert!(first["access_token"].is_string());
    let expires = first["refresh_expires_in"]
        .as_u64()
        .expect("refresh_expires_in");
    assert!((8 * 3600 - 60..=8 * 3600).contains(&expires), "{expires}");
    let token = first["refresh_token"].as_str().expect("refresh_token");
    assert_eq!(token.len(), 43, "256 bits, base64url");
    // Only the hash is stored.
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM refresh_tokens WHERE hash = $1")
        .bind(token.as_bytes())
        .fetch_one(&stack.db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "the token itself is never stored");

    // Rotation: a new pair; the new access token works; the login's expiry is kept.
    let (status, second) = refresh(&stack, &first["refresh_token"]).await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_ne!(second["access_token"], first["access_token"]);
    assert!(second["refresh_expires_in"].as_u64().unwrap() <= expires);
    let access = second["access_token"].as_str().unwrap();
    let (status, me) = stack.get(access, "/v1/me").await;
    assert_eq!((status, me["username"].as_str()), (200, Some("alice")));
    let (status, third) = refresh(&stack, &second["refresh_token"]).await;
    assert_eq!(status, 200, "{third}");

    // Another login of alice (another device) is a family of its own.
    let other_device = login(&stack, "alice").await;

    // The first token again: a reuse. 401, and the newest token of that
    // login is revoked too (the thief's and the owner's alike).
    let (status, body) = refresh(&stack, &first["refresh_token"]).await;
    assert_eq!(status, 401);
    assert_problem_401(&body);
    let (status, body) = refresh(&stack, &third["refresh_token"]).await;
    assert_eq!(status, 401, "the family is revoked: {body}");
    assert_problem_401(&body);
    // The other device is untouched.
    let (status, _) = refresh(&stack, &other_device["refresh_token"]).await;
    assert_eq!(status, 200);

    // Garbage, an unknown token and a missing field.
    let (status, body) = refresh(&stack, &json!("not-a-token")).await;
    assert_eq!(status, 401);
    assert_problem_401(&body);
    let (status, body) = post(&stack, "/v1/auth/refresh", "", json!({})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "refresh_token");

    let refreshes = stack.audit_rows("token.refresh", 6).await;
    let outcomes: Vec<&str> = refreshes
        .iter()
        .map(|r| r.record.outcome.as_str())
        .collect();
    for outcome in ["success", "reused", "revoked", "unknown"] {
        assert!(outcomes.contains(&outcome), "{outcome} in {outcomes:?}");
    }
    let reused = refreshes
        .iter()
        .find(|r| r.record.outcome == "reused")
        .unwrap();
    let login_row = stack.audit_rows("login", 1).await;
    assert_eq!(
        reused.record.detail["family"], login_row[0].record.detail["family"],
        "the reuse names the login it revoked"
    );
    assert_eq!(reused.record.ip.as_deref(), Some("127.0.0.1"));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_refresh_tokens_are_refused() {
    let stack = Stack::start_with(|c| c.refresh_ttl = Duration::from_secs(2)).await;
    let tokens = login(&stack, "bob").await;
    assert!(tokens["refresh_expires_in"].as_u64().unwrap() <= 2);
    // Still valid: rotates, and the new token inherits the login's expiry.
    let (status, next) = refresh(&stack, &tokens["refresh_token"]).await;
    assert_eq!(status, 200, "{next}");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let (status, body) = refresh(&stack, &next["refresh_token"]).await;
    assert_eq!(status, 401, "past the login's lifetime: {body}");
    assert_problem_401(&body);
    let rows = stack.audit_rows("token.refresh", 2).await;
    assert!(rows.iter().any(|r| r.record.outcome == "expired"));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logout_revokes_the_login() {
    let stack = Stack::start().await;
    let alice = login(&stack, "alice").await;
    let bob = login(&stack, "bob").await;
    let access = alice["access_token"].as_str().unwrap();
    let (status, rotated) = refresh(&stack, &alice["refresh_token"]).await;
    assert_eq!(status, 200);

    // A bearer token is required.
    let body = json!({"refresh_token": rotated["refresh_token"]});
    let (status, problem) = post(&stack, "/v1/auth/logout", "", body.clone()).await;
    assert_eq!(status, 401);
    assert_problem_401(&problem);
    // Bob's refresh token in alice's logout: nothing happens to bob's login.
    let (status, _) = post(
        &stack,
        "/v1/auth/logout",
        access,
        json!({"refresh_token": bob["refresh_token"]}),
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(refresh(&stack, &bob["refresh_token"]).await.0, 200);

    let (status, _) = post(&stack, "/v1/auth/logout", access, body.clone()).await;
    assert_eq!(status, 204);
    let (status, problem) = refresh(&stack, &rotated["refresh_token"]).await;
    assert_eq!(status, 401, "logged out: {problem}");
    assert_problem_401(&problem);
    // The session is over: its access token cannot even log out again.
    assert_eq!(post(&stack, "/v1/auth/logout", access, body).await.0, 401);
    let rows = stack.audit_rows("logout", 2).await;
    let revoked = rows
        .iter()
        .filter(|r| r.record.outcome == "success")
        .count();
    assert_eq!(revoked, 1, "alice's logout; bob's token was not hers");
    assert!(rows.iter().any(|r| r.record.outcome == "unknown"));
    stack.stop().await;
}
