//! The end of the run: every accepted transfer in the ledger, then the
//! processor's queue empty. How long each took is part of the report.

use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::bank::{Bank, PREFIX};

/// How often the ledger and the queue are looked at while draining.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How much longer than the ledger's bound the queue may take to empty
/// (acks of the last batches, redeliveries after a kill).
const QUEUE_GRACE: Duration = Duration::from_secs(30);
/// How often the queue's state is printed while it is not empty.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);

/// How the end of the run went.
pub struct Drain {
    /// Seconds until every accepted transfer was in the ledger.
    pub final_secs: f64,
    pub all_final: bool,
    /// Seconds until the processor's consumer had nothing pending or unacked.
    pub queue_secs: f64,
    pub queue_empty: bool,
    pub dead_letters: i64,
}

/// Waits until every accepted transfer is in the ledger, then until the
/// processor's consumer has nothing pending or unacknowledged.
pub async fn drain(bank: &Bank, accepted: &[Uuid], bound: Duration) -> anyhow::Result<Drain> {
    let start = Instant::now();
    let mut stored = 0;
    while start.elapsed() < bound {
        stored = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM transfers WHERE id = ANY($1)")
            .bind(accepted)
            .fetch_one(&bank.pool)
            .await
            .unwrap_or(0);
        if stored as usize == accepted.len() {
            break;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    let all_final = stored as usize == accepted.len();
    let final_secs = start.elapsed().as_secs_f64();
    let client = async_nats::connect(bank.nats.url()).await?;
    let js = async_nats::jetstream::new(client);
    let topology = shared::streams::Topology::new(PREFIX);
    let mut queue_empty = false;
    let mut reported = Instant::now();
    while start.elapsed() < bound + QUEUE_GRACE {
        // The stream itself must be empty too: a consumer can report
        // nothing pending while messages sit below its ack floor.
        if let Ok(mut stream) = js.get_stream(&topology.transfers_stream).await
            && let Ok(stored) = stream.info().await.map(|i| i.state.messages)
            && let Ok(mut consumer) = stream
                .get_consumer::<async_nats::jetstream::consumer::pull::Config>(
                    &topology.processor_consumer,
                )
                .await
            && let Ok(info) = consumer.info().await
        {
            if stored == 0 && info.num_pending == 0 && info.num_ack_pending == 0 {
                queue_empty = true;
                break;
            }
            if reported.elapsed() > PROGRESS_INTERVAL {
                reported = Instant::now();
                println!(
                    "[chaos] queue: {stored} stored, {} pending, {} unacked, {} redelivered",
                    info.num_pending, info.num_ack_pending, info.num_redelivered
                );
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    let queue_secs = start.elapsed().as_secs_f64();
    let dead_letters = match js.get_stream(&topology.dead_stream).await {
        Ok(mut s) => s
            .info()
            .await
            .map(|i| i.state.messages as i64)
            .unwrap_or(-1),
        Err(_) => -1,
    };
    Ok(Drain {
        final_secs,
        all_final,
        queue_secs,
        queue_empty,
        dead_letters,
    })
}
