//! What every handler shares.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use shared::auth::JwtKeys;
use shared::streams::Topology;
use sqlx::PgPool;

use crate::accounts_cache::AccountCache;

pub struct AppState {
    pub pool: PgPool,
    pub nats: async_nats::Client,
    pub js: jetstream::Context,
    pub topology: Topology,
    pub keys: JwtKeys,
    pub accounts: AccountCache,
    pub lookups: crate::lookup::Lookups,
    pub public_ws_url: String,
    pub publish_timeout: Duration,
    /// Concurrent password checks (each argon2id check holds 12 MiB).
    pub login_permits: tokio::sync::Semaphore,
    /// For the ops timeline's last stage (never on the transfer hot path).
    pub redis: Option<redis::Client>,
    pub redis_prefix: String,
    /// Batch uploads in progress per user.
    pub batch_slots: std::sync::Mutex<std::collections::HashMap<uuid::Uuid, usize>>,
    /// Redis for the lockout and the rate limiter's flushes (never required).
    pub redis_link: std::sync::Arc<crate::redis_link::Link>,
    pub rate_limiter: crate::rate_limit::RateLimiter,
    pub login_guard: crate::lockout::LoginGuard,
    pub trusted_proxy_hops: usize,
    /// Queues audit records for the background writer.
    pub audit: crate::audit::Auditor,
    /// The writer, taken at shutdown to flush it.
    pub audit_writer: std::sync::Mutex<Option<crate::audit::Writer>>,
    /// The revoked sessions (logout, password change, disabled users).
    pub revocations: shared::revocation::Revocations,
    /// Single requests' publishes awaiting JetStream's ack
    /// (`PUBLISH_INFLIGHT_MAX`): one more is shed at once, not queued.
    pub publish_slots: tokio::sync::Semaphore,
    /// The transfers queue's backlog, kept current by `backlog::watch`.
    pub backlog: crate::backlog::Backlog,
    /// Lifetime of a login's refresh tokens.
    pub refresh_ttl: Duration,
    /// Statements being streamed: each holds a database connection until its
    /// client has read it, so they are bounded (`STATEMENTS_CONCURRENT_MAX`).
    pub statement_slots: Arc<tokio::sync::Semaphore>,
}

pub type SharedState = Arc<AppState>;
