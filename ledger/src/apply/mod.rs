//! The batched double-entry apply: many transfers, one transaction, one
//! entry point ([`apply`]) for both kinds of batch ([`Mode`]).
//!
//! 1. Lock every account the batch touches, once, in id order
//!    (`ORDER BY id FOR UPDATE`): two batches can never wait on each other in
//!    a cycle, so there are no deadlocks however many run at once. A batch
//!    of independent plain transfers first goes around accounts another
//!    transaction holds (`SKIP LOCKED`) and applies the rest of itself in a
//!    second transaction that waits ([`locks`], `apply_around_held`).
//! 2. Learn which transfer ids already exist (redeliveries and retries):
//!    the lock statement also says whether any does, and only then are
//!    those rows read (after the locks, so the read is settled: any
//!    transaction that applied one of them held the same account locks).
//! 3. Decide each transfer in batch order in memory ([`decide`]): a
//!    transfer that would overdraw is rejected on its own, the others commit.
//! 4. Write everything in one statement ([`write`]): transfers, entries, and
//!    each account's new balance once.
//! 5. Check the write counts against the decisions; on any mismatch, or a
//!    transfer id stored concurrently (the primary key refuses it), roll
//!    back and report a conflict (the caller retries).
//!
//! Four round trips per transaction (BEGIN, lock, write, COMMIT), whatever
//! its size; five when a redelivered id is in it. An atomic batch with any
//! rejection rolls back and stores every payment rejected in one more
//! statement.
//!
//! The ledger answers with ledger facts ([`Applied`]: each transfer as
//! stored, its outcome, the accounts' new balances); who hears about them
//! and in what shape is the processor's business.

mod batch;
mod decide;
mod hold_rows;
mod locks;
mod request;
mod special;
mod write;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use shared::transfer::{RejectReason, TransferStatus};
use sqlx::PgPool;
use uuid::Uuid;

use batch::decide_and_write;
pub use decide::AccountBalance;
use locks::Locking;
pub use request::{Stages, TransferRequest};
use write::TransferRows;

use crate::holds::{HoldActionRow, HoldRow};
use crate::transfers::TransferRow;
use crate::{LedgerError, micros};

/// What happened to one request of the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Committed,
    Rejected(RejectReason),
    /// Already applied earlier (redelivery or retry): nothing moved now; the
    /// stored result is re-emitted.
    Duplicate,
    /// The id exists with a different request body: nothing moved now.
    KeyReused,
}

/// How a batch's transfers stand or fall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Each transfer on its own: a rejected one leaves the others committed.
    Independent,
    /// All or nothing: if any would be rejected, nothing moves and every
    /// payment is stored rejected (the failing ones with their own reason,
    /// the others `batch_aborted`).
    Atomic,
}

/// A transfer as the ledger now holds it (a plain transfer, a reversal, or
/// a capture's movement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedTransfer {
    /// The index of the request it answers.
    pub request: usize,
    /// The stored row (for a duplicate, the earlier one).
    pub transfer: TransferRow,
    /// Owner of the destination account, when the batch locked it.
    pub payee_owner: Option<Uuid>,
    /// Owner of the source account, when the batch locked it (a reversal's
    /// payer is not its requester).
    pub payer_owner: Option<Uuid>,
    /// Written by this batch (not an earlier one's, re-emitted).
    pub fresh: bool,
}

/// A hold a request created or acted on, as it now stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedHold {
    /// The index of the request it answers.
    pub request: usize,
    pub hold: HoldRow,
    /// The capture or void asked for, if the request was one.
    pub action: Option<HoldActionRow>,
    /// Owners of the hold's (from, to) accounts, when the batch locked them.
    pub owners: [Option<Uuid>; 2],
}

/// The result of a batch: `outcomes[i]` is request `i`'s. For a batch of
/// plain transfers `transfers[i]` is request `i`'s too; otherwise each
/// transfer and hold names its request. `accounts` is the final state of
/// every account a committed request touched (now, or earlier for a
/// re-emitted commit).
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub outcomes: Vec<Outcome>,
    pub transfers: Vec<AppliedTransfer>,
    pub holds: Vec<AppliedHold>,
    pub accounts: Vec<AccountBalance>,
}

impl Applied {
    fn with_capacity(n: usize) -> Self {
        Self {
            outcomes: Vec::with_capacity(n),
            transfers: Vec::with_capacity(n),
            holds: Vec::new(),
            accounts: Vec::new(),
        }
    }

