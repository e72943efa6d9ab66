//! Hold expiry: a periodic scan for pending holds past their time, each
//! turned into a `hold_expire` command on the transfers stream.
//!
//! Why a command and not an UPDATE here: the expiry must race safely with
//! captures and voids and survive crashes. As a command it is applied by
//! the ledger under the account locks like everything else, so exactly one
//! of capture / void / expiry wins; JetStream's `Nats-Msg-Id`
//! (`hold-expire-<id>`) drops the copies that every processor's scan
//! publishes; and a processor killed mid-scan loses nothing, because the
//! next scan (on any processor) finds the hold still pending.

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use chrono::Utc;
use shared::hold::{Op, hold_expire_id, hold_expire_msg_id};
use shared::messages::{HEADER_TRANSFER_ID, SCHEMA_VERSION, TransferCommand};
use shared::shutdown::Shutdown;
use std::sync::Arc;
use uuid::Uuid;

use crate::ctx::Ctx;

/// Most expiry commands published per scan: a backlog of expired holds is
/// worked off over several scans instead of one burst.
const EXPIRIES_PER_SCAN_MAX: i64 = 500;

/// The command that expires `hold`.
fn command(hold: Uuid) -> TransferCommand {
    TransferCommand {
        v: SCHEMA_VERSION,
        id: hold_expire_id(hold),
        owner: Uuid::nil(),
        idempotency_key: hold_expire_msg_id(hold),
        from_account: Uuid::nil(),
        to_account: Uuid::nil(),
        amount: Default::default(),
        currency: String::new(),
        reference: None,
        accepted_at: Utc::now(),
        batch: None,
        op: Op::HoldExpire,
        hold_id: Some(hold),
        expires_at: None,
        reverses: None,
        reversal_reason: None,
    }
}

async fn publish(ctx: &Ctx, hold: Uuid) -> Result<(), String> {
    let cmd = command(hold);
    let payload = serde_json::to_vec(&cmd).map_err(|e| e.to_string())?;
    let id = cmd.id.to_string();
    let message = PublishMessage::build()
        .payload(payload.into())
        .message_id(hold_expire_msg_id(hold))
        .header(HEADER_TRANSFER_ID, id.as_str())
        .expected_last_subject_sequence(0);
    let subject = ctx.config.topology.command_subject(cmd.id);
    match ctx.js.send_publish(subject, message).await {
        Ok(ack) => match ack.await {
            Ok(_) => Ok(()),
            // Still queued from an earlier scan.
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Ok(()),
            Err(e) => Err(e.to_string()),
        },
        Err(e) => Err(e.to_string()),
    }
}

/// One scan: publishes an expiry for each pending hold past its time.
async fn scan(ctx: &Ctx) {
    let due = match ledger::holds::expired_pending(&ctx.pool, EXPIRIES_PER_SCAN_MAX).await {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(error = %e, "cannot scan for expired holds");
            return;
        }
    };
    for hold in due {
        if let Err(e) = publish(ctx, hold).await {
            tracing::warn!(error = %e, %hold, "cannot publish a hold expiry; next scan retries");
            return;
        }
        metrics::counter!("processor_hold_expiries_published_total").increment(1);
    }
}

pub async fn run(ctx: Arc<Ctx>, mut shutdown: Shutdown) {
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(ctx.config.hold_expiry_interval) => {},
        }
        scan(&ctx).await;
    }
}
