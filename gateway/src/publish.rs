//! Publishing transfer commands to JetStream and finding pending ones.
//!
//! Each command goes to its own subject (`<p>.transfers.cmd.<id>`) with
//! `Nats-Msg-Id` = transfer id (JetStream's duplicate window drops concurrent
//! retries) and `Nats-Expected-Last-Subject-Sequence: 0` (the stream refuses
//! a second message for an id that is still queued, whatever the window).
//! Publishes are pipelined: each request awaits only its own ack, and the
//! context bounds the acks in flight (back-pressure, not an unbounded queue).

use std::time::Instant;

use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use shared::messages::{HEADER_TRANSFER_ID, TransferCommand};
use tracing::Instrument;
use uuid::Uuid;

use crate::backlog::{self, InFlight, ShedReason};
use crate::error::ApiError;
use crate::state::SharedState;

pub enum Published {
    /// JetStream stored it: the transfer is durable and will be applied.
    New,
    /// A message with this id was published before (a retry).
    AlreadyThere,
}

fn unavailable() -> ApiError {
    ApiError::Unavailable(
        "the transfer queue is unavailable; nothing was sent, retry shortly".into(),
    )
}

/// Whether JetStream refused the message for the stream's limits
/// (`max_msgs`/`max_bytes` with discard-new): the queue's last line.
fn stream_full(e: &PublishError) -> bool {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<async_nats::jetstream::Error>())
        .is_some_and(|j| {
            j.error_code() == ErrorCode::STREAM_STORE_FAILED && j.to_string().contains("maximum")
        })
}

/// The answer when the stream is full: shed, like a backlog over budget.
fn full(state: &SharedState) -> ApiError {
    let retry = backlog::retry_after_secs(state.backlog.excess_seconds());
    backlog::shed(ShedReason::StreamFull, retry)
}

/// Publishes one request's command, admitted by the backlog (`admitted`
/// counts it as backlog until the publish is answered), unless
/// `PUBLISH_INFLIGHT_MAX` publishes already await their ack: then the
/// answer is a `503` at once (queueing behind them is what made shed
/// answers slow under overload).
pub async fn transfer(
    state: &SharedState,
    command: &TransferCommand,
    admitted: InFlight<'_>,
) -> Result<Published, ApiError> {
    let Ok(_slot) = state.publish_slots.try_acquire() else {
        return Err(backlog::shed(ShedReason::Busy, 1));
    };
    let published = send(state, command).await;
    drop(admitted);
    published
}

/// Publishes one line of an accepted batch: it waits for a slot, since the
/// batch was admitted whole and its publishes are bounded on their own
/// (`submit_batch::PUBLISH_CONCURRENCY`).
pub async fn batch_line(
    state: &SharedState,
    command: &TransferCommand,
) -> Result<Published, ApiError> {
    let _slot = state
        .publish_slots
        .acquire()
        .await
        .map_err(|_| unavailable())?;
    let _in_flight = state.backlog.publishing();
    send(state, command).await
}

async fn send(state: &SharedState, command: &TransferCommand) -> Result<Published, ApiError> {
    let payload =
        serde_json::to_vec(command).map_err(|e| ApiError::Internal(format!("encode: {e}")))?;
    let id = command.id.to_string();
    let subject = state.topology.command_subject(command.id);
    let span = tracing::info_span!(
        "publish",
        otel.name = "bank.transfers.cmd publish",
        otel.kind = "producer",
        messaging.system = "nats",
        messaging.operation.type = "send",
        messaging.destination.name = %state.topology.transfers_subject,
        messaging.message.id = %id,
    );
    let mut message = PublishMessage::build()
        .payload(payload.into())
        .message_id(&id)
        .header(HEADER_TRANSFER_ID, id.as_str())
        .expected_last_subject_sequence(0);
    // The processor continues this trace from the message header.
    if let Some(tp) = shared::telemetry::traceparent(&span) {
        message = message.header("traceparent", tp.as_str());
    }
    let started = Instant::now();
    let ack = tokio::time::timeout(
        state.publish_timeout,
        async { state.js.send_publish(subject, message).await?.await }.instrument(span),
    )
    .await;
    metrics::histogram!("gateway_publish_ack_seconds").record(started.elapsed().as_secs_f64());
    match ack {
        Ok(Ok(ack)) if ack.duplicate => {
            metrics::counter!("gateway_publish_total", "result" => "duplicate").increment(1);
            Ok(Published::AlreadyThere)
        }
        Ok(Ok(_)) => {
            metrics::counter!("gateway_publish_total", "result" => "stored").increment(1);
            state.backlog.published();
            Ok(Published::New)
        }
        Ok(Err(e)) if e.kind() == PublishErrorKind::WrongLastSequence => {
            metrics::counter!("gateway_publish_total", "result" => "queued_already").increment(1);
            Ok(Published::AlreadyThere)
        }
        Ok(Err(e)) if stream_full(&e) => {
            metrics::counter!("gateway_publish_total", "result" => "stream_full").increment(1);
            Err(full(state))
        }
        Ok(Err(e)) => {
            metrics::counter!("gateway_publish_total", "result" => "error").increment(1);
            tracing::warn!(error = %e, "publish failed");
            Err(unavailable())
        }
        Err(_) => {
            metrics::counter!("gateway_publish_total", "result" => "timeout").increment(1);
            tracing::warn!("publish timed out");
            Err(unavailable())
        }
    }
}

