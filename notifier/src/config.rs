//! Notifier settings from the environment (see README "Configuration").

use std::net::SocketAddr;
use std::time::Duration;

use shared::auth::JwtKeys;
use shared::config::{self, ConfigError};

#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub redis_url: String,
    pub redis_prefix: String,
    pub keys: JwtKeys,
    /// Events queued per connection before it is considered too slow and dropped.
    pub queue_max: usize,
    pub ping_interval: Duration,
    /// Origins allowed to open a WebSocket (empty: any; tokens are still required).
    pub allowed_origins: Vec<String>,
    /// Sockets served at once, and the time a client has to send its
    /// upgrade request (see `shared::listen`).
    pub connections: shared::listen::Limits,
}

/// Sockets a notifier serves at once unless `NOTIFIER_MAX_CONNECTIONS`
/// says otherwise. See the README (Security) for the measured memory.
pub const MAX_CONNECTIONS_DEFAULT: usize = 8_192;

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            addr: config::parse("NOTIFIER_ADDR", SocketAddr::from(([127, 0, 0, 1], 8081)))?,
            redis_url: config::secret("REDIS_URL")?
                .unwrap_or_else(|| "redis://127.0.0.1:6379".into()),
            redis_prefix: config::string("REDIS_PREFIX", "bank"),
            keys: JwtKeys::from_env()?,
            queue_max: config::parse("WS_QUEUE_MAX", 256)?,
            ping_interval: config::millis("WS_PING_INTERVAL_MS", 20_000)?,
            allowed_origins: config::string("WS_ALLOWED_ORIGINS", "")
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(str::to_owned)
                .collect(),
            connections: shared::listen::Limits::from_env(
                "NOTIFIER_MAX_CONNECTIONS",
                MAX_CONNECTIONS_DEFAULT,
            )?,
        })
    }
}
