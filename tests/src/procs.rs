//! The workspace's service binaries run as child processes (for tests that
//! kill them or need one process per service).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

// Kept at their old path: the tests (and bankctl's crash test) import them
// from here.
pub use testkit::{free_addr, wait_ready};

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
        let mut vars: Vec<(String, String)> =
            vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        // As in `Stack`: the per-role quotas off (`0`), tests of other
        // things send faster than a person.
        for role in ["CUSTOMER", "BATCH", "OPS", "REVERSER"] {
            for budget in ["MOVES_PER_MINUTE", "MOVES_PER_SECOND", "READS_PER_MINUTE"] {
                vars.push((format!("QUOTA_{role}_{budget}"), "0".to_owned()));
            }
        }
        Self { vars }
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

/// GET `url` as `token`: the JSON body, or `None` on any failure, for
/// polling with `testkit::eventually` (what `Stack::get` is to a stack in
/// the test's own process).
pub async fn get_json(http: &reqwest::Client, url: &str, token: &str) -> Option<Value> {
    http.get(url)
        .bearer_auth(token)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

/// Waits up to `within` until transfer `id` reads `committed` at `api`.
pub async fn wait_committed(
    http: &reqwest::Client,
    api: &str,
    token: &str,
    id: &str,
    within: Duration,
) {
    let url = format!("{api}/v1/transfers/{id}");
    testkit::eventually(within, "a transfer committed", || async {
        let view = get_json(http, &url, token).await?;
        (view["status"] == "committed").then_some(())
    })
    .await;
}
