//! Domain types, wire formats, configuration, authentication and telemetry
//! shared by the gateway, processor and notifier. No I/O lives here except
//! reading configuration, declaring the JetStream topology and following
//! the session deny-list in Redis (`revocation`).

pub mod auth;
pub mod backoff;
pub mod batch_file;
pub mod batch_line;
pub mod config;
pub mod event_feed;
pub mod health;
pub mod hold;
#[cfg(feature = "http")]
pub mod listen;
pub mod messages;
pub mod metrics;
pub mod money;
pub mod problem;
pub mod redis_link;
pub mod revocation;
pub mod service;
pub mod shutdown;
pub mod statement;
pub mod streams;
pub mod telemetry;
pub mod tls;
pub mod transfer;
pub mod transfer_body;
