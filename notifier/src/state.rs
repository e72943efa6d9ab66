use std::sync::Arc;

use redis::aio::ConnectionManager;
use shared::shutdown::Shutdown;

use crate::Config;
use crate::hub::Hub;

pub struct AppState {
    pub config: Config,
    pub hub: Arc<Hub>,
    /// For replay reads (multiplexed, reconnects by itself).
    pub redis: ConnectionManager,
    pub shutdown: Shutdown,
    /// Revoked sessions: refused at connect, open sockets closed.
    pub revocations: shared::revocation::Revocations,
}
