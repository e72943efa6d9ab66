//! Reversing a committed transfer: a new transfer from the original's
//! payee back to its payer, queued like any transfer and decided by the
//! ledger under the account locks (how much is left to reverse, whether
//! the payee still has the money).
//!
//! The reversal's id is the caller's transfer id for the key (UUIDv5 of
//! (caller, key)); its fingerprint covers the original, the amount and the
//! reason, so the same key with another request is refused.

use axum::response::Response;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use shared::hold::{Op, REVERSAL_REASON_LEN_MAX, reversal_fingerprint};
use shared::messages::{SCHEMA_VERSION, TransferCommand, format_money};
use shared::problem::FieldError;
use shared::transfer::{IdempotencyKey, TransferStatus, transfer_id};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::Caller;
use crate::publish::{self, Published};
use crate::responses;
use crate::state::SharedState;

/// A validated reversal request (the amount still a string: its currency
/// is the original's).
pub struct Reversal {
    /// `None`: what is left to reverse.
    pub amount: Option<String>,
    pub reason: String,
}

/// Checks the reason (1..=200 characters, no control characters).
pub fn check_reason(reason: Option<&str>, errors: &mut Vec<FieldError>) -> Option<String> {
    let field = |message: &str| FieldError {
        field: "reason".into(),
        message: message.into(),
        line: None,
    };
    match reason {
        None => errors.push(field("is required")),
        Some(r) if r.trim().is_empty() || r.chars().count() > REVERSAL_REASON_LEN_MAX => {
            errors.push(field("must be 1 to 200 characters"))
        }
        Some(r) if r.chars().any(char::is_control) => {
            errors.push(field("must not contain control characters"))
        }
        Some(r) => return Some(r.to_owned()),
    }
    None
}

fn answer(view: &shared::messages::TransferView, replayed: bool) -> Response {
    responses::accepted(view, &format!("/v1/transfers/{}", view.id), replayed)
}

/// Queues the reversal of `original`; returns the response and the
/// reversal's id (for the audit record).
pub async fn submit(
    state: &SharedState,
    caller: Caller,
    key: &IdempotencyKey,
    original: Uuid,
    request: Reversal,
) -> Result<(Response, Uuid), ApiError> {
    let id = transfer_id(caller.id, key);
    let Some((orig, _)) = ledger::transfers::get(&state.pool, original).await? else {
        return Err(ApiError::NotFound(format!("no transfer {original}")));
    };
    let amount = match &request.amount {
        None => None,
        Some(text) => Some(parse_amount(text, &orig.currency)?),
    };
    let fingerprint = reversal_fingerprint(original, amount, &request.reason);
    if let Some(row) = state.lookups.get(id).await? {
        if row.fingerprint.as_slice() != fingerprint {
            return Err(ApiError::KeyReused);
        }
        return Ok((answer(&row.view(), true), id));
    }
    // A rejected original or a reversal of a reversal is queued all the
    // same: the ledger rejects it (`original_not_committed`), like every
    // other business rule, with a final answer on the stream.
    let cmd = TransferCommand {
        v: SCHEMA_VERSION,
        id,
        owner: caller.id,
        idempotency_key: key.as_str().to_owned(),
        // The money goes back: from the payee to the payer.
        from_account: orig.to_account,
        to_account: orig.from_account,
        amount: amount.unwrap_or(Decimal::ZERO),
        currency: orig.currency.clone(),
        reference: None,
        accepted_at: now(),
        batch: None,
        op: Op::Reversal,
        hold_id: None,
        expires_at: None,
        reverses: Some(original),
        reversal_reason: Some(request.reason.clone()),
    };
    let mut view = cmd.pending_view();
    if amount.is_none() {
        // What is left now; the ledger decides under the locks.
        let done: Decimal = ledger::transfers::reversals_of(&state.pool, original)
            .await?
            .iter()
            .filter(|t| t.status == TransferStatus::Committed.as_str())
            .map(|t| t.amount)
            .sum();
        view.amount = format_money(orig.amount - done, &orig.currency);
    }
    // New work only while the queue clears within the budget (as transfers).
    let admitted = state.backlog.admit()?;
    match publish::transfer(state, &cmd, admitted).await? {
        Published::New => Ok((answer(&view, false), id)),
        Published::AlreadyThere => match publish::pending_command(state, id).await? {
            Some(q) if q.fingerprint() != cmd.fingerprint() => Err(ApiError::KeyReused),
            Some(_) => Ok((answer(&view, true), id)),
            None => match state.lookups.get(id).await? {
                Some(row) if row.fingerprint.as_slice() == fingerprint => {
                    Ok((answer(&row.view(), true), id))
                }
                Some(_) => Err(ApiError::KeyReused),
                None => Err(ApiError::InProgress),
            },
        },
    }
}

fn parse_amount(text: &str, currency: &str) -> Result<Decimal, ApiError> {
    let currency = shared::money::Currency::parse(currency)
        .map_err(|e| ApiError::field("amount", e.to_string()))?;
    shared::money::Amount::parse(text, currency)
        .map(|a| a.value())
        .map_err(|e| ApiError::field("amount", e.to_string()))
}

fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}
