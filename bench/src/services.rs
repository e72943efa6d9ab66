//! The services under test, as child processes of the bench, each with its
//! own ports, and everything needed to stop them and delete their data.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use testkit::Readiness;
use tokio::process::{Child, Command};

/// Where this run's data lives: database, stream and key prefixes.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub run: String,
    pub bin: PathBuf,
    pub database_url: String,
    pub nats_url: String,
    pub redis_url: String,
    pub jwt_secret: String,
    pub log_dir: PathBuf,
    pub gateway: SocketAddr,
    pub notifier: SocketAddr,
    pub processor: SocketAddr,
    /// The gateway's `BACKLOG_BUDGET_MS`.
    pub backlog_budget_ms: u64,
}

impl Deployment {
    pub fn new(
        bin: PathBuf,
        pg: &str,
        nats_url: String,
        redis_url: String,
        backlog_budget_ms: u64,
    ) -> anyhow::Result<Self> {
        let run = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let log_dir = std::env::temp_dir().join(&run);
        Ok(Self {
            database_url: format!("{}/{run}", pg.trim_end_matches('/')),
            jwt_secret: format!("bench-secret-{}", uuid::Uuid::new_v4().simple()),
            run,
            bin,
            nats_url,
            redis_url,
            log_dir,
            gateway: testkit::try_free_addr()?,
            notifier: testkit::try_free_addr()?,
            processor: testkit::try_free_addr()?,
            backlog_budget_ms,
        })
    }

    /// The environment every service (and `bankadmin teardown`) gets.
    pub fn env(&self) -> BTreeMap<&'static str, String> {
        let mut env = BTreeMap::new();
        env.insert("DATABASE_URL", self.database_url.clone());
        env.insert("NATS_URL", self.nats_url.clone());
        env.insert("NATS_PREFIX", self.run.clone());
        env.insert("REDIS_URL", self.redis_url.clone());
        env.insert("REDIS_PREFIX", self.run.clone());
        env.insert("JWT_SECRET", self.jwt_secret.clone());
        env.insert("GATEWAY_ADDR", self.gateway.to_string());
        env.insert("NOTIFIER_ADDR", self.notifier.to_string());
        env.insert("PROCESSOR_ADDR", self.processor.to_string());
        env.insert("PUBLIC_WS_URL", format!("ws://{}/v1/ws", self.notifier));
        env.insert(
            "WEB_DIR",
            self.log_dir.join("no-web-dir").display().to_string(),
        );
        env.insert(
            "RUST_LOG",
            std::env::var("BENCH_RUST_LOG").unwrap_or_else(|_| "warn".into()),
        );
        // A handful of users send thousands of requests per second from one
        // address: quotas far above that, so nothing is throttled, while
        // every request still pays the rate limiter's Redis round trip.
        for var in ["RATE_LIMIT_USER_PER_MINUTE", "RATE_LIMIT_IP_PER_MINUTE"] {
            env.insert(
                var,
                std::env::var(var).unwrap_or_else(|_| "1000000000".into()),
            );
        }
        // The same for the per-role quotas (a person's is 10 transfers/s):
        // still counted, never reached.
        for var in QUOTA_VARS {
            env.insert(
                var,
                std::env::var(var).unwrap_or_else(|_| "1000000000".into()),
            );
        }
        // Back-pressure's budget, explicit: the overload run judges it.
        env.insert("BACKLOG_BUDGET_MS", self.backlog_budget_ms.to_string());
        // The bench's few WebSocket clients each carry a whole user's share
        // of the load: give them room (the default 256 suits one person).
        env.insert(
            "WS_QUEUE_MAX",
            std::env::var("WS_QUEUE_MAX").unwrap_or_else(|_| "65536".into()),
        );
        env
    }
}

/// The async runtime's threads for `program` on this co-located machine
/// (`None`: the service's default, one per core). The processor and the
/// notifier mostly wait on PostgreSQL, NATS and Redis: on one thread each
/// they stop waking a second one across cores for every message, while
/// the gateway, the busiest of the three, keeps both cores
/// (docs/performance-log.md, 2026-12-03: three alternated rounds). A
/// `RUNTIME_THREADS` given to the bench is inherited by all three instead.
pub fn runtime_threads(program: &str) -> Option<&'static str> {
    if std::env::var_os("RUNTIME_THREADS").is_some() {
        return None;
    }
    matches!(program, "processor" | "notifier").then_some("1")
}

