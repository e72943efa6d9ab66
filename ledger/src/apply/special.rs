//! Holds and reversals inside the batched apply: what a batch with such
//! commands loads besides the accounts, how each is decided in memory, and
//! how the hold rows are written. A batch of plain transfers never comes
//! here (no extra round trip on the hot path).
//!
//! Loading happens in two steps around the account locks: before, the
//! holds' and originals' accounts (immutable facts, to lock them too);
//! after, the holds' states, the captures/voids already applied and the
//! sums already reversed. Every change to a hold or a reversal sum is made
//! under the locks of the accounts it touches, so what is read after the
//! lock is settled.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use shared::hold::{HoldStatus, Op};
use shared::money::{Amount, Currency};
use shared::transfer::{RejectReason, TransferStatus};
use sqlx::PgConnection;
use uuid::Uuid;

use super::TransferRequest;
use super::decide::{Accounts, change_held, check, move_money};
use crate::LedgerError;
use crate::holds::{ACTION_COLUMNS, HOLD_COLUMNS, HoldActionRow, HoldRow};
use crate::transfers::{TRANSFER_COLUMNS, TransferRow};

/// How far the processor's clock may be behind the database's (whose
/// `now()` found the hold due) before an expiry is refused as early.
const EXPIRY_CLOCK_SKEW_MAX: chrono::TimeDelta = chrono::TimeDelta::seconds(30);

/// What a batch with holds or reversals knows besides its accounts.
#[derive(Debug, Default)]
pub(super) struct Special {
    /// Holds by id as they stand while the batch is decided.
    pub(super) holds: HashMap<Uuid, HoldRow>,
    /// Holds this batch creates (inserted), in order.
    pub(super) created: Vec<Uuid>,
    /// Stored holds this batch finishes (updated), in order.
    pub(super) finished: Vec<Uuid>,
    /// Captures and voids by id: stored ones and this batch's.
    pub(super) actions: HashMap<Uuid, HoldActionRow>,
    /// Actions this batch adds, in order.
    pub(super) new_actions: Vec<Uuid>,
    /// Originals of the batch's reversals.
    pub(super) originals: HashMap<Uuid, TransferRow>,
    /// Sum of the committed reversals of each original (this batch's too).
    pub(super) reversed: HashMap<Uuid, Decimal>,
}

/// Does the batch need [`Special`]?
pub(super) fn needed(requests: &[TransferRequest]) -> bool {
    requests.iter().any(|r| r.op != Op::Transfer)
}

fn hold_ids(requests: &[TransferRequest]) -> Vec<Uuid> {
    requests
        .iter()
        .filter_map(|r| match r.op {
            Op::HoldCreate => Some(r.id),
            Op::HoldCapture | Op::HoldVoid | Op::HoldExpire => r.hold_id,
            Op::Transfer | Op::Reversal => None,
        })
        .collect()
}

async fn load_holds(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<HoldRow>, LedgerError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {HOLD_COLUMNS} FROM holds WHERE id = ANY($1)"
    )))
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?)
}

