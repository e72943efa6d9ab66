//! `kill -9` of `bankctl` and of the gateway halfway through a batch, then
//! the same command again: exactly one transfer per line. The services run
//! as separate processes (the built binaries) so they can be killed.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use system_tests::BOB_EUR;
use system_tests::procs::{Env, Services, free_addr, wait_ready};
use testkit::{TestDb, TestNats, TestRedis};

const BATCH_EUR: &str = "ba7c0000-0000-4000-8000-000000000001";

fn lines() -> usize {
    std::env::var("BANKCTL_CRASH_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

fn bankctl(api: &str, home: &std::path::Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_bankctl"));
    for var in [
        "BANKCTL_API",
        "BANKCTL_TOKEN",
        "BANKCTL_PASSWORD",
        "BANKCTL_WS",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .arg("--api")
        .arg(api)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_bankctl_and_the_gateway_then_resubmitting_applies_each_line_once() {
    let db = TestDb::new().await;
    admin::seed_demo(&db.pool).await.expect("seed");
    let nats = TestNats::new().await;
    let redis = TestRedis::new();
    let (gateway, notifier, processor) = (free_addr(), free_addr(), free_addr());
    let env = Env::for_test(&db, &nats, &redis, [gateway, notifier, processor]);
    let http = reqwest::Client::new();
    let api = format!("http://{gateway}");
    let mut services = Services(vec![env.spawn("processor"), env.spawn("gateway")]);
    wait_ready(&http, gateway).await;
    wait_ready(&http, processor).await;

    let home = tempfile::tempdir().expect("temp dir");
    let login = bankctl(&api, home.path())
        .args(["login", "--username", "batch"])
        .env("BANKCTL_PASSWORD", "batch-dev-password")
        .output()
        .await
        .expect("bankctl login");
    assert!(login.status.success(), "{login:?}");
    let n = lines();
    let mut csv = String::from("from_account,to_account,amount,currency,reference\n");
    for i in 0..n {
        csv.push_str(&format!("{BATCH_EUR},{BOB_EUR},0.01,EUR,line {i}\n"));
    }
    let file = home.path().join("payroll.csv");
    std::fs::write(&file, csv).expect("write the batch file");
    let file = file.display().to_string();

    // bankctl uploads; once publishing is under way, both die.
    let before = nats.transfers_published().await;
    let mut first = bankctl(&api, home.path())
        .args(["--json", "batch", "submit", &file])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start bankctl");
    testkit::eventually(Duration::from_secs(120), "publishing to start", || async {
        (nats.transfers_published().await > before + 500).then_some(())
    })
    .await;
    let mut gw = services.0.remove(1);
    gw.kill().expect("kill -9 the gateway");
    gw.wait().expect("reap the gateway");
    first.kill().await.expect("kill -9 bankctl");
    let published = nats.transfers_published().await - before;
    eprintln!("killed bankctl and the gateway after {published} of {n} payments were published");
    assert!(
        published < n as u64,
        "the kill must land halfway (raise BANKCTL_CRASH_LINES)"
    );

    // The same command again, to the end.
    services.0.push(env.spawn("gateway"));
    wait_ready(&http, gateway).await;
    let again = bankctl(&api, home.path())
        .args(["--json", "batch", "submit", &file])
        .output()
        .await
        .expect("bankctl again");
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert_eq!(
        again.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let summary: Value = serde_json::from_str(&stdout).expect("JSON summary");
    let id = summary["batch"]["id"]
        .as_str()
        .or_else(|| summary["id"].as_str())
        .expect("batch id in the summary")
        .to_owned();
    let id = uuid::Uuid::parse_str(&id).expect("uuid");
    let (rows, lines_seen): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT batch_line) FROM transfers WHERE batch_id = $1",
    )
    .bind(id)
    .fetch_one(&db.pool)
    .await
    .expect("count");
    assert_eq!((rows, lines_seen), (n as i64, n as i64));
    let results = std::fs::read_to_string(format!("{file}.results.csv")).expect("results file");
    assert_eq!(
        results.lines().count(),
        n + 1,
        "header + one line per payment"
    );
    assert_eq!(results.matches(",committed,").count(), n);
    let report = ledger::invariants::check(&db.pool)
        .await
        .expect("invariants");
    assert!(report.holds(), "{:?}", report.violations());
    drop(services);
}
