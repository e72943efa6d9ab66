//! What the processor's crash tests share: the binary started against a
//! test's own database, stream prefix and Redis prefix, and a counting query.

use std::process::{Child, Command, Stdio};

use testkit::{TestDb, TestNats, TestRedis};

/// Starts the processor binary with small batches (so a kill lands between
/// commits) plus `extra` settings.
pub fn spawn_processor(
    db: &TestDb,
    nats: &TestNats,
    redis: &TestRedis,
    extra: &[(&str, &str)],
) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_processor"));
    command
        .env("DATABASE_URL", &db.url)
        .env("NATS_URL", testkit::nats_url())
        .env("NATS_PREFIX", &nats.prefix)
        .env("REDIS_URL", testkit::redis_url())
        .env("REDIS_PREFIX", &redis.prefix)
        .env("PROCESSOR_ADDR", "127.0.0.1:0")
        .env("PROCESSOR_WORKERS", "2")
        .env("PROCESSOR_BATCH_MAX", "20")
        .env("CONSUMER_ACK_WAIT_MS", "2000")
        .env("RUST_LOG", "warn");
    for (name, value) in extra {
        command.env(name, value);
    }
    command
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the processor binary")
}

pub async fn count(db: &TestDb, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&db.pool)
        .await
        .expect("count")
}