impl Special {
    /// Before the locks: the accounts the holds and originals touch.
    pub(super) async fn accounts(
        conn: &mut PgConnection,
        requests: &[TransferRequest],
    ) -> Result<(Self, Vec<Uuid>), LedgerError> {
        let mut special = Self::default();
        let mut ids = Vec::new();
        for h in load_holds(conn, &hold_ids(requests)).await? {
            ids.extend([h.from_account, h.to_account]);
        }
        let originals: Vec<Uuid> = requests.iter().filter_map(|r| r.reverses).collect();
        if !originals.is_empty() {
            let rows: Vec<TransferRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id = ANY($1)"
            )))
            .bind(&originals)
            .fetch_all(&mut *conn)
            .await?;
            for t in rows {
                ids.extend([t.from_account, t.to_account]);
                special.originals.insert(t.id, t);
            }
        }
        Ok((special, ids))
    }

    /// After the locks: settled hold states, known actions, reversed sums.
    pub(super) async fn settle(
        &mut self,
        conn: &mut PgConnection,
        requests: &[TransferRequest],
    ) -> Result<(), LedgerError> {
        self.holds = load_holds(conn, &hold_ids(requests))
            .await?
            .into_iter()
            .map(|h| (h.id, h))
            .collect();
        let action_ids: Vec<Uuid> = requests
            .iter()
            .filter(|r| matches!(r.op, Op::HoldCapture | Op::HoldVoid))
            .map(|r| r.id)
            .collect();
        if !action_ids.is_empty() {
            let rows: Vec<HoldActionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {ACTION_COLUMNS} FROM hold_actions WHERE id = ANY($1)"
            )))
            .bind(&action_ids)
            .fetch_all(&mut *conn)
            .await?;
            self.actions = rows.into_iter().map(|a| (a.id, a)).collect();
        }
        if !self.originals.is_empty() {
            let ids: Vec<Uuid> = self.originals.keys().copied().collect();
            let sums: Vec<(Uuid, Decimal)> = sqlx::query_as(
                "SELECT reverses, sum(amount) FROM transfers \
                 WHERE reverses = ANY($1) AND status = 'committed' GROUP BY reverses",
            )
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await?;
            self.reversed = sums.into_iter().collect();
        }
        Ok(())
    }

    /// A new hold as decided (`reason`: rejected).
    pub(super) fn create(
        &mut self,
        r: &TransferRequest,
        reason: Option<RejectReason>,
        at: DateTime<Utc>,
    ) -> HoldRow {
        let status = if reason.is_some() {
            HoldStatus::Rejected
        } else {
            HoldStatus::Pending
        };
        let row = HoldRow {
            id: r.id,
            owner_id: r.owner,
            idempotency_key: r.idempotency_key.clone(),
            fingerprint: r.fingerprint().to_vec(),
            from_account: r.from_account,
            to_account: r.to_account,
            amount: r.amount,
            captured_amount: None,
            currency: r.currency.chars().take(3).collect(),
            reference: r.reference.clone(),
            status: status.as_str().to_owned(),
            reason: reason.map(|x| x.as_str().to_owned()),
            created_at: crate::micros(r.accepted_at),
            expires_at: crate::micros(r.expires_at.unwrap_or(r.accepted_at)),
            processed_at: at,
            // A rejected hold is final from the start.
            finished_at: reason.map(|_| at),
            capture_transfer_id: None,
        };
        self.holds.insert(row.id, row.clone());
        self.created.push(row.id);
        row
    }

    /// Hold commands the processor gave up on: a new hold is stored
    /// `rejected` / `processing_failed`, a capture or void as a rejected
    /// action (its hold untouched, so a pending one still expires); ids
    /// already stored are left as they are. Nothing moves and no balance
    /// changes, so no account is locked: the rows' keys settle a race with
    /// a late apply (the write's counts then differ and the caller retries).
    pub(super) async fn given_up(
        conn: &mut PgConnection,
        requests: &[TransferRequest],
        at: DateTime<Utc>,
    ) -> Result<Self, LedgerError> {
        let mut special = Self::default();
        special.settle(conn, requests).await?;
        let failed = Some(RejectReason::ProcessingFailed);
        for r in requests {
            match r.op {
                Op::HoldCreate if !special.holds.contains_key(&r.id) => {
                    special.create(r, failed, at);
                }
                Op::HoldCapture | Op::HoldVoid if !special.actions.contains_key(&r.id) => {
                    special.act(r, failed);
                }
                // An expiry is issued again by the expiry poller.
                _ => {}
            }
        }
        Ok(special)
    }

    /// Records a capture or void as decided.
    pub(super) fn act(
        &mut self,
        r: &TransferRequest,
        reason: Option<RejectReason>,
    ) -> HoldActionRow {
        let row = HoldActionRow {
            id: r.id,
            hold_id: r.hold_id.unwrap_or_default(),
            kind: if r.op == Op::HoldVoid {
                "void"
            } else {
                "capture"
            }
            .to_owned(),
            owner_id: r.owner,
            idempotency_key: r.idempotency_key.clone(),
            fingerprint: r.fingerprint().to_vec(),
            amount: if r.op == Op::HoldVoid {
                None
            } else {
                r.amount_asked()
            },
            status: if reason.is_some() {
                "rejected"
            } else {
                "applied"
            }
            .to_owned(),
            reason: reason.map(|x| x.as_str().to_owned()),
            created_at: crate::micros(r.accepted_at),
        };
        self.actions.insert(row.id, row.clone());
        self.new_actions.push(row.id);
        row
    }

    /// Marks stored (or this batch's) hold `id` finished in `status`.
    fn finish(&mut self, id: Uuid, status: HoldStatus, at: DateTime<Utc>) {
        if let Some(h) = self.holds.get_mut(&id) {
            h.status = status.as_str().to_owned();
            h.finished_at = Some(at);
            if !self.created.contains(&id) && !self.finished.contains(&id) {
                self.finished.push(id);
            }
        }
    }
}

/// Decides a new hold: the checks of a transfer, then the amount is
/// reserved (held) instead of moved.
pub(super) fn decide_hold(
    r: &TransferRequest,
    accounts: &mut Accounts,
) -> Result<(), RejectReason> {
    check(r, accounts)?;
    change_held(accounts, r.from_account, r.amount);
    Ok(())
}

