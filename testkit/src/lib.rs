//! Per-test isolation on the shared PostgreSQL, NATS and Redis servers.
//!
//! * [`TestDb`]: a fresh, migrated database `t_<uuid>`, dropped afterwards.
//! * [`TestNats`]: a unique stream prefix, streams deleted afterwards.
//! * [`TestRedis`]: a unique key prefix, keys deleted afterwards.
//! * [`net`], [`rng`] and (feature `http`) [`http`]: the free ports, the
//!   seeded generator, readiness and login that tests, the bench and the
//!   bank checker share instead of each keeping a copy.
//! * [`slow`]: a Redis that answers late, for the paths that must not wait
//!   on it.
//!
//! Server addresses come from `TEST_DATABASE_URL` (an admin URL),
//! `NATS_URL` and `REDIS_URL`, defaulting to the local development services.

use std::time::Duration;

use shared::streams::Topology;
use sqlx::PgPool;
use uuid::Uuid;

#[cfg(feature = "http")]
pub mod http;
pub mod net;
pub mod rng;
pub mod slow;

#[cfg(feature = "http")]
pub use http::{Login, LoginError, Readiness, await_ready, dev_password, login, wait_ready};
pub use net::{free_addr, try_free_addr};
pub use rng::SplitMix64;
pub use slow::slow_redis;

/// How often [`eventually`] checks again: quick enough not to slow a test
/// down, slow enough not to load the services it polls.
const EVENTUALLY_POLL_INTERVAL: Duration = Duration::from_millis(50);

pub fn admin_database_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A short unique lower-case token for names.
pub fn unique() -> String {
    Uuid::new_v4().simple().to_string()[..16].to_owned()
}

fn url_with_database(admin: &str, db: &str) -> String {
    match admin.rfind('/') {
        Some(i) if admin[..i].ends_with(':') || admin[..i].contains("//") => {
            let (base, rest) = admin.split_at(i);
            let query = rest.find('?').map(|q| &rest[q..]).unwrap_or("");
            format!("{base}/{db}{query}")
        }
        _ => format!("{admin}/{db}"),
    }
}

/// Runs `f` on a fresh single-threaded runtime in another thread: usable from
/// `Drop`, even while the test's own runtime is shutting down or panicking.
fn block_on_side<F: std::future::Future<Output = ()> + Send + 'static>(f: F) {
    let _ = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(f);
        }
    })
    .join();
}

/// A migrated database of its own.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
    keep: bool,
}

impl TestDb {
    pub async fn new() -> Self {
        let name = format!("t_{}", unique());
        let admin = admin_database_url();
        let admin_pool = ledger::pool(&admin, 1).expect("admin url");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin_pool)
            .await
            .expect("create test database (is PostgreSQL running?)");
        admin_pool.close().await;
        let url = url_with_database(&admin, &name);
        let pool = ledger::pool(&url, 16).expect("test url");
        ledger::migrate(&pool).await.expect("migrations");
        Self {
            name,
            url,
            pool,
            keep: std::env::var("TEST_KEEP_DB").is_ok(),
        }
    }
}

impl TestDb {
    /// Runs `sql` against the audit trail behind its append-only trigger's
    /// back, as a superuser could: tests use it to prove tampering is caught.
    pub async fn tamper_with_audit(&self, sql: &str) {
        let mut tx = self.pool.begin().await.expect("begin");
        for statement in [
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
            sql,
            "ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
                .execute(&mut *tx)
                .await
                .expect("tamper with the audit trail");
        }
        tx.commit().await.expect("commit");
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("keeping test database {}", self.name);
            return;
        }
        let name = self.name.clone();
        // The pool belongs to the test's runtime, which is blocked in this
        // drop: closing it here could wait forever. DROP ... WITH (FORCE)
        // terminates its connections instead.
        block_on_side(async move {
            if let Ok(admin) = ledger::pool(&admin_database_url(), 1) {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&admin)
                .await;
                admin.close().await;
            }
        });
    }
}

