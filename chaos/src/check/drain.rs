//! The end of the run: every accepted transfer in the ledger, then both
//! work queues (commands and results) empty. How long each took is part of
//! the report.

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
    /// Seconds until both work queues (commands, results) were empty.
    pub queue_secs: f64,
    pub queue_empty: bool,
    /// Both queues as last seen.
    pub queues: String,
    pub dead_letters: i64,
}

/// Waits until every accepted transfer is in the ledger, then until the
/// processor's and the relay's queues hold nothing stored, pending or
/// unacknowledged.
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
    // Both work queues: the commands (processor) and the results (relay).
    // A result left in its stream is a customer never told (a hold's final
    // state once went missing that way), so it fails the run here rather
    // than only as a missing WebSocket event.
    let queues = [
        (
            "commands",
            &topology.transfers_stream,
            &topology.processor_consumer,
        ),
        (
            "results",
            &topology.results_stream,
            &topology.relay_consumer,
        ),
    ];
    let mut queue_empty = false;
    let mut last = Vec::new();
    let mut reported = Instant::now();
    while start.elapsed() < bound + QUEUE_GRACE {
        last.clear();
        for (name, stream, consumer) in queues {
            last.push((name, queue_state(&js, stream, consumer).await));
        }
        if last
            .iter()
            .all(|(_, q)| q.as_ref().is_some_and(QueueState::empty))
        {
            queue_empty = true;
            break;
        }
        if reported.elapsed() > PROGRESS_INTERVAL {
            reported = Instant::now();
            println!("[chaos] queues: {}", describe(&last));
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
        queues: describe(&last),
        dead_letters,
    })
}

/// One work queue as JetStream reports it.
struct QueueState {
    /// Messages still in the stream (a work queue deletes them on ack).
    stored: u64,
    pending: u64,
    unacked: usize,
    redelivered: usize,
}

impl QueueState {
    /// The stream must be empty too: a consumer can report nothing pending
    /// while messages sit below its ack floor.
    fn empty(&self) -> bool {
        self.stored == 0 && self.pending == 0 && self.unacked == 0
    }
}

async fn queue_state(
    js: &async_nats::jetstream::Context,
    stream: &str,
    consumer: &str,
) -> Option<QueueState> {
    // Each lookup already fetches the current info: one request apiece.
    let stream = js.get_stream(stream).await.ok()?;
    let stored = stream.cached_info().state.messages;
    let consumer = stream
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>(consumer)
        .await
        .ok()?;
    let info = consumer.cached_info();
    Some(QueueState {
        stored,
        pending: info.num_pending,
        unacked: info.num_ack_pending,
        redelivered: info.num_redelivered,
    })
}

fn describe(queues: &[(&str, Option<QueueState>)]) -> String {
    queues
        .iter()
        .map(|(name, q)| match q {
            Some(q) => format!(
                "{name} {} stored, {} pending, {} unacked, {} redelivered",
                q.stored, q.pending, q.unacked, q.redelivered
            ),
            None => format!("{name} unreadable"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}
