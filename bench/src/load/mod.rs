//! Driving the real API: logins, one WebSocket per bench user (commit events
//! close each transfer's end-to-end latency), closed-loop and open-loop
//! generators, and the measurement window (CPU, memory, per-stage metrics).
//!
//! `scenario` picks the accounts, `recorder` keeps the figures, `session`
//! holds the users and their sockets, `driver` sends the load,
//! `measure` reads CPU and metrics around the window and `probe` times
//! shed answers as a client outside the generator sees them.

mod driver;
mod measure;
pub mod probe;
mod recorder;
mod scenario;
mod session;

pub use driver::Driver;
pub use measure::{SHED_STAGE, cpu_now, scrape_all, stages};
pub use recorder::Latency;
pub use scenario::{HOT_ACCOUNTS, Scenario, seeded_rng};
pub use session::Session;
