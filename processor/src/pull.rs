//! The pull loop: messages from the durable consumer, gathered into batches
//! (up to `batch_max`: whatever was delivered meanwhile, see [`next_batch`]),
//! handed to the handlers in order, and settled in one place.
//!
//! Handling order within a pulled batch: atomic batches and undecodable
//! messages as they come, then the transfers together in one transaction
//! (the `applier`'s, shared with other workers' groups), then each transfer
//! on its last allowed delivery alone (a poison message that kills
//! processes cannot take other transfers with it). A group the database
//! refuses is split and each transfer applied alone; one that fails alone
//! is dead-lettered.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::Message;
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::consumer::pull::Stream;
use futures::FutureExt;
use shared::shutdown::Shutdown;
use tokio_stream::StreamExt;

use crate::applier::Applier;
use crate::apply::{self, Item};
use crate::ctx::{Ctx, Failure, sleep_or_stop};
use crate::disposition::{self, Disposition, RETRY_SOON};
use crate::{atomic, dead_letter};

/// Idle heartbeat of a pull: a silent server is noticed within two of them.
pub const PULL_HEARTBEAT: Duration = Duration::from_secs(5);
/// How long one pull request stays open before a fresh one is made.
pub const PULL_EXPIRES: Duration = Duration::from_secs(30);
/// Wait before pulling again after JetStream refused a pull.
pub const PULL_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Opens a pull on `consumer` (up to `batch_max` messages per pull request),
/// the same way for the transfers and the results. On a refused pull it
/// logs, waits [`PULL_RETRY_DELAY`] (cut short by shutdown) and answers
/// `None`: the caller loops and tries again.
pub async fn open(
    consumer: &PullConsumer,
    batch_max: usize,
    shutdown: &mut Shutdown,
) -> Option<Stream> {
    let pulled = consumer
        .stream()
        .max_messages_per_batch(batch_max)
        .heartbeat(PULL_HEARTBEAT)
        .expires(PULL_EXPIRES)
        .messages()
        .await;
    match pulled {
        Ok(messages) => Some(messages),
        Err(e) => {
            let stream = consumer.cached_info().config.durable_name.clone();
            tracing::warn!(error = %e, consumer = ?stream, "cannot pull from JetStream; retrying");
            sleep_or_stop(PULL_RETRY_DELAY, shutdown).await;
            None
        }
    }
}

/// One unit of work from a pulled batch.
enum Work {
    Atomic(Message),
    Undecodable(Message),
    /// Transfers applied in one transaction.
    Transfers {
        group: Vec<Item>,
        /// Never merged with other groups (a last delivery, or one transfer
        /// of a refused group).
        alone: bool,
    },
}

pub async fn run(
    ctx: Arc<Ctx>,
    applier: Applier<Item>,
    consumer: PullConsumer,
    mut shutdown: Shutdown,
) {
    while !shutdown.is_triggered() {
        let Some(mut messages) = open(&consumer, ctx.config.batch_max, &mut shutdown).await else {
            continue;
        };
        loop {
            let pulled = tokio::select! {
                _ = shutdown.wait() => return,
                pulled = next_batch(&mut messages, ctx.config.batch_max, ctx.config.linger) => pulled,
            };
            let Some(pulled) = pulled else { break };
            let mut batch = Vec::with_capacity(pulled.len());
            let mut broken = false;
            for item in pulled {
                match item {
                    Ok(m) => batch.push(m),
                    // Missed heartbeats, reconnects, a deleted or recreated
                    // consumer (see watchdog.rs): start a fresh pull.
                    Err(e) => {
                        tracing::debug!(error = %e, "pull stream interrupted; pulling again");
                        broken = true;
                    }
                }
            }
            if !batch.is_empty() {
                handle(&ctx, &applier, batch, &shutdown).await;
            }
            if broken {
                break;
            }
        }
    }
}

/// The next batch from `messages` (`None` once the pull ended): waits for
/// one message, then takes every message already delivered, up to
/// `batch_max`, and with a `linger` waits that long for more.
///
/// Why no linger by default: a timer holds every message of a quiet system
/// for its length (tokio's timer also rounds up to the next millisecond),
/// while under load deliveries pile up during each apply and the next
/// batch is big without waiting.
async fn next_batch<S, T>(messages: &mut S, batch_max: usize, linger: Duration) -> Option<Vec<T>>
where
    S: tokio_stream::Stream<Item = T> + Unpin,
{
    let first = messages.next().await?;
    let mut batch = Vec::with_capacity(batch_max.min(64));
    batch.push(first);
    let deadline = tokio::time::Instant::now() + linger;
    while batch.len() < batch_max {
        let next = if linger.is_zero() {
            messages.next().now_or_never()
        } else {
            tokio::time::timeout_at(deadline, messages.next())
                .await
                .ok()
        };
        // Nothing more delivered (in time), or the pull ended: the caller
        // learns the latter on its next call.
        let Some(Some(item)) = next else { break };
        batch.push(item);
    }
    Some(batch)
}

