//! Results relay: result batches from JetStream into Redis, where every
//! notifier replica picks them up.
//!
//! One script run per batch ([`shared::event_feed::RELAY_SCRIPT`]), atomic
//! per batch: it numbers each user's events, appends them to the user's
//! bounded replay stream, publishes them in one message on the feed
//! channel, and notes when each transfer was relayed (the ops timeline's
//! last stage). The key names, fields and line format belong to
//! [`shared::event_feed`], the one contract with the notifier; nothing here
//! spells them.
//! The JetStream message is acked only after Redis took the batch, so Redis
//! being down delays notifications and loses none.
//!
//! Most batches never reach this loop: the processor that committed them
//! runs the same script itself ([`Direct`]) and stores a batch on the
//! results stream only when Redis did not take it.

use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use futures::StreamExt;
use rand::RngExt;
use redis::aio::ConnectionManager;
use shared::backoff::Backoff;
use shared::event_feed::{self, RelayArgs};
use shared::messages::{Event, ResultBatch};
use shared::redis_link::{Link, Reporting};
use shared::shutdown::Shutdown;

use crate::disposition::{self, Disposition};
use crate::pull;

/// Result batches pulled at once (each is relayed and acked on its own).
const RESULTS_PER_PULL: usize = 100;
/// First wait before reconnecting to Redis; doubles up to the max.
const CONNECT_BACKOFF_START: Duration = Duration::from_millis(200);
/// First wait before retrying a batch Redis refused; doubles up to the max.
const RELAY_BACKOFF_START: Duration = Duration::from_millis(100);
/// Longest wait between Redis attempts: Redis back within seconds is
/// noticed within seconds.
const REDIS_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Connects to Redis, retrying until it answers or shutdown.
pub async fn connect(url: &str, shutdown: &Shutdown) -> Option<ConnectionManager> {
    let mut backoff = Backoff::new(CONNECT_BACKOFF_START, REDIS_BACKOFF_MAX);
    loop {
        let attempt = async { ConnectionManager::new(shared::tls::redis_client(url)?).await };
        match attempt.await {
            Ok(c) => return Some(c),
            Err(e) => tracing::warn!(error = %e, "Redis unavailable; retrying"),
        }
        if shutdown.is_triggered() {
            return None;
        }
        backoff.wait().await;
    }
}

pub async fn run(
    consumer: PullConsumer,
    redis_url: String,
    prefix: String,
    replay_buffer: usize,
    mut shutdown: Shutdown,
) {
    let Some(mut redis) = connect(&redis_url, &shutdown).await else {
        return;
    };
    let script = redis::Script::new(event_feed::RELAY_SCRIPT);
    while !shutdown.is_triggered() {
        let Some(mut messages) = pull::open(&consumer, RESULTS_PER_PULL, &mut shutdown).await
        else {
            continue;
        };
        loop {
            let next = tokio::select! {
                _ = shutdown.wait() => return,
                next = messages.next() => next,
            };
            let message = match next {
                None => break,
                // Missed heartbeats, reconnects, a recreated consumer: start a
                // fresh pull, as the transfers' pull loop does, rather than
                // wait on a stream that may no longer ask for messages.
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "results pull interrupted; pulling again");
                    break;
                }
                Some(Ok(m)) => m,
            };
            let batch: ResultBatch = match serde_json::from_slice(&message.payload) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "undecodable result batch; dropping it");
                    disposition::settle(&message, Disposition::Ack).await;
                    continue;
                }
            };
            let (args, spans) = prepare(&batch, &prefix, replay_buffer);
            let mut invocation = script.prepare_invoke();
            for arg in args.args() {
                invocation.arg(arg);
            }
            let mut backoff = Backoff::new(RELAY_BACKOFF_START, REDIS_BACKOFF_MAX);
            loop {
                match invocation.invoke_async::<String>(&mut redis).await {
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "Redis unavailable; holding results");
                        if shutdown.is_triggered() {
                            // Not acked: another relay (or our restart) takes it.
                            return;
                        }
                        // Keep the message ours while we wait.
                        disposition::in_progress(&[&message]).await;
                        backoff.wait().await;
                    }
                }
            }
            drop(spans);
            metrics::counter!("processor_events_relayed_total").increment(args.events());
            disposition::settle(&message, Disposition::Ack).await;
        }
    }
}

