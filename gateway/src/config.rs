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
    /// Reply subjects start with this (`NATS_INBOX_PREFIX`): one per service,
    /// so a NATS user can be allowed its own replies only.
    pub nats_inbox_prefix: String,
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
    /// Connections served at once, and the time a client has to send a
    /// request's headers (see `shared::listen`).
    pub connections: shared::listen::Limits,
    pub body_limit_bytes: usize,
    /// Request quotas per user and per client IP, counted in Redis.
    pub rate_limits: RateLimits,
    /// Per-role budgets for money-moving requests and reads.
    pub quotas: crate::quotas::RoleQuotas,
    /// Login throttling: lockout with back-off after failed logins.
    pub login_lockout: LoginLockout,
    /// Reverse proxies in front of the gateway that append to
    /// `X-Forwarded-For` (0: the peer address is the client). Trusting more
    /// hops than there are proxies would let clients choose their own IP.
    pub trusted_proxy_hops: usize,
    /// How long a rate-limit or lockout check may wait for Redis before the
    /// request goes on without it (fail open).
    pub redis_timeout: Duration,
    /// Audit records waiting for the background writer; beyond it records
    /// are dropped (counted), never waited for on the request path.
    pub audit_queue_max: usize,
    /// Back-pressure: new transfers and batches are refused (`503`) while
    /// the queued work would take the processors longer than this to clear
    /// (`BACKLOG_BUDGET_MS`; 0 switches the check off, leaving only the
    /// stream's hard limits).
    pub backlog_budget: Duration,
    /// How long a login's refresh tokens stay valid (`REFRESH_TOKEN_TTL_SECS`).
    /// Rotation does not extend it: past it the user enters the password again.
    pub refresh_ttl: Duration,
}

/// A working day: a session outlives many access tokens, not the day.
pub const REFRESH_TTL_DEFAULT: Duration = Duration::from_secs(8 * 60 * 60);
/// A customer should see "pending" turn into "committed" within a couple
/// of seconds even under load: beyond that, `503` + Retry-After is the
/// honest answer (issue 19).
pub const BACKLOG_BUDGET_DEFAULT: Duration = Duration::from_secs(2);
/// The rate limits' window: quotas are per minute.
const RATE_WINDOW: Duration = Duration::from_secs(60);
/// Failed logins are forgotten this long after the last one.
const LOCKOUT_WINDOW_DEFAULT: Duration = Duration::from_secs(15 * 60);
/// The first lockout: short, so a person who mistyped barely notices.
const LOCKOUT_BASE_DEFAULT: Duration = Duration::from_secs(1);
/// The longest lockout: slows a guesser to a few tries an hour.
const LOCKOUT_MAX_DEFAULT: Duration = Duration::from_secs(15 * 60);
/// Longest wait for Redis (rate limits, lockout) before going on without
/// it: Redis answers in well under a millisecond when healthy.
const REDIS_TIMEOUT_DEFAULT: Duration = Duration::from_millis(250);

/// Fixed-window request quotas, shared by every gateway replica through
/// Redis. `0` switches a quota off.
///
/// The defaults are far above what a person or a well-behaved integration
/// sends, and above what `make bench` and the chaos checker send from one
/// address (the whole pipeline does about 4,000 transfers/s on the 2-core
/// reference machine; a chaos user's share peaks near 750/s): they stop
/// runaway clients and floods, and deployments tighten them.
#[derive(Debug, Clone)]
pub struct RateLimits {
    /// Requests per window per authenticated user (`RATE_LIMIT_USER_PER_MINUTE`).
    pub per_user: u64,
    /// Requests per window per client IP, authenticated or not, logins
    /// included (`RATE_LIMIT_IP_PER_MINUTE`).
    pub per_ip: u64,
    /// One minute; shorter only in tests.
    pub window: Duration,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            per_user: 120_000,
            per_ip: 600_000,
            window: RATE_WINDOW,
        }
    }
}

/// After `failures_max` failed logins for one username (or `ip_failures_max`
/// from one address) within `window`, every attempt is refused for
/// `base`, then twice as long after each further failure, up to `max`.
#[derive(Debug, Clone)]
pub struct LoginLockout {
    pub failures_max: u64,
    /// Higher than per user: many people may share one address (NAT).
    pub ip_failures_max: u64,
    /// Failures are forgotten this long after the last one.
    pub window: Duration,
    pub base: Duration,
    pub max: Duration,
}

impl Default for LoginLockout {
    fn default() -> Self {
        Self {
            failures_max: 5,
            ip_failures_max: 50,
            window: LOCKOUT_WINDOW_DEFAULT,
            base: LOCKOUT_BASE_DEFAULT,
            max: LOCKOUT_MAX_DEFAULT,
        }
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let addr = config::parse("GATEWAY_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?;
        Ok(Self {
            addr,
            database_url: config::secret("DATABASE_URL")?
                .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/bank".into()),
            database_connections: config::parse("GATEWAY_DB_CONNECTIONS", 16)?,
            // A secret too: it carries the service's NATS user and password.
            nats_url: config::secret("NATS_URL")?.unwrap_or_else(|| "nats://127.0.0.1:4222".into()),
            nats_inbox_prefix: config::string("NATS_INBOX_PREFIX", "_INBOX"),
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
            connections: shared::listen::Limits::from_env(
                "GATEWAY_MAX_CONNECTIONS",
                shared::listen::Limits::default().max_connections,
            )?,
            body_limit_bytes: config::parse("BODY_LIMIT_BYTES", 64 * 1024)?,
            rate_limits: RateLimits {
                per_user: config::parse(
                    "RATE_LIMIT_USER_PER_MINUTE",
                    RateLimits::default().per_user,
                )?,
                per_ip: config::parse("RATE_LIMIT_IP_PER_MINUTE", RateLimits::default().per_ip)?,
                window: RateLimits::default().window,
            },
            quotas: crate::quotas::RoleQuotas::from_env()?,
            login_lockout: {
                let d = LoginLockout::default();
                LoginLockout {
                    failures_max: config::parse("LOGIN_FAILURES_MAX", d.failures_max)?,
                    ip_failures_max: config::parse("LOGIN_IP_FAILURES_MAX", d.ip_failures_max)?,
                    window: Duration::from_secs(config::parse(
                        "LOGIN_FAILURE_WINDOW_SECS",
                        d.window.as_secs(),
                    )?),
                    base: config::millis("LOGIN_LOCKOUT_BASE_MS", d.base.as_millis() as u64)?,
                    max: Duration::from_secs(config::parse(
                        "LOGIN_LOCKOUT_MAX_SECS",
                        d.max.as_secs(),
                    )?),
                }
            },
            trusted_proxy_hops: config::parse("TRUSTED_PROXY_HOPS", 0)?,
            redis_timeout: config::millis(
                "GATEWAY_REDIS_TIMEOUT_MS",
                REDIS_TIMEOUT_DEFAULT.as_millis() as u64,
            )?,
            audit_queue_max: config::parse("AUDIT_QUEUE_MAX", 100_000)?,
            backlog_budget: config::millis(
                "BACKLOG_BUDGET_MS",
                BACKLOG_BUDGET_DEFAULT.as_millis() as u64,
            )?,
            refresh_ttl: Duration::from_secs(config::parse(
                "REFRESH_TOKEN_TTL_SECS",
                REFRESH_TTL_DEFAULT.as_secs(),
            )?),
        })
    }
}