    fn push(&mut self, outcome: Outcome, transfer: TransferRow, payee_owner: Option<Uuid>) {
        self.outcomes.push(outcome);
        self.transfers.push(AppliedTransfer {
            request: self.transfers.len(),
            transfer,
            payee_owner,
            payer_owner: None,
            fresh: true,
        });
    }

    /// Batch accounting: one answer per request, every request either
    /// decided now (committed or rejected) or recognised (duplicate, key
    /// reused).
    fn check_accounting(&self, requests: usize) {
        assert_eq!(self.outcomes.len(), requests, "one outcome per request");
    }
}

/// Applies `requests` as one batch in `mode` and commits; `stages[i]` is
/// recorded with `requests[i]` (`stages` may be empty). The one entry point
/// for applying transfers.
pub async fn apply(
    pool: &PgPool,
    requests: &[TransferRequest],
    stages: &[Stages],
    mode: Mode,
) -> Result<Applied, LedgerError> {
    if mode == Mode::Independent && !special::needed(requests) {
        return apply_around_held(pool, requests, stages).await;
    }
    let mut tx = pool.begin().await?;
    let (applied, _) = decide_and_write(&mut tx, requests, stages, Locking::Wait).await?;
    let refused = applied
        .outcomes
        .iter()
        .any(|o| matches!(o, Outcome::Rejected(_)));
    if mode == Mode::Atomic && refused {
        tx.rollback().await?;
        return abort(pool, requests, stages, &applied.outcomes).await;
    }
    tx.commit().await?;
    Ok(applied)
}

/// Independent plain transfers, in up to two transactions: first every
/// request whose accounts no other transaction holds (`SKIP LOCKED`), then
/// the rest, waiting for their accounts like any batch.
///
/// Why: a batch holds its account locks until it commits. Two batches of
/// 500 random transfers over 100,000 accounts share ~10 accounts, so with
/// plain waiting each transaction queued behind another's whole length and
/// concurrent applies ran one at a time (raw ceiling: 70 % of the
/// connections' samples in `Lock: transactionid`, 1.2 of 2 cores busy).
/// Now the shared few wait and the rest proceed. Each account still sees
/// its transfers in batch order (see `locks::deferred`), decisions are
/// made under the locks as before, and both transactions lock in id
/// order, so nothing can deadlock. If the second fails after the first
/// committed, the caller's retry finds the first's transfers stored and
/// answers them as duplicates with their stored result.
async fn apply_around_held(
    pool: &PgPool,
    requests: &[TransferRequest],
    stages: &[Stages],
) -> Result<Applied, LedgerError> {
    let mut tx = pool.begin().await?;
    let (first, put_off) = decide_and_write(&mut tx, requests, stages, Locking::SkipHeld).await?;
    tx.commit().await?;
    if put_off.is_empty() {
        return Ok(first);
    }
    let (rest, rest_stages) = batch::sub_batch(requests, stages, put_off.iter().copied());
    let mut tx = pool.begin().await?;
    let (second, _) = decide_and_write(&mut tx, &rest, &rest_stages, Locking::Wait).await?;
    tx.commit().await?;
    merge_rounds(requests.len(), first, second, &put_off)
}

/// One answer in request order from the two rounds: `first` answers the
/// requests not in `put_off` (ascending), `second` those in it.
fn merge_rounds(
    n: usize,
    first: Applied,
    second: Applied,
    put_off: &[usize],
) -> Result<Applied, LedgerError> {
    let mut out = Applied::with_capacity(n);
    let mut now = first.outcomes.into_iter().zip(first.transfers);
    let mut later = second.outcomes.into_iter().zip(second.transfers);
    let mut off = put_off.iter().copied().peekable();
    for i in 0..n {
        let next = if off.next_if_eq(&i).is_some() {
            later.next()
        } else {
            now.next()
        };
        // Plain transfers answer one transfer per request (`Applied`).
        let (outcome, mut transfer) = next.ok_or_else(|| {
            LedgerError::Conflict("a round answered fewer requests than it was given".into())
        })?;
        transfer.request = i;
        out.outcomes.push(outcome);
        out.transfers.push(transfer);
    }
    // The second round's balances are the later ones.
    let mut accounts: HashMap<Uuid, AccountBalance> =
        first.accounts.into_iter().map(|a| (a.id, a)).collect();
    accounts.extend(second.accounts.into_iter().map(|a| (a.id, a)));
    out.accounts = accounts.into_values().collect();
    out.check_accounting(n);
    Ok(out)
}