/// Where a transfer or hold is: stored in the ledger, or still queued.
pub enum Found<T> {
    Stored(T),
    /// Boxed: far larger than the other variants.
    Queued(Box<TransferCommand>),
    Nowhere,
}

/// Looks for `id` in the ledger (`stored`), then in the queue, then in the
/// ledger again.
///
/// Why the second ledger read: a command leaves the queue only after its
/// transfer or hold committed, so one applied between the first two reads
/// is in neither place at the moment it is looked for, and the ledger has
/// it by the third. Without it `bankctl transfer send --wait` was once
/// told 404 about the transfer it had just sent.
pub async fn find<T, F, Fut>(state: &SharedState, id: Uuid, stored: F) -> Result<Found<T>, ApiError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, ledger::LedgerError>>,
{
    if let Some(found) = stored().await? {
        return Ok(Found::Stored(found));
    }
    if let Some(cmd) = pending_command(state, id).await? {
        return Ok(Found::Queued(Box::new(cmd)));
    }
    Ok(stored().await?.map_or(Found::Nowhere, Found::Stored))
}

/// The command for `id` if it is still waiting in the queue.
pub async fn pending_command(
    state: &SharedState,
    id: Uuid,
) -> Result<Option<TransferCommand>, ApiError> {
    let stream = state
        .js
        .get_stream_no_info(&state.topology.transfers_stream)
        .await
        .map_err(|_| unavailable())?;
    match stream
        .get_last_raw_message_by_subject(&state.topology.command_subject(id))
        .await
    {
        Ok(message) => Ok(serde_json::from_slice(&message.payload).ok()),
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
        Err(e) => {
            tracing::warn!(error = %e, "queue lookup failed");
            Err(unavailable())
        }
    }
}

/// Publishes an atomic batch as one message (its id is the batch id).
pub async fn atomic_batch(
    state: &SharedState,
    batch: &shared::messages::AtomicBatchCommand,
) -> Result<(), ApiError> {
    let payload =
        serde_json::to_vec(batch).map_err(|e| ApiError::Internal(format!("encode: {e}")))?;
    let id = batch.id.to_string();
    let span = tracing::info_span!(
        "publish",
        otel.name = "bank.transfers.batch publish",
        otel.kind = "producer",
        messaging.system = "nats",
        messaging.message.id = %id,
        messaging.batch.message_count = batch.payments.len(),
    );
    let mut message = PublishMessage::build()
        .payload(payload.into())
        .message_id(&id)
        .expected_last_subject_sequence(0);
    if let Some(tp) = shared::telemetry::traceparent(&span) {
        message = message.header("traceparent", tp.as_str());
    }
    let subject = state.topology.batch_subject(batch.id);
    let ack = tokio::time::timeout(
        state.publish_timeout,
        async { state.js.send_publish(subject, message).await?.await }.instrument(span),
    )
    .await;
    match ack {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) if e.kind() == PublishErrorKind::WrongLastSequence => Ok(()),
        Ok(Err(e)) if stream_full(&e) => Err(full(state)),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "batch publish failed");
            Err(unavailable())
        }
        Err(_) => Err(unavailable()),
    }
}
