//! Back-pressure (issue 19): with no processor clearing the queue, the
//! gateway stops accepting once the backlog passes its time budget — `503`
//! with `Retry-After`, problem type `backlog` — and every transfer it did
//! accept is applied once a processor runs again. The stream's hard limit
//! answers the same way. Nothing here measures time: the budget is made
//! tiny so that a handful of queued transfers exceed it.

use std::time::Duration;

use serde_json::{Value, json};
use system_tests::procs::{Env, Services, free_addr, wait_committed, wait_ready};
use system_tests::{ALICE_EUR, BOB_EUR};
use testkit::{TestDb, TestNats, TestRedis};

/// Transfers sent at most before the gateway must have started shedding.
const SENDS_MAX: usize = 2_000;
/// How long the accepted transfers may take to be applied once the
/// processor runs (a debug build on a busy machine).
const APPLY_WAIT: Duration = Duration::from_secs(120);

struct Bank {
    _db: TestDb,
    nats: TestNats,
    _redis: TestRedis,
    env: Env,
    services: Services,
    http: reqwest::Client,
    api: String,
    processor: std::net::SocketAddr,
}

/// A gateway alone (no processor: nothing leaves the queue) with `vars`.
async fn gateway_only(vars: &[(&str, &str)]) -> Bank {
    let db = TestDb::new().await;
    admin::seed_demo(&db.pool).await.expect("seed");
    let nats = TestNats::new().await;
    let redis = TestRedis::new();
    let (gateway, notifier, processor) = (free_addr(), free_addr(), free_addr());
    let mut env = Env::for_test(&db, &nats, &redis, [gateway, notifier, processor]);
    for (k, v) in vars {
        env = env.with(k, *v);
    }
    let http = reqwest::Client::new();
    let services = Services(vec![env.spawn("gateway")]);
    wait_ready(&http, gateway).await;
    Bank {
        _db: db,
        nats,
        _redis: redis,
        env,
        services,
        api: format!("http://{gateway}"),
        http,
        processor,
    }
}

impl Bank {
    async fn login(&self, user: &str) -> String {
        testkit::login(&self.http, &self.api, user, &testkit::dev_password(user))
            .await
            .expect("login")
            .access_token
    }

    /// POSTs a cent from Alice to Bob under `key`: status, Retry-After, body.
    async fn send(&self, token: &str, key: &str) -> (u16, Option<String>, Value) {
        let r = self
            .http
            .post(format!("{}/v1/transfers", self.api))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&json!({"from_account": ALICE_EUR, "to_account": BOB_EUR,
                          "amount": "0.01", "currency": "EUR"}))
            .send()
            .await
            .expect("POST /v1/transfers");
        let status = r.status().as_u16();
        let retry = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (status, retry, r.json().await.unwrap_or(Value::Null))
    }

    /// Sends until the first `503`; the accepted transfers' ids and the 503.
    async fn send_until_shed(
        &self,
        token: &str,
        tag: &str,
    ) -> (Vec<String>, Option<String>, Value) {
        let mut accepted = Vec::new();
        for i in 0..SENDS_MAX {
            let (status, retry, body) = self.send(token, &format!("{tag}-{i}")).await;
            match status {
                202 => accepted.push(body["id"].as_str().expect("id").to_owned()),
                503 => return (accepted, retry, body),
                other => panic!("unexpected {other}: {body}"),
            }
        }
        panic!("no 503 after {SENDS_MAX} transfers with nothing clearing the queue");
    }

    async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.api))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text")
    }
}

