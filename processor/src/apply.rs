//! Decoding transfer messages and applying a group of them: one ledger
//! transaction, results handed on (into Redis, or stored on the results
//! stream), and only then the group is done (the caller acks it).
//!
//! A transient ledger failure (database down, serialization failure,
//! deadlock) is retried in place with bounded back-off, telling JetStream
//! the work is in progress so the messages are not redelivered meanwhile;
//! shutdown ends the wait. A permanent one is returned for the caller to
//! split the group.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use async_nats::jetstream::Message;
use ledger::apply::{Mode, Stages, TransferRequest};
use shared::backoff::Backoff;
use shared::messages::{SCHEMA_VERSION, TransferCommand};
use shared::shutdown::Shutdown;
use tracing::Span;

use crate::applier::{ApplyFn, Slot, TouchFn, Touching};
use crate::ctx::{Ctx, Failure, RETRY_BACKOFF_MAX, RETRY_BACKOFF_START, sleep_or_stop};
use crate::disposition::KeepAlive;
use crate::{progress, results};

/// One transfer message being processed, with its trace span (a child of
/// the gateway's publish span) and its stage timestamps.
pub struct Item {
    pub message: Message,
    pub request: TransferRequest,
    pub span: Span,
    pub stages: Stages,
}

/// How many times JetStream delivered `m` (1 if it does not say).
fn delivered(m: &Message) -> i64 {
    m.info().map(|i| i.delivered).unwrap_or(1)
}

/// Is this the item's last allowed delivery (so it is applied alone)?
pub fn last_chance(ctx: &Ctx, item: &Item) -> bool {
    delivered(&item.message) >= ctx.config.consumer.max_deliver
}

/// The transfer command in `message`, if it is one we know.
pub fn command(message: &Message) -> Option<TransferCommand> {
    serde_json::from_slice::<TransferCommand>(&message.payload)
        .ok()
        .filter(|cmd| cmd.v == SCHEMA_VERSION)
}

/// Opens the message's span as a child of the publisher's (`traceparent`
/// header) and notes when it was published and received.
pub fn receive(
    message: Message,
    cmd: TransferCommand,
    received_at: chrono::DateTime<chrono::Utc>,
) -> Item {
    let info = message.info().ok();
    let delivered = info.as_ref().map(|i| i.delivered).unwrap_or(1);
    if delivered > 1 {
        metrics::counter!("processor_redeliveries_total").increment(1);
    }
    let span = tracing::info_span!(
        "process",
        otel.name = "bank.transfers.cmd process",
        otel.kind = "consumer",
        messaging.system = "nats",
        messaging.operation.type = "process",
        messaging.destination.name = %message.subject,
        messaging.message.id = %cmd.id,
        messaging.nats.delivered = delivered,
        trace_id = tracing::field::Empty,
    );
    shared::telemetry::continue_from(&span, traceparent(&message).as_deref());
    let trace_id = shared::telemetry::trace_id(&span);
    if let Some(id) = &trace_id {
        span.record("trace_id", id.as_str());
    }
    let stages = Stages {
        published_at: info.as_ref().map(|i| i.published),
        received_at: Some(received_at),
        trace_id,
        batch: cmd.batch.map(|b| (b.id, b.line)),
    };
    if let Some(published) = stages.published_at {
        let waited = (received_at - published)
            .num_microseconds()
            .unwrap_or(0)
            .max(0);
        metrics::histogram!("processor_queue_wait_seconds").record(waited as f64 / 1e6);
    }
    Item {
        message,
        request: TransferRequest::from(cmd),
        span,
        stages,
    }
}

/// The `traceparent` header the publisher set, if any.
pub fn traceparent(message: &Message) -> Option<String> {
    message
        .headers
        .as_ref()
        .and_then(|h| h.get("traceparent"))
        .map(|v| v.as_str().to_owned())
}

