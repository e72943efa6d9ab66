//! What every handler of the processor shares: the database, JetStream,
//! the settings, and which batches have a progress event due.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use ledger::LedgerError;
use shared::shutdown::Shutdown;
use sqlx::PgPool;
use uuid::Uuid;

use crate::Config;

/// First wait before retrying work a dependency (the ledger, the results
/// stream) could not take now.
pub const RETRY_BACKOFF_START: Duration = Duration::from_millis(100);
/// Longest wait between attempts: a dependency back within seconds is used
/// within seconds.
pub const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(5);

pub struct Ctx {
    pub pool: PgPool,
    pub js: jetstream::Context,
    pub config: Config,
    /// Results into Redis without the results stream (`None`: switched off).
    pub direct: Option<crate::relay::Direct>,
    /// Batches with a progress event already scheduled.
    pub progress_due: Arc<Mutex<HashSet<Uuid>>>,
    /// Whose results are handed over next: taken in commit order, before
    /// the transaction slot is given back (`apply::apply_group`).
    pub results_turn: tokio::sync::Mutex<()>,
}

/// Why a handler stopped before finishing its work.
pub enum Failure {
    /// Shutdown was requested while waiting for a dependency.
    Stopped,
    /// The ledger refused the work: retrying would fail the same way.
    Permanent(LedgerError),
}

/// Sleeps `d`, or less if shutdown is requested meanwhile.
pub async fn sleep_or_stop(d: Duration, shutdown: &mut Shutdown) {
    tokio::select! {
        _ = shutdown.wait() => {},
        _ = tokio::time::sleep(d) => {},
    }
}
