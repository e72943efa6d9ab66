//! One worker: pull a batch, apply it in one transaction, hand the results on,
//! then ack. Several workers (and processes) share the durable consumer.
//!
//! Failure handling, by kind:
//! * transient (database down, serialization failure, deadlock): retry the
//!   same batch in place with capped backoff, telling JetStream the work is in
//!   progress so it is not redelivered meanwhile; on shutdown, nak with a delay.
//! * permanent (the database refuses the batch): split it and apply each
//!   transfer alone; a transfer that fails alone is dead-lettered.
//! * a message on its last allowed delivery is applied alone, so a poison
//!   message that kills processes cannot take other transfers with it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{self, AckKind, Message};
use ledger::LedgerError;
use ledger::apply::{Mode, Stages, TransferRequest, apply, record_failures};
use shared::messages::{AtomicBatchCommand, ResultBatch, SCHEMA_VERSION, TransferCommand};
use shared::shutdown::Shutdown;
use sqlx::PgPool;
use tokio_stream::StreamExt;
use tracing::Span;

use crate::Config;
use crate::results;

const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

pub struct Ctx {
    pub pool: PgPool,
    pub js: jetstream::Context,
    pub config: Config,
    /// Batches with a progress event already scheduled.
    pub progress_due: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<uuid::Uuid>>>,
}

/// How often a batch's owner hears about its progress, at most.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(500);

/// Sends the batch's progress to its owner once, `PROGRESS_INTERVAL` after
/// the first payment applied since the last send: updates are throttled and
/// the last one (the batch done) is never skipped.
fn schedule_progress(ctx: &Ctx, batch: uuid::Uuid, owner: uuid::Uuid) {
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
    let ctx_due = std::sync::Arc::clone(&ctx.progress_due);
    tokio::spawn(async move {
        tokio::time::sleep(PROGRESS_INTERVAL).await;
        ctx_due
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&batch);
        let Ok(Some(row)) = ledger::batches::get(&pool, batch).await else {
            return;
        };
        let Ok(counts) = ledger::batches::counts(&pool, batch).await else {
            return;
        };
        let ledger::batches::Tally {
            committed,
            rejected,
        } = ledger::batches::Tally::of(&counts);
        let count = i64::from(row.count);
        let pending = (count - committed - rejected).max(0);
        let results = ResultBatch {
            v: SCHEMA_VERSION,
            transfers: vec![],
            accounts: vec![],
            batches: vec![(
                owner,
                shared::messages::BatchProgress {
                    id: batch,
                    count,
                    pending,
                    committed,
                    rejected,
                    done: pending == 0,
                },
            )],
        };
        if let Ok(payload) = serde_json::to_vec(&results) {
            // Best effort: the next payment (or a GET) shows progress too.
            if let Ok(ack) = js.publish(subject, payload.into()).await {
                let _ = ack.await;
            }
        }
    });
}

/// One transfer message being processed, with its trace span (a child of
/// the gateway's publish span) and its stage timestamps.
struct Item {
    message: Message,
    request: TransferRequest,
    span: Span,
    stages: Stages,
}

enum Failure {
    /// Shutdown was requested while waiting for a dependency.
    Stopped,
    Permanent(LedgerError),
}

pub async fn run(ctx: Arc<Ctx>, consumer: PullConsumer, mut shutdown: Shutdown) {
    while !shutdown.is_triggered() {
        let messages = match consumer
            .stream()
            .max_messages_per_batch(ctx.config.batch_max)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
        {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "cannot pull from JetStream; retrying");
                sleep_or_stop(Duration::from_secs(1), &mut shutdown).await;
                continue;
            }
        };
        let chunks = messages.chunks_timeout(ctx.config.batch_max, ctx.config.linger);
        tokio::pin!(chunks);
        loop {
            let chunk = tokio::select! {
                _ = shutdown.wait() => return,
                chunk = chunks.next() => chunk,
            };
            let Some(chunk) = chunk else { break };
            let mut batch = Vec::with_capacity(chunk.len());
            let mut broken = false;
            for item in chunk {
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
                handle(&ctx, batch, &shutdown).await;
            }
            if broken {
                break;
            }
        }
    }
}

async fn sleep_or_stop(d: Duration, shutdown: &mut Shutdown) {
    tokio::select! {
        _ = shutdown.wait() => {},
        _ = tokio::time::sleep(d) => {},
    }
}

fn delivered(m: &Message) -> i64 {
    m.info().map(|i| i.delivered).unwrap_or(1)
}

