//! Coalesced transfer lookups for the POST hot path.
//!
//! Every POST must know whether its transfer id was already applied (a retry
//! after JetStream's duplicate window has passed can only be answered from
//! the ledger). Instead of one query per request, concurrent lookups are
//! gathered and answered by one `WHERE id = ANY($1)` query: under load the
//! cost is one round trip per batch of requests, at low load one per request
//! with no added wait (lookups wait only for a query already running).

use std::collections::HashMap;

use ledger::LedgerError;
use ledger::transfers::TransferRow;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// Most ids in one query.
const BATCH_MAX: usize = 512;
/// Lookups queued for the next query (beyond it, callers wait:
/// back-pressure).
const QUEUE_MAX: usize = 8192;

type Reply = oneshot::Sender<Result<Option<TransferRow>, String>>;

#[derive(Clone)]
pub struct Lookups {
    tx: mpsc::Sender<(Uuid, Reply)>,
}

impl Lookups {
    pub fn start(pool: PgPool) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_MAX);
        tokio::spawn(run(pool, rx));
        Self { tx }
    }

    /// The stored transfer with this id, if any.
    pub async fn get(&self, id: Uuid) -> Result<Option<TransferRow>, LedgerError> {
        let (reply, answer) = oneshot::channel();
        let closed = || LedgerError::Conflict("lookup service stopped".into());
        self.tx.send((id, reply)).await.map_err(|_| closed())?;
        match answer.await.map_err(|_| closed())? {
            Ok(row) => Ok(row),
            // Lookups fail together when the database does: report it as
            // unavailable (transient), which the API maps to 503.
            Err(e) => Err(LedgerError::Conflict(e)),
        }
    }
}

/// Answers the queued lookups, one query at a time: the lookups that
/// arrive while a query runs wait for it and go together in the next, so
/// at partial load requests share a round trip instead of each taking a
/// free connection alone. With up to four queries at once, the 50 % open
/// loop (2,750/s) cost PostgreSQL 216-227 core-µs per transfer against
/// 178-179 with one, and its e2e p99 was 106-240 ms against 62-184 ms
/// (four pairs of short bench runs, README Performance). One at a time
/// keeps up: at 64 ids per query PostgreSQL spends ~6 core-µs per id
/// (make bench's lookup probe), over 150,000 ids per core-second, far
/// above the gateway's rate.
async fn run(pool: PgPool, mut rx: mpsc::Receiver<(Uuid, Reply)>) {
    let mut batch = Vec::with_capacity(BATCH_MAX);
    // Wait for at least one lookup, then take whatever else is queued.
    while rx.recv_many(&mut batch, BATCH_MAX).await > 0 {
        let ids: Vec<Uuid> = batch.iter().map(|(id, _)| *id).collect();
        metrics::histogram!("gateway_lookup_batch_size").record(ids.len() as f64);
        match ledger::transfers::get_many(&pool, &ids).await {
            Ok(rows) => {
                let rows: HashMap<Uuid, TransferRow> =
                    rows.into_iter().map(|r| (r.id, r)).collect();
                // Cloned, not taken: requests retried with one key ask for
                // one id, and each must get the row (only hits are cloned,
                // and a hit is a replay).
                for (id, reply) in batch.drain(..) {
                    let _ = reply.send(Ok(rows.get(&id).cloned()));
                }
            }
            Err(e) => {
                let message = e.to_string();
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(message.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;
    use shared::money::Currency;
    use shared::transfer::IdempotencyKey;

    use super::*;

    #[tokio::test]
    async fn lookups_of_one_id_sharing_a_query_all_get_the_row() {
        let db = testkit::TestDb::new().await;
        let user = ledger::users::ensure(&db.pool, "alice", "!", "customer")
            .await
            .unwrap();
        let eur = Currency::parse("EUR").unwrap();
        let account = Uuid::new_v4();
        ledger::admin::create_account(&db.pool, account, user, eur, Decimal::ZERO)
            .await
            .unwrap();
        let key = IdempotencyKey::parse("seed").unwrap();
        ledger::admin::fund(&db.pool, account, eur, Decimal::ONE, &key)
            .await
            .unwrap();
        let (id,): (Uuid,) = sqlx::query_as("SELECT id FROM transfers")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        let lookups = Lookups::start(db.pool.clone());
        // One thread: both lookups are queued before the lookup task runs,
        // so they go in one query (two requests retrying with one key).
        let (a, b) = tokio::join!(lookups.get(id), lookups.get(id));
        assert_eq!(a.unwrap().map(|r| r.id), Some(id));
        assert_eq!(b.unwrap().map(|r| r.id), Some(id));
    }
}
