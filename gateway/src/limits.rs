//! Request quotas per user and per client IP, shared by every gateway
//! replica: fixed-window counters in Redis (`<prefix>:rl:<scope>:<who>:<window>`),
//! incremented with one pipelined round trip per request (INCR + PEXPIRE
//! for each counter).
//!
//! A local pre-check spares Redis (and the round trip) once a counter is
//! known to be over: the refusal is remembered until its window ends, which
//! is exactly what Redis would answer. Without Redis the quotas are not
//! enforced (fail open, see [`crate::redis_link`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::config::RateLimits;
use crate::error::{ApiError, LimitScope};
use crate::redis_link::Link;

/// Counters remembered as over their quota (per replica). Beyond it the
/// expired ones are swept, and if that is not enough, all are forgotten
/// (Redis still answers correctly, one round trip each).
const BLOCKED_MAX: usize = 10_000;
/// Counters outlive their window by this much (clock skew between replicas).
const EXPIRY_SLACK_MS: u64 = 1_000;

pub struct RateLimiter {
    limits: RateLimits,
    prefix: String,
    /// Counter key → when its window ends.
    blocked: Mutex<HashMap<String, Instant>>,
}

struct Counter {
    key: String,
    quota: u64,
    scope: LimitScope,
}

impl RateLimiter {
    pub fn new(limits: RateLimits, redis_prefix: &str) -> Self {
        Self {
            limits,
            prefix: redis_prefix.to_owned(),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request of `user` (if authenticated) from `ip`; refuses it
    /// with `429` if either is over its quota in the current window.
    pub async fn check(&self, link: &Link, user: Option<Uuid>, ip: &str) -> Result<(), ApiError> {
        let window_ms = (self.limits.window.as_millis() as u64).max(1);
        let now_ms = crate::redis_link::now_ms();
        let window = now_ms / window_ms;
        let left = Duration::from_millis(window_ms - now_ms % window_ms);
        let mut counters = Vec::with_capacity(2);
        if let Some(user) = user
            && self.limits.per_user > 0
        {
            counters.push(Counter {
                key: format!("{}:rl:user:{user}:{window}", self.prefix),
                quota: self.limits.per_user,
                scope: LimitScope::User,
            });
        }
        if self.limits.per_ip > 0 {
            counters.push(Counter {
                key: format!("{}:rl:ip:{ip}:{window}", self.prefix),
                quota: self.limits.per_ip,
                scope: LimitScope::Ip,
            });
        }
        if counters.is_empty() {
            return Ok(());
        }
        if let Some(scope) = self.known_over(&counters) {
            metrics::counter!("gateway_rate_limited_total", "scope" => scope.as_str(), "source" => "local")
                .increment(1);
            return Err(limited(scope, left));
        }
        let mut pipe = redis::pipe();
        for c in &counters {
            pipe.cmd("INCR").arg(&c.key);
            pipe.cmd("PEXPIRE")
                .arg(&c.key)
                .arg(window_ms + EXPIRY_SLACK_MS)
                .ignore();
        }
        let counts: Option<Vec<u64>> = link
            .run("rate_limit", |mut conn| async move {
                pipe.query_async(&mut conn).await
            })
            .await;
        let Some(counts) = counts else {
            return Ok(());
        };
        for (c, count) in counters.iter().zip(counts) {
            if count > c.quota {
                self.remember(&c.key, left);
                metrics::counter!("gateway_rate_limited_total", "scope" => c.scope.as_str(), "source" => "redis")
                    .increment(1);
                return Err(limited(c.scope, left));
            }
        }
        Ok(())
    }

    fn known_over(&self, counters: &[Counter]) -> Option<LimitScope> {
        let blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        if blocked.is_empty() {
            return None;
        }
        let now = Instant::now();
        counters
            .iter()
            .find(|c| blocked.get(&c.key).is_some_and(|until| *until > now))
            .map(|c| c.scope)
    }

    fn remember(&self, key: &str, left: Duration) {
        let now = Instant::now();
        let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        if blocked.len() >= BLOCKED_MAX {
            blocked.retain(|_, until| *until > now);
            if blocked.len() >= BLOCKED_MAX {
                blocked.clear();
            }
        }
        blocked.insert(key.to_owned(), now + left);
    }
}

fn limited(scope: LimitScope, left: Duration) -> ApiError {
    ApiError::RateLimited {
        scope,
        retry_after_secs: left.as_millis().div_ceil(1000).max(1) as u64,
    }
}