/// Stream names of its own on the shared NATS server.
pub struct TestNats {
    pub prefix: String,
    pub topology: Topology,
    pub client: async_nats::Client,
    pub js: async_nats::jetstream::Context,
}

impl TestNats {
    pub async fn new() -> Self {
        let prefix = format!("t{}", unique());
        let client = async_nats::connect(nats_url())
            .await
            .expect("connect to NATS (is nats-server -js running?)");
        let js = async_nats::jetstream::new(client.clone());
        let topology = Topology::new(&prefix);
        topology.ensure_streams(&js).await.expect("create streams");
        Self {
            prefix,
            topology,
            client,
            js,
        }
    }

    /// Sequence of the last message ever stored in the transfers stream: it
    /// only grows, so "unchanged" proves nothing was published.
    pub async fn transfers_published(&self) -> u64 {
        self.last_sequence(&self.topology.transfers_stream).await
    }

    /// Sequence of the last result batch ever stored on the results stream
    /// (0: every result went straight into Redis).
    pub async fn results_published(&self) -> u64 {
        self.last_sequence(&self.topology.results_stream).await
    }

    /// Stream sequence up to which the processor's relay has taken (acked)
    /// every result batch on the results stream: at least 1 once one batch
    /// went from the stream into Redis.
    pub async fn results_relayed(&self) -> u64 {
        let stream = self
            .js
            .get_stream(&self.topology.results_stream)
            .await
            .expect("results stream");
        let Ok(mut relay) = stream
            .get_consumer::<async_nats::jetstream::consumer::pull::Config>(
                &self.topology.relay_consumer,
            )
            .await
        else {
            // The processor has not created its relay consumer yet.
            return 0;
        };
        relay
            .info()
            .await
            .expect("relay consumer info")
            .ack_floor
            .stream_sequence
    }

    async fn last_sequence(&self, name: &str) -> u64 {
        let mut stream = self.js.get_stream(name).await.expect("stream");
        stream
            .info()
            .await
            .expect("stream info")
            .state
            .last_sequence
    }

    /// Messages currently stored in the transfers stream.
    pub async fn transfers_in_stream(&self) -> u64 {
        let mut stream = self
            .js
            .get_stream(&self.topology.transfers_stream)
            .await
            .expect("transfers stream");
        stream.info().await.expect("stream info").state.messages
    }
}

impl Drop for TestNats {
    fn drop(&mut self) {
        let topology = self.topology.clone();
        block_on_side(async move {
            if let Ok(client) = async_nats::connect(nats_url()).await {
                let js = async_nats::jetstream::new(client.clone());
                topology.delete_streams(&js).await;
                let _ = client.flush().await;
            }
        });
    }
}

/// A key prefix of its own on the shared Redis server.
pub struct TestRedis {
    pub prefix: String,
}

impl TestRedis {
    pub fn new() -> Self {
        Self {
            prefix: format!("t{}", unique()),
        }
    }
}

impl Default for TestRedis {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let pattern = format!("{}:*", self.prefix);
        block_on_side(async move {
            let Ok(client) = redis::Client::open(redis_url()) else {
                return;
            };
            let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
                return;
            };
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(&pattern)
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: Result<(), _> = redis::cmd("UNLINK").arg(&keys).query_async(&mut conn).await;
            }
        });
    }
}

/// Polls `check` every 50 ms (`EVENTUALLY_POLL_INTERVAL`) until it returns
/// `Some`, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(EVENTUALLY_POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls() {
        assert_eq!(
            url_with_database("postgres://postgres@127.0.0.1:5432/postgres", "t_x"),
            "postgres://postgres@127.0.0.1:5432/t_x"
        );
        assert_eq!(
            url_with_database("postgres://u@h/postgres?sslmode=disable", "t_x"),
            "postgres://u@h/t_x?sslmode=disable"
        );
    }
}
