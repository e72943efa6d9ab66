//! Processor settings from the environment (see README "Configuration").

use std::net::SocketAddr;
use std::time::Duration;

use shared::config::{self, ConfigError};
use shared::streams::{ConsumerSettings, Topology};

#[derive(Debug, Clone)]
pub struct Config {
    /// Health and metrics.
    pub addr: SocketAddr,
    pub database_url: String,
    pub nats_url: String,
    /// Reply subjects start with this (`NATS_INBOX_PREFIX`): one per service,
    /// so a NATS user can be allowed its own replies only.
    pub nats_inbox_prefix: String,
    pub redis_url: String,
    /// Key prefix of the events in Redis (shared with the notifier).
    pub redis_prefix: String,
    pub topology: Topology,
    pub consumer: ConsumerSettings,
    /// Pull workers: each pulls, decodes and settles its own batches.
    pub workers: usize,
    /// Transfer transactions at once per process (`PROCESSOR_APPLY_CONCURRENCY`);
    /// the workers' groups that wait meanwhile are merged (see `applier`).
    pub apply_concurrency: usize,
    /// Most transfers applied in one database transaction.
    pub batch_max: usize,
    /// How long a worker waits to fill a batch once it has one message
    /// (default 0: it takes what was delivered meanwhile, see `pull`).
    pub linger: Duration,
    /// Events kept per user in Redis for WebSocket replay.
    pub replay_buffer: usize,
    /// Results go straight into Redis after commit (`PROCESSOR_RELAY_DIRECT`,
    /// default on), through the results stream only when Redis does not
    /// take them; off, every result goes through the results stream.
    pub relay_direct: bool,
    /// Longest wait for Redis to take a batch directly
    /// (`PROCESSOR_RELAY_TIMEOUT_MS`) before it goes through the stream.
    pub relay_timeout: Duration,
    /// How often the processor looks for pending holds past their expiry
    /// (an expired hold is released at most this much late).
    pub hold_expiry_interval: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        // Sixteen pull workers, one transfer transaction at a time: the
        // workers' groups that wait meanwhile are merged into the next one
        // (see `applier` and docs/apply-path.md). With each worker applying
        // its own group, transactions stayed small and queued on each
        // other's row locks; one at a time with merging moved 29-40 % more
        // transfers in make bench than that, and 2 at a time gained little
        // (their transactions stayed small). Eight pullers rather than four
        // keep more delivered work waiting for each transaction, so it is
        // bigger: +3-22 % committed/s in make bench's closed loops, and the
        // closed uniform loop shed nothing in those runs (four shed in
        // every run). Sixteen gained nothing more while the slot was held
        // until the results were handed over; since it is given back at
        // commit, sixteen nearly double the uniform loop's transactions
        // (~207 -> ~390 transfers) for +5.4 % committed/s, hot unchanged
        // (docs/performance-log.md, 2026-12-03). See README Performance.
        let workers: usize = config::parse("PROCESSOR_WORKERS", 16)?;
        let batch_max: usize = config::parse("PROCESSOR_BATCH_MAX", 500)?;
        let apply_concurrency: usize = config::parse("PROCESSOR_APPLY_CONCURRENCY", 1)?;
        if workers == 0 || batch_max == 0 || apply_concurrency == 0 {
            return Err(ConfigError::Invalid {
                name: "PROCESSOR_WORKERS/PROCESSOR_BATCH_MAX/PROCESSOR_APPLY_CONCURRENCY".into(),
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            addr: config::parse("PROCESSOR_ADDR", SocketAddr::from(([127, 0, 0, 1], 8082)))?,
            database_url: config::secret("DATABASE_URL")?
                .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/bank".into()),
            // A secret too: it carries the service's NATS user and password.
            nats_url: config::secret("NATS_URL")?.unwrap_or_else(|| "nats://127.0.0.1:4222".into()),
            nats_inbox_prefix: config::string("NATS_INBOX_PREFIX", "_INBOX"),
            redis_url: config::secret("REDIS_URL")?
                .unwrap_or_else(|| "redis://127.0.0.1:6379".into()),
            redis_prefix: config::string("REDIS_PREFIX", "bank"),
            topology: Topology::from_env()?,
            consumer: ConsumerSettings::from_env()?,
            workers,
            apply_concurrency,
            batch_max,
            linger: config::millis("PROCESSOR_LINGER_MS", 0)?,
            replay_buffer: config::parse("REPLAY_BUFFER", 1000)?,
            relay_direct: config::parse("PROCESSOR_RELAY_DIRECT", true)?,
            relay_timeout: config::millis("PROCESSOR_RELAY_TIMEOUT_MS", 1000)?,
            hold_expiry_interval: config::millis("PROCESSOR_HOLD_EXPIRY_INTERVAL_MS", 5000)?,
        })
    }
}