async fn handle(ctx: &Ctx, messages: Vec<Message>, shutdown: &Shutdown) {
    let started = Instant::now();
    let received_at = chrono::Utc::now();
    let mut normal = Vec::with_capacity(messages.len());
    let mut last_chance = Vec::new();
    for message in messages {
        if ctx.config.topology.is_batch_subject(&message.subject) {
            handle_atomic(ctx, message, shutdown).await;
            continue;
        }
        match serde_json::from_slice::<TransferCommand>(&message.payload) {
            Ok(cmd) if cmd.v == SCHEMA_VERSION => {
                let item = receive(message, cmd, received_at);
                if delivered(&item.message) >= ctx.config.consumer.max_deliver {
                    last_chance.push(item);
                } else {
                    normal.push(item);
                }
            }
            _ => dead_letter(ctx, &message, None, "undecodable message").await,
        }
    }
    let size = normal.len() + last_chance.len();
    if !normal.is_empty() {
        apply_or_split(ctx, normal, shutdown).await;
    }
    for item in last_chance {
        apply_or_split(ctx, vec![item], shutdown).await;
    }
    metrics::histogram!("processor_batch_size").record(size as f64);
    metrics::histogram!("processor_batch_seconds").record(started.elapsed().as_secs_f64());
}

/// Opens the message's span as a child of the publisher's (`traceparent`
/// header) and notes when it was published and received.
fn receive(
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
    let traceparent = message
        .headers
        .as_ref()
        .and_then(|h| h.get("traceparent"))
        .map(|v| v.as_str().to_owned());
    shared::telemetry::continue_from(&span, traceparent.as_deref());
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

async fn apply_or_split(ctx: &Ctx, group: Vec<Item>, shutdown: &Shutdown) {
    match apply_group(ctx, &group, shutdown).await {
        Ok(()) => {}
        Err(Failure::Stopped) => nak_all(&group).await,
        Err(Failure::Permanent(e)) if group.len() > 1 => {
            tracing::warn!(error = %e, size = group.len(), "batch refused; applying one by one");
            for item in group {
                let single = [item];
                match apply_group(ctx, &single, shutdown).await {
                    Ok(()) => {}
                    Err(Failure::Stopped) => nak_all(&single).await,
                    Err(Failure::Permanent(e)) => {
                        let [item] = single;
                        dead_letter(ctx, &item.message, Some(&item.request), &e.to_string()).await;
                    }
                }
            }
        }
        Err(Failure::Permanent(e)) => {
            for item in &group {
                dead_letter(ctx, &item.message, Some(&item.request), &e.to_string()).await;
            }
        }
    }
}

/// Applies, hands the results on, acks. Retries transient failures in place.
async fn apply_group(ctx: &Ctx, group: &[Item], shutdown: &Shutdown) -> Result<(), Failure> {
    let requests: Vec<TransferRequest> = group.iter().map(|i| i.request.clone()).collect();
    let stages: Vec<Stages> = group.iter().map(|i| i.stages.clone()).collect();
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
    let mut progress_sent = Instant::now();
    let mut delay = BACKOFF_START;
    let mut shutdown = shutdown.clone();
    let applied = loop {
        match apply(&ctx.pool, &requests, &stages, Mode::Independent).await {
            Ok(applied) => break applied,
            Err(e) if e.is_transient() => {
                metrics::counter!("processor_apply_retries_total").increment(1);
                tracing::warn!(error = %e, size = requests.len(), "ledger unavailable; retrying batch");
                if shutdown.is_triggered() {
                    return Err(Failure::Stopped);
                }
                keep_alive(ctx, group, &mut progress_sent).await;
                sleep_or_stop(delay, &mut shutdown).await;
                delay = (delay * 2).min(BACKOFF_MAX);
            }
            Err(e) => return Err(Failure::Permanent(e)),
        }
    };
    metrics::histogram!("processor_apply_seconds").record(started.elapsed().as_secs_f64());
    drop(db_spans);
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
    let results = results::of_applied(&applied, traceparents);
    publish_results(ctx, &results, group, &mut shutdown).await?;
    drop(publish_spans);
    for (id, owner) in group
        .iter()
        .filter_map(|i| i.stages.batch.map(|b| (b.0, i.request.owner)))
        .collect::<std::collections::HashSet<_>>()
    {
        schedule_progress(ctx, id, owner);
    }
    for item in group {
        // A lost ack only means a redelivery, which the ledger absorbs.
        if let Err(e) = item.message.ack().await {
            tracing::debug!(error = %e, "ack failed; the message will be redelivered");
        }
    }
    Ok(())
}

/// Tells JetStream we are still working on these (resets their ack timer).
async fn keep_alive(ctx: &Ctx, group: &[Item], last: &mut Instant) {
    if last.elapsed() < ctx.config.consumer.ack_wait / 3 {
        return;
    }
    for item in group {
        let _ = item.message.ack_with(AckKind::Progress).await;
    }
    *last = Instant::now();
}

/// Publishes the batch's results to the results stream and waits for the
/// ack, retrying until it is stored or shutdown is requested. Only then are
/// the transfer messages acked: a result is never lost between commit and
/// notification (a redelivery re-emits it from the ledger).
async fn publish_results(
    ctx: &Ctx,
    results: &ResultBatch,
    group: &[Item],
    shutdown: &mut Shutdown,
) -> Result<(), Failure> {
    if results.transfers.is_empty() && results.accounts.is_empty() {
        return Ok(());
    }
    let payload = match serde_json::to_vec(results) {
        Ok(p) => bytes::Bytes::from(p),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode results");
            return Ok(());
        }
    };
    let mut delay = BACKOFF_START;
    let mut progress_sent = Instant::now();
    loop {
        let attempt = async {
            ctx.js
                .publish(ctx.config.topology.results_subject.clone(), payload.clone())
                .await?
                .await
        };
        match tokio::time::timeout(Duration::from_secs(5), attempt).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot publish results; retrying"),
            Err(_) => tracing::warn!("publishing results timed out; retrying"),
        }
        if shutdown.is_triggered() {
            return Err(Failure::Stopped);
        }
        keep_alive(ctx, group, &mut progress_sent).await;
        sleep_or_stop(delay, shutdown).await;
        delay = (delay * 2).min(BACKOFF_MAX);
    }
}