/// The row a newly decided request becomes (what a later read returns).
pub(super) fn stored_row(
    r: &TransferRequest,
    fingerprint: Vec<u8>,
    reason: Option<RejectReason>,
    processed_at: DateTime<Utc>,
) -> TransferRow {
    let status = match reason {
        None => TransferStatus::Committed,
        Some(_) => TransferStatus::Rejected,
    };
    TransferRow {
        id: r.id,
        owner_id: r.owner,
        fingerprint,
        from_account: r.from_account,
        to_account: r.to_account,
        amount: r.amount,
        currency: r.currency.clone(),
        reference: r.reference.clone(),
        status: status.as_str().to_owned(),
        reason: reason.map(|x| x.as_str().to_owned()),
        created_at: micros(r.accepted_at),
        processed_at,
        hold_id: r.hold_id.filter(|_| r.op == shared::hold::Op::HoldCapture),
        reverses: r.reverses,
        reversal_reason: r.reversal_reason.clone(),
    }
}

/// An atomic batch that cannot commit: every payment is stored rejected
/// (its own reason, or `batch_aborted`) in one statement; nothing moves.
async fn abort(
    pool: &PgPool,
    requests: &[TransferRequest],
    stages: &[Stages],
    decided: &[Outcome],
) -> Result<Applied, LedgerError> {
    let reasons: Vec<RejectReason> = decided
        .iter()
        .map(|o| match o {
            Outcome::Rejected(r) => *r,
            _ => RejectReason::BatchAborted,
        })
        .collect();
    let rows = store_refused(pool, requests, stages, &reasons).await?;
    let mut out = Applied::with_capacity(requests.len());
    for (row, reason) in rows.into_iter().zip(&reasons) {
        out.push(Outcome::Rejected(*reason), row, None);
    }
    out.check_accounting(requests.len());
    Ok(out)
}

/// Records transfers the processor gave up on as `rejected` /
/// `processing_failed` (nothing moves), unless their ids already exist.
/// Returns them as stored, in input order.
pub async fn record_failures(
    pool: &PgPool,
    requests: &[TransferRequest],
) -> Result<Vec<TransferRow>, LedgerError> {
    let reasons = vec![RejectReason::ProcessingFailed; requests.len()];
    store_refused(pool, requests, &[], &reasons).await
}

/// Records hold commands (create, capture, void) the processor gave up on
/// (see `Special::given_up`) and returns each as it now stands, with the
/// capture or void asked for; other commands are skipped.
pub async fn record_hold_failures(
    pool: &PgPool,
    requests: &[TransferRequest],
) -> Result<Vec<AppliedHold>, LedgerError> {
    let mut tx = pool.begin().await?;
    let special = special::Special::given_up(&mut tx, requests, micros(Utc::now())).await?;
    hold_rows::write(&mut tx, &special).await?;
    tx.commit().await?;
    let mut out = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        let (hold_id, action) = match r.op {
            shared::hold::Op::HoldCreate => (r.id, None),
            shared::hold::Op::HoldCapture | shared::hold::Op::HoldVoid => (
                r.hold_id.unwrap_or_default(),
                special.actions.get(&r.id).cloned(),
            ),
            _ => continue,
        };
        if let Some(hold) = special.holds.get(&hold_id) {
            out.push(AppliedHold {
                request: i,
                hold: hold.clone(),
                action,
                owners: [None, None],
            });
        }
    }
    Ok(out)
}

/// Inserts `requests[i]` rejected with `reasons[i]` (existing ids are left
/// as they are) and reads them back as stored, in input order.
async fn store_refused(
    pool: &PgPool,
    requests: &[TransferRequest],
    stages: &[Stages],
    reasons: &[RejectReason],
) -> Result<Vec<TransferRow>, LedgerError> {
    let processed_at = micros(Utc::now());
    let no_stages = Stages::default();
    let mut rows = TransferRows::default();
    for (i, (r, reason)) in requests.iter().zip(reasons).enumerate() {
        rows.push_refused(
            r,
            *reason,
            processed_at,
            stages.get(i).unwrap_or(&no_stages),
        );
    }
    let mut conn = pool.acquire().await?;
    rows.insert(&mut conn).await?;
    let ids: Vec<Uuid> = requests.iter().map(|r| r.id).collect();
    let by_id: HashMap<Uuid, TransferRow> = crate::transfers::get_many(pool, &ids)
        .await?
        .into_iter()
        .map(|r| (r.id, r))
        .collect();
    requests
        .iter()
        .map(|r| {
            by_id
                .get(&r.id)
                .cloned()
                .ok_or_else(|| LedgerError::Conflict("a refused transfer vanished".into()))
        })
        .collect()
}