/// Decides a capture of `r.hold_id`: moves the captured amount (all of the
/// hold unless less is asked) and releases the whole hold. Returns the
/// capture transfer's (from, to, amount, currency).
pub(super) fn decide_capture(
    r: &TransferRequest,
    special: &mut Special,
    accounts: &mut Accounts,
    at: DateTime<Utc>,
) -> Result<(Uuid, Uuid, Decimal, String), RejectReason> {
    let hold = pending_hold(r, special)?;
    let amount = r.amount_asked().unwrap_or(hold.amount);
    if amount > hold.amount {
        return Err(RejectReason::CaptureExceedsHold);
    }
    let currency = Currency::parse(&hold.currency).map_err(|_| RejectReason::InvalidAmount)?;
    Amount::from_decimal(amount, currency).map_err(|_| RejectReason::InvalidAmount)?;
    let (from, to, held) = (hold.from_account, hold.to_account, hold.amount);
    if !accounts.contains_key(&from) || !accounts.contains_key(&to) {
        return Err(RejectReason::HoldNotFound);
    }
    let currency = hold.currency.clone();
    change_held(accounts, from, -held);
    move_money(accounts, from, to, amount);
    special.finish(hold_key(r), HoldStatus::Captured, at);
    if let Some(h) = special.holds.get_mut(&hold_key(r)) {
        h.captured_amount = Some(amount);
        h.capture_transfer_id = Some(r.id);
    }
    Ok((from, to, amount, currency))
}

/// Decides a void or an expiry: releases the hold, moves nothing. An
/// expiry before the hold's time is refused like a finished hold.
pub(super) fn decide_release(
    r: &TransferRequest,
    special: &mut Special,
    accounts: &mut Accounts,
    at: DateTime<Utc>,
) -> Result<(), RejectReason> {
    let hold = pending_hold(r, special)?;
    if r.op == Op::HoldExpire && hold.expires_at > at + EXPIRY_CLOCK_SKEW_MAX {
        return Err(RejectReason::HoldNotPending);
    }
    let (from, held) = (hold.from_account, hold.amount);
    change_held(accounts, from, -held);
    let status = if r.op == Op::HoldExpire {
        HoldStatus::Expired
    } else {
        HoldStatus::Voided
    };
    special.finish(hold_key(r), status, at);
    Ok(())
}

fn hold_key(r: &TransferRequest) -> Uuid {
    r.hold_id.unwrap_or_default()
}

/// The pending hold `r` is about, if `r`'s sender may act on it (an expiry
/// is the system's and may act on any).
fn pending_hold<'a>(
    r: &TransferRequest,
    special: &'a Special,
) -> Result<&'a HoldRow, RejectReason> {
    let hold = special
        .holds
        .get(&hold_key(r))
        .filter(|h| r.op == Op::HoldExpire || h.owner_id == r.owner)
        .ok_or(RejectReason::HoldNotFound)?;
    if !hold.is_pending() {
        return Err(RejectReason::HoldNotPending);
    }
    // A capture or void asked for once the hold's time was up is refused
    // even if the expiry command has not been applied yet: the customer's
    // answer must not depend on when the scan runs. The hold stays held
    // until its expiry command releases it (exactly once, as always).
    if r.op != Op::HoldExpire && r.accepted_at >= hold.expires_at {
        return Err(RejectReason::HoldNotPending);
    }
    Ok(hold)
}

/// Decides a reversal: the original must be a committed transfer that is
/// not itself a reversal; the reversals never add up to more than it; the
/// payee must have the money (within their overdraft, holds counted).
/// Returns the reversal's (from, to, amount, currency).
pub(super) fn decide_reversal(
    r: &TransferRequest,
    special: &mut Special,
    accounts: &mut Accounts,
) -> Result<(Uuid, Uuid, Decimal, String), RejectReason> {
    let original_id = r.reverses.unwrap_or_default();
    let original = special
        .originals
        .get(&original_id)
        .filter(|t| t.status == TransferStatus::Committed.as_str() && t.reverses.is_none())
        .ok_or(RejectReason::OriginalNotCommitted)?;
    let reversed = special
        .reversed
        .get(&original_id)
        .copied()
        .unwrap_or_default();
    let left = original.amount - reversed;
    let amount = r.amount_asked().unwrap_or(left);
    if amount <= Decimal::ZERO || amount > left {
        return Err(RejectReason::ReversalExceedsOriginal);
    }
    let currency = Currency::parse(&original.currency).map_err(|_| RejectReason::InvalidAmount)?;
    Amount::from_decimal(amount, currency).map_err(|_| RejectReason::InvalidAmount)?;
    // The money goes back: from the original's payee to its payer.
    let (from, to) = (original.to_account, original.from_account);
    let payer = accounts
        .get(&from)
        .ok_or(RejectReason::SourceAccountNotFound)?;
    if !accounts.contains_key(&to) {
        return Err(RejectReason::DestinationAccountNotFound);
    }
    if payer.row.available() - amount < -payer.row.overdraft_limit {
        return Err(RejectReason::InsufficientFunds);
    }
    let currency = original.currency.clone();
    move_money(accounts, from, to, amount);
    *special.reversed.entry(original_id).or_default() += amount;
    Ok((from, to, amount, currency))
}

#[cfg(test)]
#[path = "special_tests.rs"]
mod tests;
