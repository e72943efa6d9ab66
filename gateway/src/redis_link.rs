//! The gateway's Redis connection for the login lockout and the rate
//! limiter's flushes, which must never make the API depend on Redis.
//!
//! Every call is bounded by a timeout; any failure opens a breaker for
//! [`BREAKER_OPEN`], during which calls are not even tried: while Redis is
//! away the lockout is skipped (fail open) and the rate limiter counts on
//! its own (see `rate_limit.rs`), counted in `gateway_redis_fail_open_total{check}`
//! and logged at most every [`WARN_EVERY`].

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// Longest pause of the connection manager's one quick retry: a request
/// must not wait on Redis for long (the breaker spaces out the rest).
const RECONNECT_DELAY_MAX: Duration = Duration::from_millis(100);
/// After a failure, Redis is left alone this long (one probe per period).
const BREAKER_OPEN: Duration = Duration::from_secs(1);
/// At most one warning per period while Redis is failing.
const WARN_EVERY: Duration = Duration::from_secs(5);

pub struct Link {
    /// `None` when `REDIS_URL` does not parse: every check fails open.
    conn: Option<ConnectionManager>,
    timeout: Duration,
    /// Unix milliseconds before which Redis is not tried.
    open_until_ms: AtomicU64,
    /// Unix milliseconds of the last warning logged.
    warned_at_ms: AtomicU64,
}

/// Unix time in milliseconds (0 if the clock is before 1970).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Link {
    /// Connects lazily (on first use, reconnecting by itself after errors):
    /// the gateway starts and serves without Redis.
    pub fn new(url: &str, timeout: Duration) -> Self {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            // One quick retry; the breaker spaces out the rest.
            .set_number_of_retries(1)
            .set_max_delay(RECONNECT_DELAY_MAX);
        let conn = shared::tls::redis_client(url)
            .and_then(|client| ConnectionManager::new_lazy_with_config(client, config));
        let conn = match conn {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(error = %e, "REDIS_URL unusable: rate limits and lockout are off");
                None
            }
        };
        Self {
            conn,
            timeout,
            open_until_ms: AtomicU64::new(0),
            warned_at_ms: AtomicU64::new(0),
        }
    }

    /// Runs `call` on the connection; `None` (fail open) if Redis is away,
    /// slow or the breaker is open. `check` names the caller in metrics.
    pub async fn run<T, F, Fut>(&self, check: &'static str, call: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let Some(conn) = self.conn.clone() else {
            metrics::counter!("gateway_redis_fail_open_total", "check" => check).increment(1);
            return None;
        };
        if now_ms() < self.open_until_ms.load(Ordering::Relaxed) {
            metrics::counter!("gateway_redis_fail_open_total", "check" => check).increment(1);
            return None;
        }
        let error = match tokio::time::timeout(self.timeout, call(conn)).await {
            Ok(Ok(v)) => return Some(v),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {:?}", self.timeout),
        };
        let now = now_ms();
        self.open_until_ms
            .store(now + BREAKER_OPEN.as_millis() as u64, Ordering::Relaxed);
        metrics::counter!("gateway_redis_fail_open_total", "check" => check).increment(1);
        let warned = self.warned_at_ms.load(Ordering::Relaxed);
        if now.saturating_sub(warned) >= WARN_EVERY.as_millis() as u64
            && self
                .warned_at_ms
                .compare_exchange(warned, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                %error,
                check,
                "Redis unavailable: requests pass without rate-limit and lockout checks"
            );
        }
        None
    }
}
