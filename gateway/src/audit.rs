//! Writing the audit trail off the request path.
//!
//! Handlers hand records to a bounded queue ([`Auditor::record`] never
//! waits) and one background task appends them in batches gathered over
//! up to [`LINGER`] (`ledger::audit::append`: one transaction, one
//! multi-row INSERT, chained in queue order). So `POST /v1/transfers`
//! gains no database round trip.
//!
//! The trade-off, accepted deliberately: a record is written shortly *after*
//! the response, not with it. Records still queued are lost if the process
//! is killed (`kill -9`, OOM) — a graceful shutdown flushes them — and
//! records are dropped (counted in `gateway_audit_dropped_total`, logged)
//! when the queue is full because PostgreSQL has been away for long. Money
//! itself is never unaccounted for: every applied transfer is in the ledger
//! with its owner and Idempotency-Key; the audit trail adds who asked, from
//! where, and the refusals.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::response::Response;
use ledger::audit::Record;
use shared::backoff::Backoff;
use sqlx::PgPool;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::ApiError;
use crate::responses::REPLAYED;

/// Most records per INSERT.
const BATCH_MAX: usize = 1_000;
/// How long the writer waits for more records once it has one (records
/// are off the request path: this delays nothing a client waits for).
const LINGER: Duration = Duration::from_millis(25);
/// How long a shutdown keeps retrying to flush while PostgreSQL is away.
const FLUSH_GRACE: Duration = Duration::from_secs(5);
/// First pause before retrying a failed write: PostgreSQL often answers
/// again within tens of milliseconds (a failover, a pool blip).
const RETRY_DELAY_MIN: Duration = Duration::from_millis(50);
/// Longest pause between retries of a failed write.
const RETRY_DELAY_MAX: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Auditor {
    tx: mpsc::Sender<Record>,
}

/// The background writer; [`Writer::finish`] flushes it at shutdown.
pub struct Writer {
    closing: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Auditor {
    pub fn start(pool: PgPool, queue_max: usize) -> (Self, Writer) {
        let (tx, rx) = mpsc::channel(queue_max.max(1));
        let (closing, closing_rx) = watch::channel(false);
        let task = tokio::spawn(run(pool, rx, closing_rx));
        (Self { tx }, Writer { closing, task })
    }

    /// Queues `record`; if the queue is full or closed it is dropped and counted.
    pub fn record(&self, record: Record) {
        if self.tx.try_send(record).is_err() {
            metrics::counter!("gateway_audit_dropped_total", "why" => "queue_full").increment(1);
            // One line per period, not one per dropped record.
            static LOGGED_AT_SECS: AtomicU64 = AtomicU64::new(0);
            let now = shared::auth::unix_now();
            if LOGGED_AT_SECS.swap(now, Ordering::Relaxed) != now {
                tracing::error!("audit queue full: audit records are being dropped");
            }
        }
    }
}

impl Writer {
    /// Writes what is queued, then stops (waiting at most `wait`).
    pub async fn finish(self, wait: Duration) {
        let _ = self.closing.send(true);
        if tokio::time::timeout(wait, self.task).await.is_err() {
            tracing::error!("audit writer did not finish in time; queued records are lost");
        }
    }
}

async fn run(pool: PgPool, mut rx: mpsc::Receiver<Record>, mut closing: watch::Receiver<bool>) {
    let mut batch = Vec::with_capacity(BATCH_MAX);
    // What `write` consults while retrying (the other one is awaited below).
    let flag = closing.clone();
    loop {
        tokio::select! {
            n = rx.recv_many(&mut batch, BATCH_MAX) => {
                if n == 0 {
                    return;
                }
                // Gather for a moment: the chain makes writers queue on one
                // row lock, and one transaction per record cost PostgreSQL
                // more than the transfer itself at moderate load.
                let deadline = Instant::now() + LINGER;
                while batch.len() < BATCH_MAX {
                    let room = BATCH_MAX - batch.len();
                    match tokio::time::timeout_at(deadline, rx.recv_many(&mut batch, room)).await {
                        Ok(n) if n > 0 => {}
                        _ => break,
                    }
                }
                write(&pool, &mut batch, &flag).await;
            }
            // The guard `wait_for` returns is dropped inside (it is not Send).
            () = async { let _ = closing.wait_for(|c| *c).await; } => {
                // No more records are accepted; write what is queued.
                rx.close();
                while rx.recv_many(&mut batch, BATCH_MAX).await > 0 {
                    write(&pool, &mut batch, &flag).await;
                }
                return;
            }
        }
    }
}

/// Appends `batch` (then empties it), retrying transient failures in place
/// so the chain keeps the queue's order.
async fn write(pool: &PgPool, batch: &mut Vec<Record>, closing: &watch::Receiver<bool>) {
    let mut backoff = Backoff::new(RETRY_DELAY_MIN, RETRY_DELAY_MAX);
    let mut give_up_at: Option<Instant> = None;
    loop {
        match ledger::audit::append(pool, batch).await {
            Ok(_) => {
                metrics::counter!("gateway_audit_written_total").increment(batch.len() as u64);
                break;
            }
            Err(e) if e.is_transient() => {
                if *closing.borrow() {
                    let deadline = *give_up_at.get_or_insert_with(|| Instant::now() + FLUSH_GRACE);
                    if Instant::now() > deadline {
                        tracing::error!(error = %e, records = batch.len(), "audit records lost at shutdown: database unavailable");
                        metrics::counter!("gateway_audit_dropped_total", "why" => "shutdown")
                            .increment(batch.len() as u64);
                        break;
                    }
                }
                tracing::warn!(error = %e, records = batch.len(), "audit write failed; retrying");
                backoff.wait().await;
            }
            Err(e) => {
                // Records are sanitised before writing, so this is a bug or a
                // schema problem: retrying would fail the same way.
                tracing::error!(error = %e, records = batch.len(), "audit records refused by the database");
                metrics::counter!("gateway_audit_dropped_total", "why" => "refused")
                    .increment(batch.len() as u64);
                break;
            }
        }
    }
    batch.clear();
}

/// The audit record of a money-moving request, its outcome taken from the
/// response: `accepted`, `replayed`, `refused` (4xx, with status and
/// problem type) or `error` (5xx).
pub fn outcome(mut record: Record, result: &Result<Response, ApiError>) -> Record {
    let (outcome, problem) = match result {
        Ok(r) if r.headers().contains_key(REPLAYED) => ("replayed", None),
        Ok(_) => ("accepted", None),
        Err(e) => {
            let (status, slug) = e.summary();
            let outcome = if status >= 500 { "error" } else { "refused" };
            (outcome, Some((status, slug)))
        }
    };
    record.outcome = outcome.to_owned();
    if let (Some((status, slug)), serde_json::Value::Object(map)) = (problem, &mut record.detail) {
        map.insert("status".into(), status.into());
        map.insert("problem".into(), slug.into());
    }
    record
}