fn assert_backlog_problem(retry: Option<String>, body: &Value) {
    let retry: u64 = retry
        .expect("a 503 carries Retry-After")
        .parse()
        .expect("Retry-After in seconds");
    assert!(retry >= 1, "Retry-After {retry}");
    assert!(
        body["type"].as_str().unwrap_or("").ends_with("/backlog"),
        "{body}"
    );
    assert_eq!(body["status"], 503, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sheds_past_the_budget_and_applies_everything_it_accepted() {
    let mut bank = gateway_only(&[("BACKLOG_BUDGET_MS", "100")]).await;
    let alice = bank.login("alice").await;

    let (accepted, retry, body) = bank.send_until_shed(&alice, "bp").await;
    assert!(!accepted.is_empty(), "the first transfers are accepted");
    assert_backlog_problem(retry, &body);
    let queued = bank.nats.transfers_in_stream().await;
    assert_eq!(queued, accepted.len() as u64, "a 503 published nothing");

    let metrics = bank.metrics().await;
    assert!(
        metrics.contains("gateway_shed_total{reason=\"backlog\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("gateway_backlog_pending"), "{metrics}");
    assert!(metrics.contains("gateway_backlog_seconds"), "{metrics}");

    // Refused before any work (`shed_early`): a request with no token and
    // no valid body gets the same 503, on every route that queues work ...
    for path in ["/v1/transfers", "/v1/holds", "/v1/batches"] {
        let r = bank
            .http
            .post(format!("{}{path}", bank.api))
            .header("Idempotency-Key", "early")
            .body("not json")
            .send()
            .await
            .expect("POST without a token");
        assert_eq!(r.status().as_u16(), 503, "{path}");
        assert!(r.headers().contains_key("x-request-id"), "{path}");
        let retry = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        assert_backlog_problem(retry, &r.json().await.expect("problem body"));
    }
    // ... while reads, and requests that queue nothing, still answer.
    let r = bank
        .http
        .get(format!("{}/v1/transfers/{}", bank.api, accepted[0]))
        .bearer_auth(&alice)
        .send()
        .await
        .expect("GET a pending transfer");
    assert_eq!(r.status().as_u16(), 200);
    let r = bank
        .http
        .post(format!("{}/v1/auth/refresh", bank.api))
        .json(&json!({"refresh_token": "nonsense"}))
        .send()
        .await
        .expect("POST /v1/auth/refresh");
    assert_eq!(r.status().as_u16(), 401, "auth routes are never shed");
    assert_eq!(
        bank.nats.transfers_in_stream().await,
        accepted.len() as u64,
        "the refusals published nothing"
    );

    // The ops view shows it too.
    let ops = bank.login("ops").await;
    let stats: Value = bank
        .http
        .get(format!("{}/v1/ops/stats", bank.api))
        .bearer_auth(&ops)
        .send()
        .await
        .expect("GET /v1/ops/stats")
        .json()
        .await
        .expect("stats");
    assert_eq!(stats["backlog"]["shedding"], true, "{stats}");
    assert!(
        stats["backlog"]["pending"].as_u64().unwrap_or(0) >= 1,
        "{stats}"
    );

    // A processor clears the queue: everything accepted is applied, and
    // new transfers are accepted again.
    bank.services.0.push(bank.env.spawn("processor"));
    wait_ready(&bank.http, bank.processor).await;
    for id in &accepted {
        wait_committed(&bank.http, &bank.api, &alice, id, APPLY_WAIT).await;
    }
    let mut attempt = 0;
    testkit::eventually(APPLY_WAIT, "transfers accepted again", || {
        attempt += 1;
        let key = format!("bp-after-{attempt}");
        let (bank, alice) = (&bank, &alice);
        async move { (bank.send(alice, &key).await.0 == 202).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_stream_is_answered_503_with_retry_after() {
    // The time budget off: only the stream's hard limit (3 messages) stops it.
    let bank = gateway_only(&[("BACKLOG_BUDGET_MS", "0"), ("NATS_TRANSFERS_MAX_MSGS", "3")]).await;
    let alice = bank.login("alice").await;
    let (accepted, retry, body) = bank.send_until_shed(&alice, "full").await;
    assert_eq!(accepted.len(), 3, "the stream holds 3");
    assert_backlog_problem(retry, &body);
    let metrics = bank.metrics().await;
    assert!(
        metrics.contains("gateway_shed_total{reason=\"stream_full\"}"),
        "{metrics}"
    );
}
