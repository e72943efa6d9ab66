//! Batch progress for its owner, throttled: at most one event per
//! [`PROGRESS_INTERVAL`] per batch, sent that long after the first payment
//! applied since the last one, so the last (the batch done) is never
//! skipped. Best effort: the next payment, or a GET, shows progress too.

use std::sync::Arc;
use std::time::Duration;

use ledger::batches::Tally;
use shared::messages::{BatchProgress, ResultBatch, SCHEMA_VERSION};
use uuid::Uuid;

use crate::ctx::Ctx;

/// How often a batch's owner hears about its progress, at most.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(500);

/// Schedules a progress event for `batch` unless one is already due.
pub fn schedule(ctx: &Ctx, batch: Uuid, owner: Uuid) {
    {
        let mut due = ctx.progress_due.lock().unwrap_or_else(|e| e.into_inner());
        if !due.insert(batch) {
            return;
        }
    }
    let (pool, js, subject) = (
        ctx.pool.clone(),
        ctx.js.clone(),
        ctx.config.topology.results_subject.clone(),
    );
    let due = Arc::clone(&ctx.progress_due);
    tokio::spawn(async move {
        tokio::time::sleep(PROGRESS_INTERVAL).await;
        due.lock().unwrap_or_else(|e| e.into_inner()).remove(&batch);
        let Ok(Some(row)) = ledger::batches::get(&pool, batch).await else {
            return;
        };
        let Ok(counts) = ledger::batches::counts(&pool, batch).await else {
            return;
        };
        let results = ResultBatch {
            v: SCHEMA_VERSION,
            transfers: vec![],
            accounts: vec![],
            batches: vec![(
                owner,
                progress(batch, i64::from(row.count), Tally::of(&counts)),
            )],
            holds: vec![],
        };
        if let Ok(payload) = serde_json::to_vec(&results)
            && let Ok(ack) = js.publish(subject, payload.into()).await
        {
            let _ = ack.await;
        }
    });
}

/// A batch of `count` payments of which `tally` are settled.
fn progress(id: Uuid, count: i64, tally: Tally) -> BatchProgress {
    let pending = (count - tally.committed - tally.rejected).max(0);
    BatchProgress {
        id,
        count,
        pending,
        committed: tally.committed,
        rejected: tally.rejected,
        done: pending == 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_done_when_nothing_is_pending() {
        let p = progress(
            Uuid::nil(),
            3,
            Tally {
                committed: 2,
                rejected: 0,
            },
        );
        assert_eq!((p.pending, p.done), (1, false));
        let p = progress(
            Uuid::nil(),
            3,
            Tally {
                committed: 2,
                rejected: 1,
            },
        );
        assert_eq!((p.pending, p.done), (0, true));
    }
}