async fn nak_all(group: &[Item]) {
    for item in group {
        let _ = item
            .message
            .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
            .await;
    }
}

/// Gives up on one message: the transfer (if it could be decoded) ends
/// `rejected` / `processing_failed` so its sender gets a final answer, the
/// message is copied to the dead-letter stream for operators, and terminated.
async fn dead_letter(ctx: &Ctx, m: &Message, request: Option<&TransferRequest>, error: &str) {
    tracing::error!(error, subject = %m.subject, "dead-lettering a transfer message");
    if let Some(r) = request {
        match record_failures(&ctx.pool, std::slice::from_ref(r)).await {
            Ok(rows) => {
                let results = results::of_given_up(&rows);
                let mut stop = Shutdown::never();
                let _ = publish_results(ctx, &results, &[], &mut stop).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot record the failed transfer; will retry");
                let _ = m.ack_with(AckKind::Nak(Some(Duration::from_secs(5)))).await;
                return;
            }
        }
    }
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(
        "Bank-Error",
        error.chars().take(200).collect::<String>().as_str(),
    );
    headers.insert("Bank-Original-Subject", m.subject.as_str());
    let stored = async {
        ctx.js
            .publish_with_headers(
                ctx.config.topology.dead_subject.clone(),
                headers,
                m.payload.clone(),
            )
            .await?
            .await
    };
    if let Err(e) = stored.await {
        tracing::warn!(error = %e, "cannot store the dead letter; will retry");
        let _ = m.ack_with(AckKind::Nak(Some(Duration::from_secs(5)))).await;
        return;
    }
    metrics::counter!("processor_dead_letters_total").increment(1);
    let _ = m.ack_with(AckKind::Term).await;
}

/// An atomic batch: one message, one transaction, all payments or none.
async fn handle_atomic(ctx: &Ctx, message: Message, shutdown: &Shutdown) {
    let batch: AtomicBatchCommand = match serde_json::from_slice(&message.payload) {
        Ok(
            b @ AtomicBatchCommand {
                v: SCHEMA_VERSION, ..
            },
        ) => b,
        _ => return dead_letter(ctx, &message, None, "undecodable atomic batch").await,
    };
    let received_at = chrono::Utc::now();
    let info = message.info().ok();
    let span = tracing::info_span!(
        "process",
        otel.name = "bank.transfers.batch process",
        otel.kind = "consumer",
        messaging.system = "nats",
        messaging.message.id = %batch.id,
        messaging.batch.message_count = batch.payments.len(),
    );
    let traceparent = message
        .headers
        .as_ref()
        .and_then(|h| h.get("traceparent"))
        .map(|v| v.as_str().to_owned());
    shared::telemetry::continue_from(&span, traceparent.as_deref());
    let trace_id = shared::telemetry::trace_id(&span);
    let stages: Vec<Stages> = batch
        .payments
        .iter()
        .map(|p| Stages {
            published_at: info.as_ref().map(|i| i.published),
            received_at: Some(received_at),
            trace_id: trace_id.clone(),
            batch: p.batch.map(|b| (b.id, b.line)),
        })
        .collect();
    let requests: Vec<TransferRequest> = batch
        .payments
        .into_iter()
        .map(TransferRequest::from)
        .collect();
    let mut shutdown = shutdown.clone();
    let mut delay = BACKOFF_START;
    let applied = loop {
        match apply(&ctx.pool, &requests, &stages, Mode::Atomic).await {
            Ok(a) => break a,
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "ledger unavailable; retrying atomic batch");
                if shutdown.is_triggered() {
                    let _ = message
                        .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                        .await;
                    return;
                }
                let _ = message.ack_with(AckKind::Progress).await;
                sleep_or_stop(delay, &mut shutdown).await;
                delay = (delay * 2).min(BACKOFF_MAX);
            }
            Err(e) => {
                // One statement for the whole batch, one result batch.
                if let Ok(rows) = record_failures(&ctx.pool, &requests).await {
                    let results = results::of_given_up(&rows);
                    let _ = publish_results(ctx, &results, &[], &mut Shutdown::never()).await;
                }
                return dead_letter(ctx, &message, None, &e.to_string()).await;
            }
        }
    };
    results::record_outcomes(&applied);
    let tp = shared::telemetry::traceparent(&span);
    let results = results::of_applied(&applied, std::iter::repeat(tp));
    if publish_results(ctx, &results, &[], &mut shutdown)
        .await
        .is_ok()
    {
        let _ = message.ack().await;
    } else {
        let _ = message
            .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
            .await;
    }
}
