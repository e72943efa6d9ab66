//! The async runtime's size (`RUNTIME_THREADS`, shared::service): every
//! service carries a transfer end to end on one thread, as `make bench`
//! runs them, and a value that is not a positive count stops each service
//! at start instead of a panic inside tokio.

use std::time::Duration;

use serde_json::{Value, json};
use system_tests::procs::{Env, Services, binary, free_addr, wait_committed, wait_ready};
use system_tests::{ALICE_EUR, BOB_EUR};
use testkit::{TestDb, TestNats, TestRedis};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_runtime_thread_per_service_carries_a_transfer_to_its_commit() {
    let db = TestDb::new().await;
    admin::seed_demo(&db.pool).await.unwrap();
    let nats = TestNats::new().await;
    let redis = TestRedis::new();
    let (gateway, notifier, processor) = (free_addr(), free_addr(), free_addr());
    let env = Env::for_test(&db, &nats, &redis, [gateway, notifier, processor])
        .with("RUNTIME_THREADS", "1");
    let services = Services(vec![
        env.spawn("gateway"),
        env.spawn("notifier"),
        env.spawn("processor"),
    ]);
    let http = reqwest::Client::new();
    wait_ready(&http, gateway).await;
    wait_ready(&http, notifier).await;
    wait_ready(&http, processor).await;
    // The setting is applied, not only accepted: tokio names its workers.
    for child in &services.0 {
        assert_eq!(runtime_workers(child.id()), 1, "pid {}", child.id());
    }

    let api = format!("http://{gateway}");
    let alice = testkit::login(&http, &api, "alice", &testkit::dev_password("alice"))
        .await
        .expect("login")
        .access_token;
    let posted = http
        .post(format!("{api}/v1/transfers"))
        .bearer_auth(&alice)
        .header("Idempotency-Key", "one-thread-1")
        .json(&json!({"from_account": ALICE_EUR, "to_account": BOB_EUR, "amount": "3.00", "currency": "EUR"}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 202);
    let id = posted.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_committed(&http, &api, &alice, &id, Duration::from_secs(20)).await;
}

/// Threads of process `pid` that tokio named as runtime workers.
fn runtime_workers(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("the service's threads")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "tokio-rt-worker")
        .count()
}

#[test]
fn a_runtime_threads_that_is_not_a_positive_count_stops_every_service() {
    for value in ["0", "two", "-1"] {
        for service in ["gateway", "processor", "notifier"] {
            let out = std::process::Command::new(binary(service))
                .env("RUNTIME_THREADS", value)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(2), "{service} {value}: {out:?}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("RUNTIME_THREADS") && !stderr.contains("panicked"),
                "{service} {value}: {stderr}"
            );
        }
    }
}
