//! Holds through the pipeline: a new hold, a capture, a void.
//!
//! Each is a command on the transfers stream like a transfer (same
//! publication, `Nats-Msg-Id` = the command's id, `202` once JetStream has
//! it) and each is idempotent by Idempotency-Key: a new hold's id and a
//! capture's or void's id are UUIDv5 of (caller, key); the same key with
//! the same request answers the same thing, with another request `422`.

use axum::response::Response;
use chrono::{DateTime, TimeDelta, Utc};
use rust_decimal::Decimal;
use shared::hold::{
    HoldActionView, HoldStatus, HoldView, Op, action_fingerprint, hold_action_id, hold_id,
};
use shared::messages::{TransferCommand, format_money};
use shared::transfer::{IdempotencyKey, TransferOrder};
use uuid::Uuid;

use crate::check_accounts;
use crate::error::ApiError;
use crate::extract::Caller;
use crate::publish::{self, Found, Published};
use crate::responses;
use crate::state::SharedState;
use crate::submit_transfer;

/// How a hold waiting in the queue looks.
pub fn requested_view(cmd: &TransferCommand) -> HoldView {
    HoldView {
        id: cmd.id,
        status: HoldStatus::Requested,
        reason: None,
        from_account: cmd.from_account,
        to_account: cmd.to_account,
        amount: format_money(cmd.amount, &cmd.currency),
        captured_amount: None,
        currency: cmd.currency.clone(),
        reference: cmd.reference.clone(),
        created_at: cmd.accepted_at,
        expires_at: cmd.expires_at.unwrap_or(cmd.accepted_at),
        finished_at: None,
        capture_transfer_id: None,
        action: None,
        actions: None,
    }
}

fn answer(view: &HoldView, replayed: bool) -> Response {
    responses::accepted(view, &format!("/v1/holds/{}", view.id), replayed)
}

fn not_found(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("no hold {id} visible to you"))
}

/// A hold the caller may see: stored, or still in the queue.
pub async fn visible(state: &SharedState, caller: Caller, id: Uuid) -> Result<HoldView, ApiError> {
    let found = publish::find(state, id, || ledger::holds::get(&state.pool, id)).await?;
    if let Found::Queued(cmd) = &found
        && cmd.op == Op::HoldCreate
        && caller.may_read(cmd.owner)
    {
        return Ok(requested_view(cmd));
    }
    if let Found::Stored(row) = found {
        let owners = ledger::holds::owners(&state.pool, &row).await?;
        if caller.may_read(row.owner_id) || owners.contains(&caller.id) {
            let mut view = row.view();
            let actions = ledger::holds::actions_of(&state.pool, id).await?;
            view.actions = Some(actions.iter().map(|a| a.view(&row.currency)).collect());
            return Ok(view);
        }
    }
    Err(not_found(id))
}

/// Queues a new hold of `order` for `seconds`.
pub async fn create(
    state: &SharedState,
    caller: Caller,
    key: &IdempotencyKey,
    order: TransferOrder,
    seconds: u32,
) -> Result<Response, ApiError> {
    let id = hold_id(caller.id, key);
    let fingerprint = order.fingerprint();
    if let Some(response) = known_hold(state, id, &fingerprint, false).await? {
        return Ok(response);
    }
    check_accounts::transfer(state, caller, &order).await?;
    let accepted_at = now();
    let mut cmd = submit_transfer::command(
        id,
        caller.id,
        key.as_str().to_owned(),
        &order,
        accepted_at,
        None,
    );
    // New work only while the queue clears within the budget (as transfers).
    let admitted = state.backlog.admit()?;
    cmd.op = Op::HoldCreate;
    cmd.expires_at = Some(accepted_at + TimeDelta::seconds(i64::from(seconds)));
    match publish::transfer(state, &cmd, admitted).await? {
        Published::New => Ok(answer(&requested_view(&cmd), false)),
        Published::AlreadyThere => known_hold(state, id, &fingerprint, true)
            .await?
            .ok_or(ApiError::InProgress),
    }
}

