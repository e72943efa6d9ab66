//! Giving up on a message: the transfer, hold, capture or void (if it could
//! be decoded) ends `rejected` / `processing_failed` so its sender gets a
//! final answer, the message is copied to the dead-letter stream for
//! operators, and it is terminated. If any of that fails, the message is
//! delivered again later.

use async_nats::jetstream::Message;
use ledger::LedgerError;
use ledger::apply::TransferRequest;
use shared::hold::Op;
use shared::shutdown::Shutdown;

use crate::ctx::Ctx;
use crate::disposition::{Disposition, RETRY_DEAD_LETTER};
use crate::results;

/// Longest error text kept in the dead letter's `Bank-Error` header.
const ERROR_HEADER_CHARS_MAX: usize = 200;

pub async fn handle(
    ctx: &Ctx,
    m: &Message,
    request: Option<&TransferRequest>,
    error: &str,
) -> Disposition {
    tracing::error!(error, subject = %m.subject, "dead-lettering a transfer message");
    if let Some(r) = request
        && let Err(e) = give_up(ctx, std::slice::from_ref(r)).await
    {
        tracing::warn!(error = %e, "cannot record the failed transfer; will retry");
        return Disposition::Nak(RETRY_DEAD_LETTER);
    }
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(
        "Bank-Error",
        error
            .chars()
            .take(ERROR_HEADER_CHARS_MAX)
            .collect::<String>()
            .as_str(),
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
        return Disposition::Nak(RETRY_DEAD_LETTER);
    }
    metrics::counter!("processor_dead_letters_total").increment(1);
    Disposition::Term
}

/// Stores `requests` as given up on (transfers and reversals `rejected` /
/// `processing_failed`, holds too; a capture or void as a rejected action)
/// and tells their senders. The results are published whatever it takes:
/// the senders' final answer must not be lost.
pub async fn give_up(ctx: &Ctx, requests: &[TransferRequest]) -> Result<(), LedgerError> {
    let (transfers, holds): (Vec<TransferRequest>, Vec<TransferRequest>) = requests
        .iter()
        .filter(|r| r.op != Op::HoldExpire)
        .cloned()
        .partition(|r| matches!(r.op, Op::Transfer | Op::Reversal));
    if !transfers.is_empty() {
        let rows = ledger::apply::record_failures(&ctx.pool, &transfers).await?;
        let batch = results::of_given_up(&rows);
        let _ = results::publish(ctx, &batch, &[], &mut Shutdown::never()).await;
    }
    // An expiry given up on is issued again by the expiry poller.
    if !holds.is_empty() {
        let applied = ledger::apply::record_hold_failures(&ctx.pool, &holds).await?;
        let batch = results::of_given_up_holds(&applied);
        let _ = results::publish(ctx, &batch, &[], &mut Shutdown::never()).await;
    }
    Ok(())
}