/// Applies the group in one transaction and stores its results. `Ok` means
/// the group is done and may be acked.
pub async fn apply_group(
    ctx: &Ctx,
    group: &[Item],
    slot: &Slot,
    shutdown: &Shutdown,
) -> Result<(), Failure> {
    let requests: Vec<TransferRequest> = group.iter().map(|i| i.request.clone()).collect();
    let stages: Vec<Stages> = group.iter().map(|i| i.stages.clone()).collect();
    let messages: Vec<&Message> = group.iter().map(|i| &i.message).collect();
    // One database span per transfer (the transaction is shared; each
    // transfer's trace shows it), open for the whole apply.
    let db_spans: Vec<Span> = group
        .iter()
        .map(|i| {
            tracing::info_span!(
                parent: &i.span,
                "apply",
                otel.name = "BEGIN apply_batch",
                otel.kind = "client",
                db.system.name = "postgresql",
                db.operation.name = "apply_batch",
                db.operation.batch.size = group.len(),
            )
        })
        .collect();
    let started = Instant::now();
    let mut keep_alive = KeepAlive::new(ctx.config.consumer.ack_wait);
    let mut backoff = Backoff::new(RETRY_BACKOFF_START, RETRY_BACKOFF_MAX);
    let mut shutdown = shutdown.clone();
    let applied = loop {
        match ledger::apply::apply(&ctx.pool, &requests, &stages, Mode::Independent).await {
            Ok(applied) => break applied,
            Err(e) if e.is_transient() => {
                metrics::counter!("processor_apply_retries_total").increment(1);
                tracing::warn!(error = %e, size = requests.len(), "ledger unavailable; retrying batch");
                if shutdown.is_triggered() {
                    return Err(Failure::Stopped);
                }
                keep_alive.tick(&messages).await;
                sleep_or_stop(backoff.next_delay(), &mut shutdown).await;
            }
            Err(e) => return Err(Failure::Permanent(e)),
        }
    };
    metrics::histogram!("processor_apply_seconds").record(started.elapsed().as_secs_f64());
    metrics::histogram!("processor_apply_batch_size").record(group.len() as f64);
    drop(db_spans);
    // Committed: the next transaction may start while these results are
    // handed over (Redis, or the results stream), a quarter to a third of
    // the slot's time otherwise. Their turn is taken before the slot is
    // given back, so a later transaction's results cannot overtake them,
    // and one that commits meanwhile waits for the turn still holding the
    // slot: at most one hand-over runs beside a transaction.
    let _turn = ctx.results_turn.lock().await;
    slot.release();
    let committed = Instant::now();
    results::record_outcomes(&applied);
    // Each result carries its transfer's trace onward (results stream → Redis
    // → notifier) from a span that covers the hand-over.
    let publish_spans: Vec<Span> = group
        .iter()
        .map(|i| {
            tracing::info_span!(
                parent: &i.span,
                "results publish",
                otel.name = "bank.transfers.results publish",
                otel.kind = "producer",
                messaging.system = "nats",
            )
        })
        .collect();
    let traceparents = publish_spans.iter().map(shared::telemetry::traceparent);
    let batch = results::of_applied(&applied, traceparents);
    results::publish(ctx, &batch, &messages, &mut shutdown).await?;
    metrics::histogram!("processor_results_seconds").record(committed.elapsed().as_secs_f64());
    drop(publish_spans);
    let batches: HashSet<_> = group
        .iter()
        .filter_map(|i| i.stages.batch.map(|b| (b.0, i.request.owner)))
        .collect();
    for (id, owner) in batches {
        progress::schedule(ctx, id, owner);
    }
    Ok(())
}

/// [`apply_group`] as the `applier` calls it.
pub fn applier_fn(ctx: Arc<Ctx>, shutdown: Shutdown) -> ApplyFn<Item> {
    Arc::new(move |items: Vec<Item>, slot: Slot| {
        let (ctx, shutdown) = (ctx.clone(), shutdown.clone());
        Box::pin(async move {
            let outcome = apply_group(&ctx, &items, &slot, &shutdown).await;
            (items, outcome)
        })
    })
}

/// Tells JetStream the items waiting in the `applier` are in progress.
pub fn touch_fn() -> TouchFn<Item> {
    Arc::new(touch)
}

fn touch<'a>(items: &'a [&'a Item]) -> Touching<'a> {
    Box::pin(async move {
        let messages: Vec<&Message> = items.iter().map(|i| &i.message).collect();
        crate::disposition::in_progress(&messages).await;
    })
}
