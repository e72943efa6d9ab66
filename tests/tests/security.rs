//! Rate limits, login lockout and the audit trail, against the real services.

use std::time::Duration;

use gateway::config::{LoginLockout, RateLimits};
use serde_json::{Value, json};
use system_tests::*;

const BATCH_EUR: &str = "ba7c0000-0000-4000-8000-000000000001";

fn retry_after(headers: &reqwest::header::HeaderMap) -> u64 {
    headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After header in seconds")
}

/// GETs `path` (with `token` if not empty) until a 429 comes back; returns
/// how many were answered before it and the 429's Retry-After.
async fn until_throttled(stack: &Stack, token: &str, path: &str) -> (usize, u64) {
    for sent in 0..60 {
        let mut req = stack.http.get(format!("{}{path}", stack.api));
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        let r = req.send().await.unwrap();
        if r.status() == 429 {
            let wait = retry_after(r.headers());
            assert_eq!(r.headers()["content-type"], "application/problem+json");
            let p: Value = r.json().await.unwrap();
            assert_eq!(p["status"], 429);
            assert!(
                p["type"].as_str().unwrap().ends_with("/rate-limited"),
                "{p}"
            );
            return (sent, wait);
        }
        assert_eq!(r.status(), 200, "{path}");
    }
    panic!("{path} was never throttled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn per_user_rate_limit_trips_with_retry_after_and_recovers() {
    let window = Duration::from_secs(2);
    let stack = Stack::start_with(|c| {
        c.rate_limits = RateLimits {
            per_user: 5,
            per_ip: 1_000_000,
            window,
        };
    })
    .await;
    let alice = stack.login("alice").await;
    let bob = stack.login("bob").await;
    let (answered, wait) = until_throttled(&stack, &alice, "/v1/me").await;
    assert!(answered >= 5, "at least the quota went through: {answered}");
    assert!(
        (1..=2).contains(&wait),
        "Retry-After {wait} within the window"
    );
    // Throttled for every endpoint, money moving ones too, and nothing published.
    let published = stack.nats.transfers_published().await;
    let (status, headers, _) = stack
        .transfer(
            &alice,
            "throttled",
            &json!({"from_account": ALICE_EUR, "to_account": BOB_EUR, "amount": "1.00", "currency": "EUR"}),
        )
        .await;
    assert_eq!(status, 429);
    assert!(headers.contains_key("retry-after"));
    assert_eq!(stack.nats.transfers_published().await, published);
    // Another user has a quota of their own; probes are never counted.
    assert_eq!(stack.get(&bob, "/v1/me").await.0, 200);
    assert_eq!(stack.get("", "/healthz").await.0, 200);
    // The window passes: alice is served again.
    tokio::time::sleep(Duration::from_millis(wait * 1000 + 100)).await;
    assert_eq!(stack.get(&alice, "/v1/me").await.0, 200);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn per_ip_rate_limit_covers_anonymous_requests_logins_and_refreshes() {
    let stack = Stack::start_with(|c| {
        c.rate_limits = RateLimits {
            per_user: 1_000_000,
            per_ip: 8,
            window: Duration::from_secs(2),
        };
    })
    .await;
    let (_, wait) = until_throttled(&stack, "", "/v1/config").await;
    let (status, headers, body) = stack.try_login("alice", "alice-dev-password").await;
    assert_eq!(status, 429, "{body}");
    assert!(headers.contains_key("retry-after"));
    // Refreshing is anonymous too: the same address quota.
    let r = stack
        .http
        .post(format!("{}/v1/auth/refresh", stack.api))
        .json(&json!({"refresh_token": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(
        stack.get("", "/readyz").await.0,
        200,
        "probes are not counted"
    );
    tokio::time::sleep(Duration::from_millis(wait * 1000 + 100)).await;
    let (status, _, _) = stack.try_login("alice", "alice-dev-password").await;
    assert_eq!(status, 200);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_redis_logins_fail_open_and_quotas_hold_per_replica() {
    let stack = Stack::start_with(|c| {
        // Nothing listens there: the lockout fails open, the quotas are
        // counted by this replica alone.
        c.redis_url = "redis://127.0.0.1:1".into();
        c.rate_limits = RateLimits {
            per_user: 4,
            per_ip: 1_000,
            window: Duration::from_secs(60),
        };
        c.login_lockout.failures_max = 1;
    })
    .await;
    for _ in 0..3 {
        assert_eq!(stack.try_login("alice", "wrong").await.0, 401);
    }
    let alice = stack.login("alice").await;
    let (answered, _) = until_throttled(&stack, &alice, "/v1/me").await;
    assert_eq!(answered, 4, "exactly the quota went through");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_logins_lock_out_with_back_off_then_recover() {
    let stack = Stack::start_with(|c| {
        c.login_lockout = LoginLockout {
            failures_max: 3,
            ip_failures_max: 9,
            window: Duration::from_secs(60),
            base: Duration::from_secs(2),
            max: Duration::from_secs(8),
        };
    })
    .await;
    // Three wrong passwords: each an ordinary 401.
    for _ in 0..3 {
        let (status, _, p) = stack.try_login("alice", "wrong-password").await;
        assert_eq!(status, 401, "{p}");
    }
    // Locked: even the right password is refused, before it is checked.
    let (status, headers, locked) = stack.try_login("alice", "alice-dev-password").await;
    assert_eq!(status, 429, "{locked}");
    assert!((1..=2).contains(&retry_after(&headers)));
    assert!(locked["type"].as_str().unwrap().ends_with("/login-locked"));
    // An unknown username behaves exactly the same (no account enumeration).
    for _ in 0..3 {
        assert_eq!(stack.try_login("nobody", "wrong-password").await.0, 401);
    }
    let (status, headers, unknown) = stack.try_login("nobody", "whatever").await;
    assert_eq!(status, 429);
    assert_eq!(unknown["title"], locked["title"]);
    assert!((1..=2).contains(&retry_after(&headers)));

    // After the back-off the right password works, and resets the count.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let (status, _, _) = stack.try_login("alice", "alice-dev-password").await;
    assert_eq!(status, 200);
    assert_eq!(stack.try_login("alice", "wrong-password").await.0, 401);
    assert_eq!(stack.try_login("alice", "alice-dev-password").await.0, 200);

    // Another failure while past the threshold doubles the lock (2 s → 4 s).
    assert_eq!(stack.try_login("nobody", "wrong-password").await.0, 401);
    let (status, headers, _) = stack.try_login("nobody", "whatever").await;
    assert_eq!(status, 429);
    assert!(
        (3..=4).contains(&retry_after(&headers)),
        "{:?}",
        headers.get("retry-after")
    );

    // The address: 3 + 3 + 1 + 1 failures so far from 127.0.0.1; the ninth
    // locks it for every username, bob's right password included.
    assert_eq!(stack.try_login("carol", "wrong-password").await.0, 401);
    let (status, headers, _) = stack.try_login("bob", "bob-dev-password").await;
    assert_eq!(status, 429);
    tokio::time::sleep(Duration::from_millis(retry_after(&headers) * 1000 + 100)).await;
    assert_eq!(stack.try_login("bob", "bob-dev-password").await.0, 200);

    // The audit trail names the attempts and the lockouts, never a password.
    let lockouts = stack.audit_rows("login.lockout", 4).await;
    assert_eq!(lockouts[0].record.actor.as_deref(), Some("alice"));
    assert_eq!(lockouts[0].record.detail["scope"], "username");
    assert!(lockouts.iter().any(|r| r.record.detail["scope"] == "ip"));
    let logins = ledger::audit::by_action(&stack.db.pool, "login")
        .await
        .unwrap();
    let count = |actor: &str, outcome: &str| {
        logins
            .iter()
            .filter(|r| r.record.actor.as_deref() == Some(actor) && r.record.outcome == outcome)
            .count()
    };
    assert_eq!(count("alice", "failure"), 4);
    assert_eq!(count("alice", "locked"), 1);
    assert_eq!(count("nobody", "failure"), 4);
    let leaked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE audit_log::text LIKE '%password%'",
    )
    .fetch_one(&stack.db.pool)
    .await
    .unwrap();
    assert_eq!(leaked, 0, "no password in the audit trail");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actions_are_audited_and_tampering_is_detected() {
    let stack = Stack::start().await;
    // Seeding the demo data went through bankadmin's library: audited.
    let created = stack.audit_rows("admin.create_user", 4).await;
    assert_eq!(created[0].record.target.as_deref(), Some("alice"));
    assert_eq!(created[0].record.role.as_deref(), Some("admin"));
    assert!(
        created[0]
            .record
            .actor
            .as_deref()
            .unwrap()
            .starts_with("bankadmin")
    );
    stack.audit_rows("admin.create_account", 5).await;
    let funded = stack.audit_rows("admin.fund", 5).await;
    assert_eq!(funded[0].record.target.as_deref(), Some(ALICE_EUR));
    assert_eq!(funded[0].record.detail["amount"], "10000.00");

    assert_eq!(stack.try_login("alice", "not-it").await.0, 401);
    let alice = stack.login("alice").await;
    let body = json!({"from_account": ALICE_EUR, "to_account": BOB_EUR, "amount": "3.00", "currency": "EUR"});
    let (status, headers, accepted) = stack.transfer(&alice, "audited-1", &body).await;
    assert_eq!(status, 202);
    let request_id = headers["x-request-id"].to_str().unwrap().to_owned();
    let id = accepted["id"].as_str().unwrap().to_owned();
    assert_eq!(stack.transfer(&alice, "audited-1", &body).await.0, 202);
    let stolen = json!({"from_account": BOB_EUR, "to_account": ALICE_EUR, "amount": "3.00", "currency": "EUR"});
    assert_eq!(stack.transfer(&alice, "audited-2", &stolen).await.0, 403);
    let batch = stack.login("batch").await;
    let r = stack
        .http
        .post(format!("{}/v1/batches", stack.api))
        .bearer_auth(&batch)
        .header("Idempotency-Key", "audited-batch")
        .header("content-type", "text/csv")
        .body(format!(
            "from_account,to_account,amount,currency\n{BATCH_EUR},{BOB_EUR},1.00,EUR\n"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let batch_id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let logins = stack.audit_rows("login", 3).await;
    let failed = logins
        .iter()
        .find(|r| r.record.outcome == "failure")
        .unwrap();
    assert_eq!(failed.record.actor.as_deref(), Some("alice"));
    assert_eq!(failed.record.ip.as_deref(), Some("127.0.0.1"));
    let ok = logins
        .iter()
        .find(|r| r.record.outcome == "success")
        .unwrap();
    assert_eq!(ok.record.role.as_deref(), Some("customer"));
    assert_eq!(ok.record.detail["username"], "alice");
    assert!(ok.record.detail["jti"].is_string());

    let transfers = stack.audit_rows("transfer.submit", 3).await;
    let outcomes: Vec<&str> = transfers
        .iter()
        .map(|r| r.record.outcome.as_str())
        .collect();
    assert_eq!(outcomes, ["accepted", "replayed", "refused"]);
    let first = &transfers[0].record;
    assert_eq!(first.target.as_deref(), Some(id.as_str()));
    assert_eq!(first.request_id.as_deref(), Some(request_id.as_str()));
    assert_eq!(first.detail["amount"], "3.00");
    assert_eq!(first.detail["currency"], "EUR");
    assert_eq!(transfers[2].record.detail["status"], 403);
    assert_eq!(transfers[2].record.detail["problem"], "forbidden");

    let batches = stack.audit_rows("batch.submit", 1).await;
    assert_eq!(batches[0].record.outcome, "accepted");
    assert_eq!(batches[0].record.role.as_deref(), Some("batch"));
    assert_eq!(batches[0].record.target.as_deref(), Some(batch_id.as_str()));
    assert_eq!(batches[0].record.detail["count"], 1);

    // The ops view, newest first and paged; read-only and ops only.
    let ops = stack.login("ops").await;
    let (status, page) = stack.get(&ops, "/v1/ops/audit?limit=2").await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items[0]["id"].as_i64() > items[1]["id"].as_i64());
    assert_eq!(items[0]["hash"].as_str().unwrap().len(), 64);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, next) = stack
        .get(&ops, &format!("/v1/ops/audit?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(
        next["items"][0]["id"].as_i64(),
        Some(items[1]["id"].as_i64().unwrap() - 1)
    );
    assert_eq!(next["items"][0]["hash"], items[1]["prev_hash"]);
    assert_eq!(stack.get(&alice, "/v1/ops/audit").await.0, 403);

    // Intact, then a superuser rewrites a transfer's audit row.
    let summary = admin::verify_audit(&stack.db.pool).await.unwrap();
    assert!(summary.starts_with("audit chain intact"), "{summary}");
    let row = transfers[0].id;
    stack
        .db
        .tamper_with_audit(&format!(
            "UPDATE audit_log SET outcome = 'refused' WHERE id = {row}"
        ))
        .await;
    let err = admin::verify_audit(&stack.db.pool)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&format!("broken at row {row}")), "{err}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_graceful_shutdown_flushes_queued_audit_records() {
    let mut stack = Stack::start().await;
    for _ in 0..3 {
        assert_eq!(stack.try_login("bob", "wrong").await.0, 401);
    }
    // Stop right away: the queued records are written before the gateway ends.
    stack.stop_services().await;
    let failures: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'login' AND actor = 'bob'",
    )
    .fetch_one(&stack.db.pool)
    .await
    .unwrap();
    assert_eq!(failures, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_headers_cors_allowlist_and_body_limit() {
    let stack = Stack::start_with(|c| c.cors_origins = vec!["https://bank.example".into()]).await;
    let alice = stack.login("alice").await;
    // Success, refusal, not found and unauthenticated answers all carry them.
    for (token, path, status) in [
        (alice.as_str(), "/v1/me", 200),
        (alice.as_str(), "/v1/ops/stats", 403),
        (alice.as_str(), "/v1/accounts/nope", 404),
        ("", "/v1/me", 401),
        ("", "/v1/no-such-endpoint", 404),
    ] {
        let mut req = stack.http.get(format!("{}{path}", stack.api));
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), status, "{path}");
        let h = r.headers();
        assert!(
            h["strict-transport-security"]
                .to_str()
                .unwrap()
                .starts_with("max-age="),
            "{path}"
        );
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{path}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
    }
    // CORS: the listed origin may call; any other gets no CORS grant.
    let preflight = |origin: &'static str| {
        stack
            .http
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/v1/transfers", stack.api),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type,idempotency-key",
            )
            .send()
    };
    let ok = preflight("https://bank.example").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://bank.example"
    );
    let evil = preflight("https://evil.example").await.unwrap();
    assert!(evil.headers().get("access-control-allow-origin").is_none());
    assert!(
        evil.headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    // Bodies beyond the limit are refused before they are parsed.
    let published = stack.nats.transfers_published().await;
    let r = stack
        .http
        .post(format!("{}/v1/transfers", stack.api))
        .bearer_auth(&alice)
        .header("Idempotency-Key", "huge")
        .header("content-type", "application/json")
        .body(format!("{{\"reference\":\"{}\"}}", "x".repeat(100 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(stack.nats.transfers_published().await, published);
    stack.stop().await;
}

/// The gateway binary in production mode: refuses to start without a real
/// signing key, reads secrets from `*_FILE`, and never prints them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn production_mode_takes_secrets_from_files_and_refuses_the_dev_key() {
    use std::process::{Command, Stdio};
    let dir = std::env::temp_dir().join(format!("secrets-{}", testkit::unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let dev = dir.join("dev");
    std::fs::write(&dev, format!("{}\n", shared::auth::DEV_JWT_SECRET)).unwrap();
    let real = dir.join("jwt");
    std::fs::write(&real, format!("{JWT_SECRET}\n")).unwrap();
    let gateway = procs::binary("gateway");
    let exit = |vars: &[(&str, String)]| {
        Command::new(&gateway)
            .env_clear()
            .env("APP_ENV", "production")
            .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .code()
    };
    assert_eq!(exit(&[]), Some(2), "no JWT secret");
    assert_eq!(
        exit(&[("JWT_SECRET_FILE", dev.display().to_string())]),
        Some(2),
        "the dev secret from a file"
    );
    assert_eq!(
        exit(&[("JWT_SECRET", shared::auth::DEV_JWT_SECRET.into())]),
        Some(2),
        "the dev secret"
    );
    assert_eq!(
        exit(&[("JWT_SECRET_FILE", "/nonexistent/jwt".into())]),
        Some(2),
        "an unreadable file"
    );

    // With its secrets in files it serves, signing with the file's key.
    let db = testkit::TestDb::new().await;
    admin::seed_demo(&db.pool).await.unwrap();
    let nats = testkit::TestNats::new().await;
    let redis = testkit::TestRedis::new();
    let db_file = dir.join("db");
    std::fs::write(&db_file, &db.url).unwrap();
    let addr = procs::free_addr();
    let log = dir.join("log");
    let mut child = Command::new(&gateway)
        .env("APP_ENV", "production")
        .env("JWT_SECRET_FILE", &real)
        .env("DATABASE_URL_FILE", &db_file)
        .env("NATS_URL", testkit::nats_url())
        .env("NATS_PREFIX", &nats.prefix)
        .env("REDIS_URL", testkit::redis_url())
        .env("REDIS_PREFIX", &redis.prefix)
        .env("GATEWAY_ADDR", addr.to_string())
        .env("WEB_DIR", "/nonexistent")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    procs::wait_ready(&http, addr).await;
    let token = testkit::login(
        &http,
        &format!("http://{addr}"),
        "alice",
        "alice-dev-password",
    )
    .await
    .expect("login with the key from JWT_SECRET_FILE");
    let claims = keys().verify(&token.access_token);
    assert!(claims.is_ok(), "signed with the key from JWT_SECRET_FILE");
    let _ = child.kill();
    let _ = child.wait();
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!logged.is_empty(), "the gateway logged something");
    assert!(
        !logged.contains(JWT_SECRET),
        "the secret never appears in logs"
    );
    assert!(!logged.contains("alice-dev-password"), "nor a password");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A client that stops sending halfway through its body (slowloris) is cut
/// off at REQUEST_TIMEOUT_MS with a 503, not waited for.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_request_times_out() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stack = Stack::start_with(|c| c.request_timeout = Duration::from_millis(500)).await;
    let alice = stack.login("alice").await;
    let addr = stack.api.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/transfers HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {alice}\r\n\
         idempotency-key: stalled\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n{{\"amount\":"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let mut answer = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut answer))
        .await
        .expect("an answer before the client gives up")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(400));
    stack.stop().await;
}

/// A private Redis that the test can stop and start again.
fn private_redis(port: u16) -> std::process::Child {
    std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("redis-server")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limits_hold_while_redis_is_away_and_are_shared_again_after() {
    let port = procs::free_addr().port();
    // Killed on drop, also when the test fails.
    let mut redis = procs::Services(vec![private_redis(port)]);
    let stack = Stack::start_with(|c| {
        c.redis_url = format!("redis://127.0.0.1:{port}");
        c.rate_limits = RateLimits {
            per_user: 3,
            per_ip: 1_000_000,
            window: Duration::from_secs(60),
        };
    })
    .await;
    let me = |token: String| {
        let http = stack.http.clone();
        let url = format!("{}/v1/me", stack.api);
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let bob = stack.login("bob").await;
    testkit::eventually(Duration::from_secs(10), "Redis counting", || async {
        (me(bob.clone()).await == 429).then_some(())
    })
    .await;
    // Redis goes away: the replica still holds alice to her quota, from its
    // own counts.
    for mut child in redis.0.drain(..) {
        let _ = child.kill();
        let _ = child.wait();
    }
    let alice = stack.login("alice").await;
    for _ in 0..3 {
        assert_eq!(me(alice.clone()).await, 200, "within the quota");
    }
    assert_eq!(me(alice.clone()).await, 429, "over it, Redis or not");
    // Redis is back (empty): the counts made meanwhile reach it, so other
    // replicas see them.
    redis.0.push(private_redis(port));
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    testkit::eventually(Duration::from_secs(15), "counts shared again", || async {
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        let _ = me(alice.clone()).await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("*:rl:user:*")
            .query_async(&mut conn)
            .await
            .ok()?;
        let mut highest = 0u64;
        for key in keys {
            let n: u64 = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .ok()?;
            highest = highest.max(n);
        }
        // bob's counter restarted at 0 in the new Redis; alice's holds her 4+.
        (highest >= 4).then_some(())
    })
    .await;
    stack.stop().await;
}

/// Too many or too large request headers are refused by the HTTP layer
/// (hyper's limits: 100 headers, ~400 KiB of head) before any handler runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_request_heads_are_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stack = Stack::start().await;
    let addr = stack.api.trim_start_matches("http://").to_owned();
    let heads = [
        (0..200)
            .map(|i| format!("x-filler-{i}: v\r\n"))
            .collect::<String>(),
        format!("x-big: {}\r\n", "a".repeat(1024 * 1024)),
    ];
    for head in heads {
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let request = format!("GET /healthz HTTP/1.1\r\nhost: bank\r\n{head}\r\n");
        // The server answers and closes before reading everything.
        let _ = tcp.write_all(request.as_bytes()).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer);
        eprintln!("answer: {:?}", answer.lines().next());
        assert!(
            answer.is_empty()
                || answer.starts_with("HTTP/1.1 431")
                || answer.starts_with("HTTP/1.1 400"),
            "expected a refusal, got {:?}",
            answer.lines().next()
        );
        assert!(!answer.starts_with("HTTP/1.1 200"));
    }
}

/// With an origin allowlist, a browser page from another origin cannot open
/// a user's WebSocket (the token alone is not enough: cross-site WebSocket
/// hijacking), while the listed origin can.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn websocket_upgrades_from_unlisted_origins_are_refused() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let stack = Stack::start_with(|g| g.cors_origins = vec!["https://bank.example".into()]).await;
    let token = stack.login("alice").await;
    let url = format!("{}?access_token={token}", stack.ws);
    for (origin, allowed) in [
        (Some("https://evil.example"), false),
        (None, false),
        (Some("https://bank.example"), true),
    ] {
        let mut request = url.as_str().into_client_request().unwrap();
        if let Some(o) = origin {
            request.headers_mut().insert("origin", o.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok(_) => assert!(allowed, "{origin:?} must be refused"),
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                assert!(!allowed, "{origin:?} must be allowed, got {}", r.status());
                assert_eq!(r.status(), 403, "{origin:?}");
            }
            Err(e) => panic!("{origin:?}: {e}"),
        }
    }
}