/// Every role's budgets (gateway `quotas.rs`; README "Configuration").
const QUOTA_VARS: [&str; 12] = [
    "QUOTA_CUSTOMER_MOVES_PER_MINUTE",
    "QUOTA_CUSTOMER_MOVES_PER_SECOND",
    "QUOTA_CUSTOMER_READS_PER_MINUTE",
    "QUOTA_BATCH_MOVES_PER_MINUTE",
    "QUOTA_BATCH_MOVES_PER_SECOND",
    "QUOTA_BATCH_READS_PER_MINUTE",
    "QUOTA_OPS_MOVES_PER_MINUTE",
    "QUOTA_OPS_MOVES_PER_SECOND",
    "QUOTA_OPS_READS_PER_MINUTE",
    "QUOTA_REVERSER_MOVES_PER_MINUTE",
    "QUOTA_REVERSER_MOVES_PER_SECOND",
    "QUOTA_REVERSER_READS_PER_MINUTE",
];

pub struct Service {
    pub name: &'static str,
    pub pid: u32,
    pub addr: SocketAddr,
    child: Child,
}

impl Service {
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

pub async fn start(
    dep: &Deployment,
    name: &'static str,
    addr: SocketAddr,
) -> anyhow::Result<Service> {
    std::fs::create_dir_all(&dep.log_dir)?;
    let log = std::fs::File::create(dep.log_dir.join(format!("{name}.log")))?;
    // `processor-2` … are more replicas of `processor`, each on its own port.
    let program = name.split('-').next().unwrap_or(name);
    let mut cmd = Command::new(dep.bin.join(program));
    cmd.envs(dep.env());
    if program == "processor" {
        cmd.env("PROCESSOR_ADDR", addr.to_string());
    }
    if let Some(threads) = runtime_threads(program) {
        cmd.env("RUNTIME_THREADS", threads);
    }
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true);
    let child = cmd
        .spawn()
        .with_context(|| format!("start {}", dep.bin.join(program).display()))?;
    let pid = child.id().context("child pid")?;
    Ok(Service {
        name,
        pid,
        addr,
        child,
    })
}

/// Waits for `/readyz`; an error if the process exits or `timeout` passes.
pub async fn wait_ready(
    http: &reqwest::Client,
    svc: &mut Service,
    timeout: Duration,
) -> anyhow::Result<()> {
    let (name, addr) = (svc.name, svc.addr);
    match testkit::await_ready(http, addr, timeout, || !svc.alive()).await {
        Readiness::Ready => Ok(()),
        Readiness::Exited => anyhow::bail!("{name} exited during start-up"),
        Readiness::TimedOut => anyhow::bail!("{name} not ready after {timeout:?}"),
    }
}

/// SIGTERM, then SIGKILL after `grace`.
pub async fn stop(mut svc: Service, grace: Duration) {
    if let Ok(pid) = i32::try_from(svc.pid) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    if tokio::time::timeout(grace, svc.child.wait()).await.is_err() {
        let _ = svc.child.kill().await;
    }
}

/// Drops the database, streams and Redis keys of this deployment
/// (`bankadmin teardown`), falling back to dropping the database directly.
/// `true` when everything went; otherwise it says what is left.
pub async fn teardown(dep: &Deployment) -> bool {
    let admin = dep.bin.join("bankadmin");
    let ok = Command::new(&admin)
        .args(["teardown", "--yes-delete-everything"])
        .envs(dep.env())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .await
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        // Only the database can be dropped from here: say what is left and
        // how to delete it, rather than claim a clean slate. The URL is not
        // printed: `BENCH_PG_URL` may carry a password.
        let dropped = ledger::drop_database(&dep.database_url).await.is_ok();
        let run = &dep.run;
        eprintln!(
            "[bench] {} teardown failed; database {run} {}. Streams {}_* and Redis keys {run}:* \
             remain: DATABASE_URL=$BENCH_PG_URL/{run} NATS_PREFIX={run} REDIS_PREFIX={run} \
             bankadmin teardown --yes-delete-everything",
            admin.display(),
            if dropped { "dropped" } else { "NOT dropped" },
            run.to_uppercase(),
        );
    }
    ok
}

/// The last lines of each service log (shown when something failed).
pub fn log_tails(dir: &Path, lines: usize) -> String {
    let mut out = String::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        if let Ok(text) = std::fs::read_to_string(e.path()) {
            let all: Vec<&str> = text.lines().collect();
            let tail = &all[all.len().saturating_sub(lines)..];
            if !tail.is_empty() {
                out.push_str(&format!(
                    "--- {} ---\n{}\n",
                    e.path().display(),
                    tail.join("\n")
                ));
            }
        }
    }
    out
}
