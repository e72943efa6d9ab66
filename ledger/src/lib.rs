//! The PostgreSQL ledger: schema migrations, the batched double-entry apply,
//! reads for the API, administration and invariant checks.
//!
//! Every function takes a pool or the caller's connection; SQL lives here and
//! nowhere else.

pub mod accounts;
pub mod admin;
pub mod apply;
pub mod audit;
pub mod batches;
mod error;
pub mod holds;
pub mod invariants;
pub mod ops;
pub mod refresh;
pub mod statements;
pub mod transfers;
pub mod users;

use std::time::Duration;

pub use error::LedgerError;
pub use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};

/// How long a request waits for a pooled connection before failing fast
/// (the caller answers 503 rather than queueing without bound).
pub const POOL_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// A pooled connection idle longer than this is pinged before it is handed
/// out; one used more recently is handed out as it is.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// `url` parsed; plaintext unless TLS is asked for. With its TLS support
/// sqlx would default to `prefer` and quietly encrypt local development
/// connections too (Debian's PostgreSQL has `ssl = on`); production asks
/// with libpq's `PGSSLMODE=verify-full` + `PGSSLROOTCERT` (or `sslmode=` in
/// the URL), which sqlx reads.
pub fn connect_options(url: &str) -> Result<PgConnectOptions, sqlx::Error> {
    let options: PgConnectOptions = url.parse()?;
    let in_url = url
        .split_once('?')
        .is_some_and(|(_, query)| query.split('&').any(|p| p.starts_with("sslmode=")));
    if in_url || std::env::var_os("PGSSLMODE").is_some() {
        Ok(options)
    } else {
        Ok(options.ssl_mode(PgSslMode::Disable))
    }
}

/// A lazily connecting pool: services start (and report not-ready) even when
/// PostgreSQL is not up yet, and reconnect by themselves when it returns.
pub fn pool(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    let options = connect_options(url)?;
    let options = options.application_name("bank");
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(POOL_ACQUIRE_TIMEOUT)
        // sqlx pings every connection it hands out by default: one more
        // round trip per transaction and per lookup, each waking a
        // PostgreSQL backend, which at low load cost more than the work.
        // A connection in steady use is known to be alive; one that broke
        // since fails its statement, which callers already treat as a
        // transient error (the processor retries, the gateway answers
        // 503) and the pool then drops. Idle ones are still checked.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_IF_IDLE_FOR {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .connect_lazy_with(options))
}

/// Applies the migrations in `migrations/` (idempotent).
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    sqlx::migrate!("../migrations").run(pool).await
}

/// `SELECT 1`: is the database reachable right now?
pub async fn ping(pool: &PgPool) -> bool {
    sqlx::query("SELECT 1").execute(pool).await.is_ok()
}

/// Creates the database named in `url` if it does not exist (connecting to
/// the server's `postgres` database to do so).
pub async fn create_database_if_missing(url: &str) -> Result<(), sqlx::Error> {
    use sqlx::ConnectOptions;
    let options = connect_options(url)?;
    let Some(name) = options.get_database().map(str::to_owned) else {
        return Ok(());
    };
    let mut admin = options.database("postgres").connect().await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        // Identifiers cannot be bound; quote it.
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {quoted}")))
            .execute(&mut admin)
            .await?;
    }
    Ok(())
}

/// Drops the database named in `url` (terminating its connections).
pub async fn drop_database(url: &str) -> Result<(), sqlx::Error> {
    use sqlx::ConnectOptions;
    let options = connect_options(url)?;
    let Some(name) = options.get_database().map(str::to_owned) else {
        return Ok(());
    };
    let mut admin = options.database("postgres").connect().await?;
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await?;
    Ok(())
}

/// How often the pool gauges are refreshed.
const POOL_METRICS_INTERVAL: Duration = Duration::from_secs(5);

/// Reports the pool's open and idle connections every 5 s as
/// `db_pool_connections{state="open"|"idle"}` (until the runtime stops).
pub fn report_pool_metrics(pool: PgPool) {
    tokio::spawn(async move {
        loop {
            metrics::gauge!("db_pool_connections", "state" => "open").set(f64::from(pool.size()));
            metrics::gauge!("db_pool_connections", "state" => "idle").set(pool.num_idle() as f64);
            metrics::gauge!("db_pool_connections", "state" => "max")
                .set(f64::from(pool.options().get_max_connections()));
            tokio::time::sleep(POOL_METRICS_INTERVAL).await;
        }
    });
}

/// Truncates to PostgreSQL's timestamp precision, so a value we computed
/// equals what a later read of it returns.
pub(crate) fn micros(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

#[cfg(test)]
mod tls_tests {
    use super::*;

    // PGSSLMODE is not set in the test environment (make test, cargo test).
    #[test]
    fn plaintext_unless_tls_is_asked_for() {
        let plain = connect_options("postgres://u@localhost/bank").unwrap();
        assert!(matches!(plain.get_ssl_mode(), PgSslMode::Disable));
        let asked = "postgres://u@db/bank?sslmode=verify-full&sslrootcert=/ca.crt";
        let tls = connect_options(asked).unwrap();
        assert!(matches!(tls.get_ssl_mode(), PgSslMode::VerifyFull));
    }
}
