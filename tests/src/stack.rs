//! Starting and stopping the three services inside the test process, each
//! on an ephemeral port, against the test's own database, streams and keys.

use std::net::SocketAddr;
use std::time::Duration;

use shared::shutdown::{self, Trigger};
use shared::streams::ConsumerSettings;
use testkit::{TestDb, TestNats, TestRedis};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::keys;

/// How long the in-process services may take to report ready: they share
/// the test's runtime with every other test of the binary.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a stopped service may take to finish its graceful shutdown.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the audit rows may take to appear: they are written off the
/// request path, shortly after the response.
const AUDIT_WAIT: Duration = Duration::from_secs(10);

pub struct Stack {
    pub db: TestDb,
    pub nats: TestNats,
    pub redis: TestRedis,
    /// `http://127.0.0.1:<port>` of the gateway.
    pub api: String,
    /// `ws://127.0.0.1:<port>/v1/ws` of the notifier.
    pub ws: String,
    pub http: reqwest::Client,
    services: Vec<(Trigger, JoinHandle<anyhow::Result<()>>)>,
}

async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    (l, addr)
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// The audit rows of `action` once there are at least `n` (the audit
    /// trail is written off the request path, shortly after the response).
    pub async fn audit_rows(&self, action: &str, n: usize) -> Vec<ledger::audit::Row> {
        testkit::eventually(AUDIT_WAIT, action, || async {
            let rows = ledger::audit::by_action(&self.db.pool, action).await.ok()?;
            (rows.len() >= n).then_some(rows)
        })
        .await
    }

    /// Like [`Stack::start`], with the gateway's settings adjusted first
    /// (tiny rate limits, short lockouts).
    pub async fn start_with(adjust: impl FnOnce(&mut gateway::Config)) -> Self {
        Self::start_adjusted(adjust, |_| {}).await
    }

    /// Like [`Stack::start_with`], with the notifier's settings adjusted too.
    pub async fn start_adjusted(
        adjust: impl FnOnce(&mut gateway::Config),
        adjust_notifier: impl FnOnce(&mut notifier::Config),
    ) -> Self {
        Self::start_all(adjust, adjust_notifier, |_| {}).await
    }

    /// Like [`Stack::start`], with the processor's settings adjusted first.
    pub async fn start_processor_with(adjust: impl FnOnce(&mut processor::Config)) -> Self {
        Self::start_all(|_| {}, |_| {}, adjust).await
    }

    async fn start_all(
        adjust: impl FnOnce(&mut gateway::Config),
        adjust_notifier: impl FnOnce(&mut notifier::Config),
        adjust_processor: impl FnOnce(&mut processor::Config),
    ) -> Self {
        if std::env::var_os("RUST_LOG").is_some()
            && let Ok(telemetry) = shared::telemetry::init("system-tests")
        {
            std::mem::forget(telemetry);
        }
        shared::metrics::install();
        let db = TestDb::new().await;
        admin::seed_demo(&db.pool).await.expect("seed demo data");
        let nats = TestNats::new().await;
        let redis = TestRedis::new();
        let (gl, gaddr) = listener().await;
        let (nl, naddr) = listener().await;
        let (pl, paddr) = listener().await;
        let ws = format!("ws://{naddr}/v1/ws");
        let mut gateway = gateway::Config {
            addr: gaddr,
            database_url: db.url.clone(),
            database_connections: 8,
            nats_url: testkit::nats_url(),
            nats_inbox_prefix: "_INBOX".into(),
            redis_url: testkit::redis_url(),
            redis_prefix: redis.prefix.clone(),
            topology: nats.topology.clone(),
            keys: keys(),
            web_dir: None,
            public_ws_url: ws.clone(),
            cors_origins: vec![],
            publish_timeout: Duration::from_secs(5),
            publish_inflight_max: 1024,
            request_timeout: Duration::from_secs(15),
            connections: shared::listen::Limits::default(),
            body_limit_bytes: 64 * 1024,
            rate_limits: gateway::config::RateLimits::default(),
            // Tests of other things send faster than a person: quota tests
            // set the budgets they check.
            quotas: gateway::quotas::RoleQuotas::off(),
            login_lockout: gateway::config::LoginLockout::default(),
            trusted_proxy_hops: 0,
            redis_timeout: Duration::from_millis(250),
            audit_queue_max: 10_000,
            refresh_ttl: gateway::config::REFRESH_TTL_DEFAULT,
            backlog_budget: gateway::config::BACKLOG_BUDGET_DEFAULT,
        };
        adjust(&mut gateway);
        let mut processor = processor::Config {
            addr: paddr,
            database_url: db.url.clone(),
            nats_url: testkit::nats_url(),
            nats_inbox_prefix: "_INBOX".into(),
            redis_url: testkit::redis_url(),
            redis_prefix: redis.prefix.clone(),
            topology: nats.topology.clone(),
            consumer: ConsumerSettings {
                ack_wait: Duration::from_secs(5),
                max_deliver: 5,
                max_ack_pending: 10_000,
            },
            workers: 2,
            apply_concurrency: 1,
            batch_max: 200,
            linger: Duration::from_millis(1),
            replay_buffer: 100,
            // Expired holds are released within a fraction of a second.
            hold_expiry_interval: Duration::from_millis(200),
            relay_direct: true,
            relay_timeout: Duration::from_secs(1),
        };
        adjust_processor(&mut processor);
        let mut notifier = notifier::Config {
            addr: naddr,
            redis_url: testkit::redis_url(),
            redis_prefix: redis.prefix.clone(),
            keys: keys(),
            queue_max: 256,
            ping_interval: Duration::from_secs(20),
            // The page's origins are the WebSocket's too (as in deployment).
            allowed_origins: gateway.cors_origins.clone(),
            connections: shared::listen::Limits::default(),
        };
        adjust_notifier(&mut notifier);
        let mut services = Vec::new();
        let (t, s) = shutdown::channel();
        services.push((t, tokio::spawn(processor::serve(pl, processor, s))));
        let (t, s) = shutdown::channel();
        services.push((t, tokio::spawn(notifier::serve(nl, notifier, s))));
        let (t, s) = shutdown::channel();
        services.push((t, tokio::spawn(gateway::serve(gl, gateway, s))));
        let stack = Self {
            db,
            nats,
            redis,
            api: format!("http://{gaddr}"),
            ws,
            http: reqwest::Client::new(),
            services,
        };
        for addr in [gaddr, naddr, paddr] {
            testkit::http::wait_ready_within(&stack.http, addr, READY_TIMEOUT).await;
        }
        stack
    }

    /// Stops every service and waits for them to finish.
    pub async fn stop(mut self) {
        self.stop_services().await;
    }

    /// Stops every service gracefully, keeping the database, streams and
    /// keys for inspection.
    pub async fn stop_services(&mut self) {
        for (t, _) in &self.services {
            t.fire();
        }
        for (_, task) in self.services.drain(..) {
            let _ = tokio::time::timeout(STOP_TIMEOUT, task).await;
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for (t, task) in &self.services {
            t.fire();
            task.abort();
        }
    }
}
