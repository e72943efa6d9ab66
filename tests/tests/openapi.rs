//! `GET /openapi.json` on a running gateway: public, with the security
//! headers, OpenAPI 3.1, and every operation it names is really served
//! (the gateway's unit tests compare it with the route table; this probes
//! the live router), answering only statuses the document lists.

use serde_json::{Value, json};
use system_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_document_is_public_and_describes_the_live_router() {
    let stack = Stack::start().await;
    let r = stack
        .http
        .get(format!("{}/openapi.json", stack.api))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "no token needed");
    let headers = r.headers().clone();
    assert_eq!(headers["content-type"], "application/json");
    for h in [
        "content-security-policy",
        "strict-transport-security",
        "x-content-type-options",
        "x-frame-options",
        "referrer-policy",
        "x-request-id",
    ] {
        assert!(headers.contains_key(h), "{h}");
    }
    assert_eq!(headers["cache-control"], "no-store");
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");

    // Every documented operation, called without credentials and with an
    // empty JSON body, reaches a handler (never the router's fallback or a
    // 405) and answers a status the document lists for it.
    let alice = stack.login("alice").await;
    let mut probed = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let url = format!(
                "{}{}",
                stack.api,
                path.replace("{id}", "00000000-0000-4000-8000-000000000000")
            );
            for token in ["", alice.as_str()] {
                let mut req = match method.as_str() {
                    "get" => stack.http.get(&url),
                    "post" => stack.http.post(&url).json(&json!({})),
                    other => panic!("unexpected method {other}"),
                };
                if !token.is_empty() {
                    req = req.bearer_auth(token);
                }
                let r = req.send().await.unwrap();
                let status = r.status().as_u16();
                let content_type = r
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                assert!(
                    op["responses"].get(status.to_string()).is_some(),
                    "{method} {path}: {status} is not documented"
                );
                assert_ne!(status, 405, "{method} {path}");
                if status >= 400 {
                    assert_eq!(content_type, "application/problem+json", "{method} {path}");
                    assert_ne!(
                        body["detail"], "no such endpoint; see README for the API",
                        "{method} {path} is not routed"
                    );
                }
                probed += 1;
            }
        }
    }
    assert!(probed >= 40, "{probed}");
    // What the fuzzer found, kept fixed: a username PostgreSQL cannot hold
    // (a NUL byte) is an unknown user, not a 500; a path segment that is
    // not UTF-8 names nothing (a problem+json 404, not axum's plain 400).
    let (status, _, body) = stack.try_login("alice\u{0}", "alice-dev-password").await;
    assert_eq!(status, 401, "{body}");
    let r = stack
        .http
        .get(format!("{}/v1/transfers/%FF%FE", stack.api))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");

    // The probe can tell: an endpoint that does not exist is the fallback.
    let (status, body) = stack.get(&alice, "/v1/nothing-here").await;
    assert_eq!(status, 404);
    assert_eq!(body["detail"], "no such endpoint; see README for the API");
    stack.stop().await;
}
