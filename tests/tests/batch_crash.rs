//! Killing the client and the gateway (`kill -9`) halfway through a large
//! batch, then resubmitting the same file: exactly one transfer per line.

use std::time::Duration;

use serde_json::Value;
use system_tests::BOB_EUR;
use system_tests::procs::{Env, Services, free_addr, get_json, wait_ready};
use testkit::{TestDb, TestNats, TestRedis};

const BATCH_EUR: &str = "ba7c0000-0000-4000-8000-000000000001";
/// Resends of the same file after a 503, as a client that honours
/// Retry-After would make; bounded so a gateway that never recovers fails.
const RESUBMITS_MAX: u32 = 5;

fn lines() -> usize {
    std::env::var("BATCH_CRASH_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resubmitting_after_killing_client_and_gateway_applies_each_line_once() {
    let db = TestDb::new().await;
    admin::seed_demo(&db.pool).await.unwrap();
    let nats = TestNats::new().await;
    let redis = TestRedis::new();
    let (gateway, notifier, processor) = (free_addr(), free_addr(), free_addr());
    let env = Env::for_test(&db, &nats, &redis, [gateway, notifier, processor]);
    let http = reqwest::Client::new();
    let api = format!("http://{gateway}");
    let mut services = Services(vec![env.spawn("processor"), env.spawn("gateway")]);
    wait_ready(&http, gateway).await;
    wait_ready(&http, processor).await;

    let token = testkit::login(&http, &api, "batch", &testkit::dev_password("batch"))
        .await
        .expect("login")
        .access_token;
    let n = lines();
    let mut csv = String::from("from_account,to_account,amount,currency,reference\n");
    for i in 0..n {
        csv.push_str(&format!("{BATCH_EUR},{BOB_EUR},0.01,EUR,line {i}\n"));
    }
    let upload = |csv: String| {
        let (http, api, token) = (http.clone(), api.clone(), token.clone());
        async move {
            http.post(format!("{api}/v1/batches"))
                .bearer_auth(&token)
                .header("Idempotency-Key", "crash-batch-1")
                .header("content-type", "text/csv")
                .body(csv)
                .send()
                .await
        }
    };

    // The client starts uploading; once publishing is under way the gateway
    // is killed (and the client gives up with it).
    let first = tokio::spawn(upload(csv.clone()));
    let before = nats.transfers_published().await;
    testkit::eventually(Duration::from_secs(120), "publishing to start", || async {
        (nats.transfers_published().await > before + 500).then_some(())
    })
    .await;
    let gw = services.0.remove(1);
    let mut gw = gw;
    gw.kill().unwrap();
    gw.wait().unwrap();
    first.abort();
    let published = nats.transfers_published().await - before;
    eprintln!("killed the gateway after {published} of {n} payments were published");
    assert!(
        published < n as u64,
        "the kill must land halfway (raise BATCH_CRASH_LINES)"
    );

    // Restart and resubmit the same file.
    services.0.push(env.spawn("gateway"));
    wait_ready(&http, gateway).await;
    // A 503 with Retry-After is the gateway's documented "JetStream did not
    // acknowledge in time" (it happens on a loaded machine while the
    // restarted gateway republishes the rest): a client resends the same
    // file, as bankctl does, until a definitive answer.
    let mut attempt = 0;
    let r = loop {
        let r = upload(csv.clone()).await.unwrap();
        if r.status() != 503 || attempt == RESUBMITS_MAX {
            break r;
        }
        attempt += 1;
        let wait = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse().ok());
        eprintln!("resubmit answered 503 (attempt {attempt}); retrying");
        tokio::time::sleep(Duration::from_secs(wait.unwrap_or(1).min(5))).await;
    };
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    let accepted: Value = r.json().await.unwrap();
    assert_eq!(accepted["count"], n);
    let id = accepted["id"].as_str().unwrap().to_owned();
    let url = format!("{api}/v1/batches/{id}");
    let status = testkit::eventually(Duration::from_secs(300), "the batch to finish", || async {
        let b = get_json(&http, &url, &token).await?;
        (b["done"] == true).then_some(b)
    })
    .await;
    assert_eq!(status["committed"], n, "{status}");

    let count = |sql: &'static str| {
        let pool = db.pool.clone();
        let id = id.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(uuid::Uuid::parse_str(&id).unwrap())
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        count("SELECT count(*) FROM transfers WHERE batch_id = $1").await,
        n as i64
    );
    assert_eq!(
        count("SELECT count(DISTINCT batch_line) FROM transfers WHERE batch_id = $1").await,
        n as i64
    );
    let report = ledger::invariants::check(&db.pool).await.unwrap();
    assert!(report.holds(), "{:?}", report.violations());
    drop(services);
}
