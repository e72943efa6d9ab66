//! The gateway's Redis connection for the login lockout and the rate
//! limiter's flushes, which must never make the API depend on Redis: while
//! Redis is away the lockout is skipped (fail open) and the rate limiter
//! counts on its own (see `rate_limit.rs`), counted in
//! `gateway_redis_fail_open_total{check}`. The breaker itself is
//! [`shared::redis_link`], shared with the processor's direct relay.

use std::time::Duration;

use shared::redis_link::Reporting;
pub(crate) use shared::redis_link::{Link, now_ms};

/// The gateway's link: fails open, counted and logged as such.
pub fn link(url: &str, timeout: Duration) -> Link {
    Link::new(
        url,
        timeout,
        Reporting {
            metric: "gateway_redis_fail_open_total",
            warning: "requests pass without rate-limit and lockout checks",
        },
    )
}