/// The script's arguments for `batch`, and one span per transfer to hold
/// until Redis took it.
fn prepare(
    batch: &ResultBatch,
    prefix: &str,
    replay_buffer: usize,
) -> (RelayArgs, Vec<tracing::Span>) {
    let mut args = RelayArgs::new(
        prefix,
        replay_buffer,
        event_feed::epoch_text(rand::rng().random::<u32>()),
        chrono::Utc::now().timestamp_micros(),
    );
    // One span per transfer, continuing its trace into Redis.
    let spans = events(batch, &mut args);
    (args, spans)
}

/// The processor's own way into Redis for the results it just committed,
/// so that they need no second trip through JetStream (a stored message,
/// its delivery to the relay above, two acks) before a customer sees
/// them. Guarded by a breaker ([`shared::redis_link`]): when Redis is
/// slow or away the caller stores the batch on the results stream, and
/// the relay above delivers it once Redis is back.
pub struct Direct {
    link: Link,
    script: redis::Script,
    prefix: String,
    replay_buffer: usize,
}

impl Direct {
    pub fn new(url: &str, timeout: Duration, prefix: &str, replay_buffer: usize) -> Self {
        let reporting = Reporting {
            metric: "processor_relay_direct_failed_total",
            warning: "results go through the results stream until it is back",
        };
        Self {
            link: Link::new(url, timeout, reporting),
            script: redis::Script::new(event_feed::RELAY_SCRIPT),
            prefix: prefix.to_owned(),
            replay_buffer,
        }
    }

    /// Relays `batch` straight into Redis; `false` if Redis did not take it
    /// (or may not have: a timed-out call may still run, so a customer may
    /// then hear of a result twice, as after any redelivery).
    pub async fn push(&self, batch: &ResultBatch) -> bool {
        let (args, spans) = prepare(batch, &self.prefix, self.replay_buffer);
        let script = &self.script;
        let events = args.events();
        let relayed = self
            .link
            .run("relay", |mut conn| async move {
                let mut invocation = script.prepare_invoke();
                for arg in args.args() {
                    invocation.arg(arg);
                }
                invocation.invoke_async::<String>(&mut conn).await
            })
            .await
            .is_some();
        drop(spans);
        if relayed {
            metrics::counter!("processor_events_relayed_total").increment(events);
        }
        relayed
    }
}

/// Adds the batch's events to `args` (transfers to everyone notified, batch
/// progress and account changes to their owners); returns one span per
/// transfer, to hold until Redis took the batch.
fn events(batch: &ResultBatch, args: &mut RelayArgs) -> Vec<tracing::Span> {
    let mut spans = Vec::with_capacity(batch.transfers.len());
    for result in &batch.transfers {
        let span = tracing::info_span!(
            "relay",
            otel.name = "bank.transfers.results process",
            otel.kind = "consumer",
            messaging.system = "nats",
            messaging.message.id = %result.transfer.id,
        );
        shared::telemetry::continue_from(&span, result.traceparent.as_deref());
        let traceparent = shared::telemetry::traceparent(&span);
        spans.push(span);
        let event = Event::TransferUpdated {
            transfer: result.transfer.clone(),
        };
        if let Ok(fragment) = event_feed::encode(&event) {
            for user in &result.notify {
                args.push(
                    *user,
                    traceparent.as_deref(),
                    Some(result.transfer.id),
                    &fragment,
                );
            }
        }
    }
    for result in &batch.holds {
        let event = Event::HoldUpdated {
            hold: result.hold.clone(),
        };
        if let Ok(fragment) = event_feed::encode(&event) {
            for user in &result.notify {
                args.push(*user, None, None, &fragment);
            }
        }
    }
    for (owner, progress) in &batch.batches {
        let event = Event::BatchUpdated {
            batch: progress.clone(),
        };
        if let Ok(fragment) = event_feed::encode(&event) {
            args.push(*owner, None, None, &fragment);
        }
    }
    for a in &batch.accounts {
        let event = Event::AccountUpdated {
            account: a.account.clone(),
        };
        if let Ok(fragment) = event_feed::encode(&event) {
            args.push(a.owner, None, None, &fragment);
        }
    }
    spans
}
