//! Submitting one transfer: idempotent replay, account checks, the command
//! and its publication.
//!
//! The path: the backlog within its budget? (else `503` at once) → known
//! already? (the ledger, then the queue: an idempotent replay) → account
//! checks from the cache → publish with `Nats-Msg-Id` = transfer id and "no
//! earlier message on this transfer's subject" → `202` once JetStream
//! acked. [`command`] builds the message for a batch's
//! payments too, so a transfer reads the same whichever way it came.

use std::time::Duration;

use axum::response::Response;
use chrono::{DateTime, Utc};
use shared::messages::{BatchRef, SCHEMA_VERSION, TransferCommand, TransferView};
use shared::transfer::{IdempotencyKey, TransferOrder, transfer_id};
use uuid::Uuid;

use crate::check_accounts;
use crate::error::ApiError;
use crate::extract::Caller;
use crate::publish::{self, Published};
use crate::responses;
use crate::state::SharedState;

/// How often a request whose key is already in the queue looks for the
/// earlier request's transfer before answering `409`.
const CONCURRENT_LOOKS_MAX: u64 = 30;
/// Wait before the first of those looks; each next waits
/// [`CONCURRENT_LOOK_STEP`] longer (about 5 s in all): the earlier request
/// is usually visible within milliseconds.
const CONCURRENT_LOOK_FIRST: Duration = Duration::from_millis(20);
const CONCURRENT_LOOK_STEP: Duration = Duration::from_millis(10);

/// The command for `order`, owned by `owner`, accepted at `accepted_at`.
pub fn command(
    id: Uuid,
    owner: Uuid,
    idempotency_key: String,
    order: &TransferOrder,
    accepted_at: DateTime<Utc>,
    batch: Option<BatchRef>,
) -> TransferCommand {
    TransferCommand {
        v: SCHEMA_VERSION,
        id,
        owner,
        idempotency_key,
        from_account: order.from_account,
        to_account: order.to_account,
        amount: order.amount.value(),
        currency: order.currency.code().to_owned(),
        reference: order.reference.as_ref().map(|r| r.as_str().to_owned()),
        accepted_at,
        batch,
        op: shared::hold::Op::Transfer,
        hold_id: None,
        expires_at: None,
        reverses: None,
        reversal_reason: None,
    }
}

/// `202` with the transfer, `Location` naming it.
fn answer(view: &TransferView, replayed: bool) -> Response {
    responses::accepted(view, &format!("/v1/transfers/{}", view.id), replayed)
}

/// What is already known about transfer `id` with this request's fingerprint.
async fn known(
    state: &SharedState,
    id: Uuid,
    fingerprint: &[u8; 32],
    look_in_queue: bool,
) -> Result<Option<Response>, ApiError> {
    if let Some(row) = state.lookups.get(id).await? {
        if row.fingerprint.as_slice() != fingerprint {
            return Err(ApiError::KeyReused);
        }
        return Ok(Some(answer(&row.view(), true)));
    }
    if look_in_queue && let Some(cmd) = publish::pending_command(state, id).await? {
        if &cmd.fingerprint() != fingerprint {
            return Err(ApiError::KeyReused);
        }
        return Ok(Some(answer(&cmd.pending_view(), true)));
    }
    Ok(None)
}

/// Queues `order` for `caller` under `key`: `202` only after JetStream has
/// stored it; the same key with the same order answers with the same
/// transfer (`Idempotent-Replayed: true`), with another order `422`.
pub async fn submit(
    state: &SharedState,
    caller: Caller,
    key: &IdempotencyKey,
    order: TransferOrder,
) -> Result<Response, ApiError> {
    let id = transfer_id(caller.id, key);
    let fingerprint = order.fingerprint();
    // New work only while the queue clears within the budget. Checked
    // before anything waits on PostgreSQL or NATS: under overload a shed
    // answer must be immediate, and the ledger lookup below is then the
    // slow part (a replay gets its answer once the backlog is back under
    // the budget, like any retry after a 503).
    let admitted = state.backlog.admit()?;
    // A retry after the transfer was applied (JetStream's duplicate window
    // may be long gone): answer from the ledger.
    if let Some(response) = known(state, id, &fingerprint, false).await? {
        return Ok(response);
    }
    check_accounts::transfer(state, caller, &order).await?;
    let command = command(
        id,
        caller.id,
        key.as_str().to_owned(),
        &order,
        micros_now(),
        None,
    );
    match publish::transfer(state, &command, admitted).await? {
        Published::New => Ok(answer(&command.pending_view(), false)),
        Published::AlreadyThere => {
            // A concurrent or earlier request with this key: wait briefly for
            // it to be visible in the queue or the ledger, then compare bodies.
            for attempt in 0..CONCURRENT_LOOKS_MAX {
                if let Some(response) = known(state, id, &fingerprint, true).await? {
                    return Ok(response);
                }
                let wait = CONCURRENT_LOOK_FIRST + CONCURRENT_LOOK_STEP * attempt as u32;
                tokio::time::sleep(wait).await;
            }
            Err(ApiError::InProgress)
        }
    }
}

/// Now, at PostgreSQL's precision, so the pending view and the stored row agree.
fn micros_now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}
