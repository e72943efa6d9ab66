//! A Redis connection that must never make its user depend on Redis: the
//! gateway's login lockout and rate-limit flushes, the processor's direct
//! relay of results.
//!
//! Every call is bounded by a timeout; any failure opens a breaker for
//! [`BREAKER_OPEN`], during which calls are not even tried and the caller
//! takes its fallback. Each skipped or failed call is counted in the
//! caller's metric (`<metric>{check}`), and failures are logged at most
//! every [`WARN_EVERY`].

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// Longest pause of the connection manager's one quick retry: a caller
/// must not wait on Redis for long (the breaker spaces out the rest).
const RECONNECT_DELAY_MAX: Duration = Duration::from_millis(100);
/// After a failure, Redis is left alone this long (one probe per period).
const BREAKER_OPEN: Duration = Duration::from_secs(1);
/// At most one warning per period while Redis is failing.
const WARN_EVERY: Duration = Duration::from_secs(5);

/// How a [`Link`] reports the calls it could not make.
#[derive(Debug, Clone, Copy)]
pub struct Reporting {
    /// Counter of skipped and failed calls, labelled `check`.
    pub metric: &'static str,
    /// Logged (with the error) at most every [`WARN_EVERY`] while failing.
    pub warning: &'static str,
}

pub struct Link {
    /// `None` when the URL does not parse: every call takes the fallback.
    conn: Option<ConnectionManager>,
    timeout: Duration,
    reporting: Reporting,
    /// Unix milliseconds before which Redis is not tried.
    open_until_ms: AtomicU64,
    /// Unix milliseconds of the last warning logged.
    warned_at_ms: AtomicU64,
}

/// Unix time in milliseconds (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Link {
    /// Connects lazily (on first use, reconnecting by itself after errors):
    /// the user starts and works without Redis.
    pub fn new(url: &str, timeout: Duration, reporting: Reporting) -> Self {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            // One quick retry; the breaker spaces out the rest.
            .set_number_of_retries(1)
            .set_max_delay(RECONNECT_DELAY_MAX);
        let conn = crate::tls::redis_client(url)
            .and_then(|client| ConnectionManager::new_lazy_with_config(client, config));
        let conn = match conn {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(error = %e, "REDIS_URL unusable: {}", reporting.warning);
                None
            }
        };
        Self {
            conn,
            timeout,
            reporting,
            open_until_ms: AtomicU64::new(0),
            warned_at_ms: AtomicU64::new(0),
        }
    }

    /// Runs `call` on the connection; `None` (take the fallback) if Redis
    /// is away, slow or the breaker is open. `check` names the caller in
    /// metrics.
    pub async fn run<T, F, Fut>(&self, check: &'static str, call: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let metric = self.reporting.metric;
        let Some(conn) = self.conn.clone() else {
            metrics::counter!(metric, "check" => check).increment(1);
            return None;
        };
        if now_ms() < self.open_until_ms.load(Ordering::Relaxed) {
            metrics::counter!(metric, "check" => check).increment(1);
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
        metrics::counter!(metric, "check" => check).increment(1);
        let warned = self.warned_at_ms.load(Ordering::Relaxed);
        if now.saturating_sub(warned) >= WARN_EVERY.as_millis() as u64
            && self
                .warned_at_ms
                .compare_exchange(warned, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(%error, check, "Redis unavailable: {}", self.reporting.warning);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;

    const REPORTING: Reporting = Reporting {
        metric: "test_redis_link_failed_total",
        warning: "test",
    };

    #[tokio::test]
    async fn a_failure_opens_the_breaker_and_later_calls_are_not_tried() {
        // Nothing listens on port 1: the connection is refused at once.
        let link = Link::new("redis://127.0.0.1:1", Duration::from_secs(1), REPORTING);
        let ping = |mut c: ConnectionManager| async move {
            redis::cmd("PING").query_async::<String>(&mut c).await
        };
        assert_eq!(link.run("test", ping).await, None);
        let tried = AtomicBool::new(false);
        let second = link
            .run("test", |_| async {
                tried.store(true, Ordering::Relaxed);
                Ok(())
            })
            .await;
        assert_eq!(second, None);
        assert!(!tried.load(Ordering::Relaxed), "the breaker is open");
    }

    #[tokio::test]
    async fn an_unusable_url_always_takes_the_fallback() {
        let link = Link::new("not a url", Duration::from_secs(1), REPORTING);
        assert_eq!(link.run("test", |_| async { Ok(1) }).await, None);
    }
}
