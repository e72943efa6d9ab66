//! An atomic batch: one message, one transaction, all payments or none
//! (the ledger's [`Mode::Atomic`]).
//!
//! Transient ledger failures are retried in place, as for transfers; a
//! permanent one gives every payment a final `processing_failed` answer and
//! dead-letters the message.

use async_nats::jetstream::Message;
use ledger::apply::{Mode, Stages, TransferRequest};
use shared::backoff::Backoff;
use shared::messages::{AtomicBatchCommand, SCHEMA_VERSION};
use shared::shutdown::Shutdown;

use crate::apply::traceparent;
use crate::ctx::{Ctx, Failure, RETRY_BACKOFF_MAX, RETRY_BACKOFF_START, sleep_or_stop};
use crate::dead_letter;
use crate::disposition::{self, Disposition, RETRY_SOON};
use crate::results;

pub async fn handle(ctx: &Ctx, message: &Message, shutdown: &Shutdown) -> Disposition {
    let batch: AtomicBatchCommand = match serde_json::from_slice(&message.payload) {
        Ok(
            b @ AtomicBatchCommand {
                v: SCHEMA_VERSION, ..
            },
        ) => b,
        _ => return dead_letter::handle(ctx, message, None, "undecodable atomic batch").await,
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
    shared::telemetry::continue_from(&span, traceparent(message).as_deref());
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
    let mut backoff = Backoff::new(RETRY_BACKOFF_START, RETRY_BACKOFF_MAX);
    let applied = loop {
        match ledger::apply::apply(&ctx.pool, &requests, &stages, Mode::Atomic).await {
            Ok(a) => break a,
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "ledger unavailable; retrying atomic batch");
                if shutdown.is_triggered() {
                    return Disposition::Nak(RETRY_SOON);
                }
                disposition::in_progress(&[message]).await;
                sleep_or_stop(backoff.next_delay(), &mut shutdown).await;
            }
            Err(e) => {
                // Best effort: the dead letter below is what must not fail.
                if let Err(e) = dead_letter::give_up(ctx, &requests).await {
                    tracing::warn!(error = %e, "cannot record the failed atomic batch");
                }
                return dead_letter::handle(ctx, message, None, &e.to_string()).await;
            }
        }
    };
    results::record_outcomes(&applied);
    let tp = shared::telemetry::traceparent(&span);
    let batch = results::of_applied(&applied, std::iter::repeat(tp));
    match results::publish(ctx, &batch, &[message], &mut shutdown).await {
        Ok(()) => Disposition::Ack,
        Err(Failure::Stopped | Failure::Permanent(_)) => Disposition::Nak(RETRY_SOON),
    }
}
