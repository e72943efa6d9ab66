//! Logging setup shared by every binary.
//!
//! `RUST_LOG` sets the level (default `info`); `LOG_FORMAT=json` switches to
//! JSON lines for log shippers. Secrets never reach a log line: tokens and
//! passwords are not fields of any span or event, and URLs are redacted
//! before they are logged.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;

pub fn init(service: &'static str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = crate::config::var("LOG_FORMAT").is_some_and(|f| f == "json");
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true),
            )
            .try_init()
    } else {
        registry
            .with(tracing_subscriber::fmt::layer().compact())
            .try_init()
    };
    // Tests initialise more than once; the first subscriber wins.
    if result.is_ok() {
        tracing::info!(service, "logging initialised");
    }
}
