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
    pub redis_url: String,
    /// Key prefix of the events in Redis (shared with the notifier).
    pub redis_prefix: String,
    pub topology: Topology,
    pub consumer: ConsumerSettings,
    /// Concurrent batches (each holds one database connection while applying).
    pub workers: usize,
    /// Most transfers applied in one database transaction.
    pub batch_max: usize,
    /// How long a worker waits to fill a batch once it has one message.
    pub linger: Duration,
    /// Events kept per user in Redis for WebSocket replay.
    pub replay_buffer: usize,
    /// How often the processor looks for pending holds past their expiry
    /// (an expired hold is released at most this much late).
    pub hold_expiry_interval: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        // Four. Fewer workers make bigger batches (less PostgreSQL CPU per
        // transfer: 2 workers peaked ~15 % higher in make bench on 2 cores)
        // but leave PostgreSQL too little concurrency to ride out a slow
        // moment (vacuum, checkpoint): in a full run 2 workers fell behind
        // the gateway (7,817 accepted/s, 6,116 committed/s, backlog growing)
        // where 4 keep up. See README Performance.
        let workers: usize = config::parse("PROCESSOR_WORKERS", 4)?;
        let batch_max: usize = config::parse("PROCESSOR_BATCH_MAX", 500)?;
        if workers == 0 || batch_max == 0 {
            return Err(ConfigError::Invalid {
                name: "PROCESSOR_WORKERS/PROCESSOR_BATCH_MAX".into(),
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            addr: config::parse("PROCESSOR_ADDR", SocketAddr::from(([127, 0, 0, 1], 8082)))?,
            database_url: config::secret("DATABASE_URL")?
                .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/bank".into()),
            nats_url: config::string("NATS_URL", "nats://127.0.0.1:4222"),
            redis_url: config::secret("REDIS_URL")?
                .unwrap_or_else(|| "redis://127.0.0.1:6379".into()),
            redis_prefix: config::string("REDIS_PREFIX", "bank"),
            topology: Topology::from_env()?,
            consumer: ConsumerSettings::from_env()?,
            workers,
            batch_max,
            linger: config::millis("PROCESSOR_LINGER_MS", 1)?,
            replay_buffer: config::parse("REPLAY_BUFFER", 1000)?,
            hold_expiry_interval: config::millis("PROCESSOR_HOLD_EXPIRY_INTERVAL_MS", 5000)?,
        })
    }
}
