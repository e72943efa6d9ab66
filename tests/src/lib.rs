//! A whole bank in one test process: gateway, processor and notifier on
//! ephemeral ports, against a database, streams and Redis keys of their own
//! on the real servers, seeded with the demo users and accounts.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use shared::auth::JwtKeys;
use shared::shutdown::{self, Trigger};
use shared::streams::ConsumerSettings;
use testkit::{TestDb, TestNats, TestRedis};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

pub const ALICE_EUR: &str = "a11ce000-0000-4000-8000-000000000001";
pub const ALICE_USD: &str = "a11ce000-0000-4000-8000-000000000002";
pub const BOB_EUR: &str = "b0b00000-0000-4000-8000-000000000001";
pub const BOB_USD: &str = "b0b00000-0000-4000-8000-000000000002";
pub const JWT_SECRET: &str = "system-test-secret-0123456789abcdef-0123456789";

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

pub fn keys() -> JwtKeys {
    JwtKeys::new(&[("k1".into(), JWT_SECRET.into())]).expect("keys")
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
        testkit::eventually(Duration::from_secs(10), action, || async {
            let rows = ledger::audit::by_action(&self.db.pool, action).await.ok()?;
            (rows.len() >= n).then_some(rows)
        })
        .await
    }

    /// Like [`Stack::start`], with the gateway's settings adjusted first
    /// (tiny rate limits, short lockouts).
    pub async fn start_with(adjust: impl FnOnce(&mut gateway::Config)) -> Self {
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
            body_limit_bytes: 64 * 1024,
            rate_limits: gateway::config::RateLimits::default(),
            login_lockout: gateway::config::LoginLockout::default(),
            trusted_proxy_hops: 0,
            redis_timeout: Duration::from_millis(250),
            audit_queue_max: 10_000,
            refresh_ttl: gateway::config::REFRESH_TTL_DEFAULT,
        };
        adjust(&mut gateway);
        let processor = processor::Config {
            addr: paddr,
            database_url: db.url.clone(),
            nats_url: testkit::nats_url(),
            redis_url: testkit::redis_url(),
            redis_prefix: redis.prefix.clone(),
            topology: nats.topology.clone(),
            consumer: ConsumerSettings {
                ack_wait: Duration::from_secs(5),
                max_deliver: 5,
                max_ack_pending: 10_000,
            },
            workers: 2,
            batch_max: 200,
            linger: Duration::from_millis(1),
            replay_buffer: 100,
        };
        let notifier = notifier::Config {
            addr: naddr,
            redis_url: testkit::redis_url(),
            redis_prefix: redis.prefix.clone(),
            keys: keys(),
            queue_max: 256,
            ping_interval: Duration::from_secs(20),
            // The page's origins are the WebSocket's too (as in deployment).
            allowed_origins: gateway.cors_origins.clone(),
        };
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
        for url in [
            format!("{}/readyz", stack.api),
            format!("http://{naddr}/readyz"),
            format!("http://{paddr}/readyz"),
        ] {
            let http = stack.http.clone();
            testkit::eventually(Duration::from_secs(20), &url, || {
                let (http, url) = (http.clone(), url.clone());
                async move {
                    let r = http.get(&url).send().await.ok()?;
                    r.status().is_success().then_some(())
                }
            })
            .await;
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
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }

    pub async fn login(&self, user: &str) -> String {
        let r = self
            .http
            .post(format!("{}/v1/auth/login", self.api))
            .json(
                &serde_json::json!({"username": user, "password": format!("{user}-dev-password")}),
            )
            .send()
            .await
            .expect("login request");
        assert_eq!(r.status(), 200, "login as {user}");
        let body: Value = r.json().await.expect("login body");
        body["access_token"].as_str().expect("token").to_owned()
    }

    /// A login attempt with any password; returns status, headers and body.
    pub async fn try_login(
        &self,
        user: &str,
        password: &str,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let r = self
            .http
            .post(format!("{}/v1/auth/login", self.api))
            .json(&serde_json::json!({"username": user, "password": password}))
            .send()
            .await
            .expect("login request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.json().await.unwrap_or(Value::Null))
    }

    /// POSTs a transfer; returns status, headers and body.
    pub async fn transfer(
        &self,
        token: &str,
        key: &str,
        body: &Value,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let r = self
            .http
            .post(format!("{}/v1/transfers", self.api))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .expect("transfer request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.json().await.unwrap_or(Value::Null);
        (status, headers, body)
    }

    pub async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.api))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn balance(&self, token: &str, account: &str) -> String {
        let (status, body) = self.get(token, &format!("/v1/accounts/{account}")).await;
        assert_eq!(status, 200, "{body}");
        body["balance"].as_str().expect("balance").to_owned()
    }

    /// Waits until the transfer is committed or rejected; returns its view.
    pub async fn final_state(&self, token: &str, id: &str) -> Value {
        testkit::eventually(
            Duration::from_secs(20),
            "a final transfer state",
            || async {
                let (status, body) = self.get(token, &format!("/v1/transfers/{id}")).await;
                (status == 200 && body["status"] != "pending").then_some(body)
            },
        )
        .await
    }

    pub async fn connect_ws(&self, token: &str, since: Option<&str>) -> Ws {
        let mut url = format!("{}?access_token={token}", self.ws);
        if let Some(s) = since {
            url.push_str(&format!("&since={s}"));
        }
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("WebSocket connect");
        Ws { socket }
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

pub struct Ws {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Ws {
    /// The next JSON message, or `None` after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()??
                .ok()?;
            match msg {
                Message::Text(t) => return serde_json::from_str(&t).ok(),
                Message::Ping(p) => {
                    let _ = self.socket.send(Message::Pong(p)).await;
                }
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    /// Reads until `pred` matches a message (returning it) or `timeout`.
    pub async fn until(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let v = self.next(left).await?;
            if pred(&v) {
                return Some(v);
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

/// The workspace's service binaries run as child processes (for tests that
/// kill them or need one process per service).
pub mod procs {
    use std::net::SocketAddr;
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    /// A built binary of the workspace (`cargo build --workspace --bins`).
    pub fn binary(name: &str) -> PathBuf {
        let exe = std::env::current_exe().expect("test binary path");
        let dir = exe
            .parent()
            .and_then(|d| d.parent())
            .expect("target directory");
        let path = dir.join(name);
        assert!(
            path.exists(),
            "{} missing: run `cargo build --workspace --bins` first",
            path.display()
        );
        path
    }

    pub fn free_addr() -> SocketAddr {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
    }

    /// Environment shared by the services of one test.
    pub struct Env {
        pub vars: Vec<(String, String)>,
    }

    impl Env {
        /// What every service of one test needs: its database, stream and
        /// Redis key prefixes, the test JWT secret and the three addresses.
        pub fn for_test(
            db: &testkit::TestDb,
            nats: &testkit::TestNats,
            redis: &testkit::TestRedis,
            [gateway, notifier, processor]: [SocketAddr; 3],
        ) -> Self {
            let vars = [
                ("DATABASE_URL", db.url.clone()),
                ("NATS_URL", testkit::nats_url()),
                ("NATS_PREFIX", nats.prefix.clone()),
                ("REDIS_URL", testkit::redis_url()),
                ("REDIS_PREFIX", redis.prefix.clone()),
                ("JWT_SECRET", super::JWT_SECRET.to_owned()),
                ("GATEWAY_ADDR", gateway.to_string()),
                ("NOTIFIER_ADDR", notifier.to_string()),
                ("PROCESSOR_ADDR", processor.to_string()),
                ("PUBLIC_WS_URL", format!("ws://{notifier}/v1/ws")),
                ("WEB_DIR", "/nonexistent".to_owned()),
                ("RUST_LOG", "warn".to_owned()),
            ];
            Self {
                vars: vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            }
        }

        /// Adds (or overrides) one variable.
        pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
            self.vars.retain(|(k, _)| k != name);
            self.vars.push((name.to_owned(), value.into()));
            self
        }

        pub fn spawn(&self, name: &str) -> Child {
            Command::new(binary(name))
                .envs(self.vars.iter().map(|(k, v)| (k, v)))
                .env("OTEL_SERVICE_NAME", name)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start a service binary")
        }
    }

    /// Children killed on drop.
    #[derive(Default)]
    pub struct Services(pub Vec<Child>);

    impl Drop for Services {
        fn drop(&mut self) {
            for c in &mut self.0 {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    pub async fn wait_ready(http: &reqwest::Client, addr: SocketAddr) {
        testkit::eventually(Duration::from_secs(30), "service ready", || async {
            let r = http
                .get(format!("http://{addr}/readyz"))
                .send()
                .await
                .ok()?;
            r.status().is_success().then_some(())
        })
        .await;
    }
}
