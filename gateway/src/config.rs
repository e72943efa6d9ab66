//! Gateway settings from the environment (see README "Configuration").

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use shared::auth::JwtKeys;
use shared::config::{self, ConfigError};
use shared::streams::Topology;

#[derive(Debug)]
pub struct Config {
    pub addr: SocketAddr,
    pub database_url: String,
    pub database_connections: u32,
    pub nats_url: String,
    pub redis_url: String,
    pub redis_prefix: String,
    pub topology: Topology,
    pub keys: JwtKeys,
    /// Built web page to serve at `/` (skipped if the folder is missing).
    pub web_dir: Option<PathBuf>,
    /// WebSocket URL the web page connects to (the notifier).
    pub public_ws_url: String,
    /// Origins allowed by CORS; empty means same-origin only.
    pub cors_origins: Vec<String>,
    /// How long a request may wait for JetStream's acknowledgement.
    pub publish_timeout: Duration,
    /// Publishes awaiting an ack, per process: the back-pressure bound.
    pub publish_inflight_max: usize,
    pub request_timeout: Duration,
    pub body_limit_bytes: usize,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let addr = config::parse("GATEWAY_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?;
        Ok(Self {
            addr,
            database_url: config::secret("DATABASE_URL")?
                .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/bank".into()),
            database_connections: config::parse("GATEWAY_DB_CONNECTIONS", 16)?,
            nats_url: config::string("NATS_URL", "nats://127.0.0.1:4222"),
            redis_url: config::secret("REDIS_URL")?
                .unwrap_or_else(|| "redis://127.0.0.1:6379".into()),
            redis_prefix: config::string("REDIS_PREFIX", "bank"),
            topology: Topology::from_env()?,
            keys: JwtKeys::from_env()?,
            web_dir: Some(PathBuf::from(config::string("WEB_DIR", "frontend/dist"))),
            // Set but empty: the page connects to its own origin's /v1/ws
            // (behind a proxy that routes it to the notifier).
            public_ws_url: std::env::var("PUBLIC_WS_URL")
                .unwrap_or_else(|_| "ws://127.0.0.1:8081/v1/ws".into()),
            cors_origins: config::string("CORS_ORIGINS", "")
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(str::to_owned)
                .collect(),
            publish_timeout: config::millis("PUBLISH_TIMEOUT_MS", 5_000)?,
            publish_inflight_max: config::parse("PUBLISH_INFLIGHT_MAX", 4_096)?,
            request_timeout: config::millis("REQUEST_TIMEOUT_MS", 15_000)?,
            body_limit_bytes: config::parse("BODY_LIMIT_BYTES", 64 * 1024)?,
        })
    }
}