/// Handles one pulled batch: plans the work, runs it in order, settles
/// every message.
async fn handle(ctx: &Ctx, applier: &Applier<Item>, messages: Vec<Message>, shutdown: &Shutdown) {
    let started = Instant::now();
    let received_at = chrono::Utc::now();
    let mut queue = VecDeque::new();
    let mut together = Vec::with_capacity(messages.len());
    let mut alone = Vec::new();
    for message in messages {
        if ctx.config.topology.is_batch_subject(&message.subject) {
            queue.push_back(Work::Atomic(message));
            continue;
        }
        let Some(cmd) = apply::command(&message) else {
            queue.push_back(Work::Undecodable(message));
            continue;
        };
        let item = apply::receive(message, cmd, received_at);
        if apply::last_chance(ctx, &item) {
            alone.push(item);
        } else {
            together.push(item);
        }
    }
    let size = together.len() + alone.len();
    if !together.is_empty() {
        queue.push_back(Work::Transfers {
            group: together,
            alone: false,
        });
    }
    queue.extend(alone.into_iter().map(|item| Work::Transfers {
        group: vec![item],
        alone: true,
    }));

    while let Some(work) = queue.pop_front() {
        let settled: Vec<(Message, Disposition)> = match work {
            Work::Atomic(m) => {
                let d = atomic::handle(ctx, &m, shutdown).await;
                vec![(m, d)]
            }
            Work::Undecodable(m) => {
                let d = dead_letter::handle(ctx, &m, None, "undecodable message").await;
                vec![(m, d)]
            }
            Work::Transfers { group, alone } => match applier.apply(group, alone).await {
                (group, Ok(())) => every(group, Disposition::Ack),
                (group, Err(Failure::Stopped)) => every(group, Disposition::Nak(RETRY_SOON)),
                (group, Err(Failure::Permanent(e))) if group.len() > 1 => {
                    tracing::warn!(error = %e, size = group.len(), "batch refused; applying one by one");
                    // Next, in order, before anything else queued.
                    for item in group.into_iter().rev() {
                        queue.push_front(Work::Transfers {
                            group: vec![item],
                            alone: true,
                        });
                    }
                    Vec::new()
                }
                (group, Err(Failure::Permanent(e))) => {
                    let mut out = Vec::with_capacity(group.len());
                    for item in group {
                        let error = e.to_string();
                        let d =
                            dead_letter::handle(ctx, &item.message, Some(&item.request), &error)
                                .await;
                        out.push((item.message, d));
                    }
                    out
                }
            },
        };
        for (message, disposition) in &settled {
            disposition::settle(message, *disposition).await;
        }
    }
    metrics::histogram!("processor_batch_size").record(size as f64);
    metrics::histogram!("processor_batch_seconds").record(started.elapsed().as_secs_f64());
}

fn every(group: Vec<Item>, d: Disposition) -> Vec<(Message, Disposition)> {
    group.into_iter().map(|item| (item.message, d)).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::mpsc;
    use tokio_stream::wrappers::UnboundedReceiverStream;

    use super::next_batch;

    #[tokio::test]
    async fn takes_what_was_delivered_up_to_the_bound_without_waiting() {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut messages = UnboundedReceiverStream::new(rx);
        for i in 0..5 {
            tx.send(i).unwrap();
        }
        assert_eq!(
            next_batch(&mut messages, 3, Duration::ZERO).await,
            Some(vec![0, 1, 2])
        );
        assert_eq!(
            next_batch(&mut messages, 3, Duration::ZERO).await,
            Some(vec![3, 4])
        );
        // Nothing delivered: it waits for the first message, then goes.
        let sender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            tx.send(5).unwrap();
            tx
        });
        assert_eq!(
            next_batch(&mut messages, 3, Duration::ZERO).await,
            Some(vec![5])
        );
        drop(sender.await.unwrap());
        assert_eq!(next_batch(&mut messages, 3, Duration::ZERO).await, None);
    }

    #[tokio::test]
    async fn a_linger_waits_for_more() {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut messages = UnboundedReceiverStream::new(rx);
        tx.send(1).unwrap();
        // Sent only once the gatherer waits; then the pull ends.
        tokio::spawn(async move { tx.send(2).unwrap() });
        assert_eq!(
            next_batch(&mut messages, 10, Duration::from_secs(60)).await,
            Some(vec![1, 2])
        );
        assert_eq!(
            next_batch(&mut messages, 10, Duration::from_secs(60)).await,
            None
        );
    }
}