async fn known_hold(
    state: &SharedState,
    id: Uuid,
    fingerprint: &[u8; 32],
    look_in_queue: bool,
) -> Result<Option<Response>, ApiError> {
    if let Some(row) = ledger::holds::get(&state.pool, id).await? {
        if row.fingerprint.as_slice() != fingerprint {
            return Err(ApiError::KeyReused);
        }
        return Ok(Some(answer(&row.view(), true)));
    }
    if look_in_queue && let Some(cmd) = publish::pending_command(state, id).await? {
        if &cmd.fingerprint() != fingerprint {
            return Err(ApiError::KeyReused);
        }
        return Ok(Some(answer(&requested_view(&cmd), true)));
    }
    Ok(None)
}

/// Queues a capture (`op` = capture, `amount` `None` = all of it) or a
/// void of hold `hold` by its owner.
pub async fn act(
    state: &SharedState,
    caller: Caller,
    key: &IdempotencyKey,
    hold: Uuid,
    op: Op,
    amount: Option<&str>,
) -> Result<Response, ApiError> {
    let found = publish::find(state, hold, || ledger::holds::get(&state.pool, hold)).await?;
    let mut view = match found {
        Found::Stored(row) if row.owner_id == caller.id => row.view(),
        // Still queued: a capture or void now could overtake the hold (and
        // be refused for good under this key). `409`: retry shortly.
        Found::Queued(cmd) if cmd.op == Op::HoldCreate && cmd.owner == caller.id => {
            return Err(ApiError::InProgress);
        }
        _ => return Err(not_found(hold)),
    };
    let amount = match amount {
        None => None,
        Some(text) => Some(parse_amount(text, &view.currency)?),
    };
    let id = hold_action_id(caller.id, key);
    let fingerprint = action_fingerprint(op, hold, amount);
    let kind = if op == Op::HoldVoid {
        "void"
    } else {
        "capture"
    };
    if let Some(prior) = ledger::holds::action(&state.pool, id).await? {
        if prior.fingerprint.as_slice() != fingerprint {
            return Err(ApiError::KeyReused);
        }
        view.action = Some(prior.view(&view.currency));
        return Ok(answer(&view, true));
    }
    let cmd = TransferCommand {
        v: shared::messages::SCHEMA_VERSION,
        id,
        owner: caller.id,
        idempotency_key: key.as_str().to_owned(),
        from_account: view.from_account,
        to_account: view.to_account,
        amount: amount.unwrap_or(Decimal::ZERO),
        currency: view.currency.clone(),
        reference: None,
        accepted_at: now(),
        batch: None,
        op,
        hold_id: Some(hold),
        expires_at: None,
        reverses: None,
        reversal_reason: None,
    };
    let requested = |cmd: &TransferCommand| HoldActionView {
        id,
        kind: kind.to_owned(),
        status: "requested".to_owned(),
        reason: None,
        amount: amount.map(|a| format_money(a, &cmd.currency)),
        created_at: cmd.accepted_at,
    };
    let admitted = state.backlog.admit()?;
    let replayed = match publish::transfer(state, &cmd, admitted).await? {
        Published::New => false,
        Published::AlreadyThere => {
            match publish::pending_command(state, id).await? {
                Some(q) if q.fingerprint() != cmd.fingerprint() => {
                    return Err(ApiError::KeyReused);
                }
                _ => {}
            }
            true
        }
    };
    view.action = Some(requested(&cmd));
    Ok(answer(&view, replayed))
}

/// A capture amount in the hold's currency: 422 naming the field otherwise.
fn parse_amount(text: &str, currency: &str) -> Result<Decimal, ApiError> {
    let currency = shared::money::Currency::parse(currency)
        .map_err(|e| ApiError::field("amount", e.to_string()))?;
    shared::money::Amount::parse(text, currency)
        .map(|a| a.value())
        .map_err(|e| ApiError::field("amount", e.to_string()))
}

/// Now, at PostgreSQL's precision.
fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}
