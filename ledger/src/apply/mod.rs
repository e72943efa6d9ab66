//! The batched double-entry apply: many transfers, one transaction, one
//! entry point ([`apply`]) for both kinds of batch ([`Mode`]).
//!
//! 1. Lock every account the batch touches, once, in id order
//!    (`ORDER BY id FOR UPDATE`): two batches can never wait on each other in
//!    a cycle, so there are no deadlocks however many run at once.
//! 2. Read which transfer ids already exist (redeliveries and retries). Any
//!    transaction that applied one of them held the same account locks, so
//!    after step 1 this read is settled.
//! 3. Decide each transfer in batch order in memory ([`decide`]): a
//!    transfer that would overdraw is rejected on its own, the others commit.
//! 4. Write everything in one statement ([`write`]): transfers
//!    (`ON CONFLICT DO NOTHING`), entries, and each account's new balance once.
//! 5. Check the write counts against the decisions; on any mismatch roll back
//!    and report a conflict (the caller retries).
//!
//! Five round trips per batch, whatever its size. An atomic batch with any
//! rejection rolls back and stores every payment rejected in one more
//! statement.
//!
//! The ledger answers with ledger facts ([`Applied`]: each transfer as
//! stored, its outcome, the accounts' new balances); who hears about them
//! and in what shape is the processor's business.

mod decide;
mod request;
mod write;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use shared::transfer::{RejectReason, TransferStatus};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

pub use decide::AccountBalance;
use decide::{AccountState, Accounts, decide};
pub use request::{Stages, TransferRequest};
use write::{BalanceUpdates, EntryRows, TransferRows};

use crate::transfers::{TRANSFER_COLUMNS, TransferRow};
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

/// One request's transfer as the ledger now holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedTransfer {
    /// The stored row (for a duplicate, the earlier one).
    pub transfer: TransferRow,
    /// Owner of the destination account, when the batch locked it.
    pub payee_owner: Option<Uuid>,
}

/// The result of a batch, in input order: `outcomes[i]` and `transfers[i]`
/// are request `i`'s; `accounts` is the final state of every account a
/// committed transfer touched (now, or earlier for a re-emitted commit).
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub outcomes: Vec<Outcome>,
    pub transfers: Vec<AppliedTransfer>,
    pub accounts: Vec<AccountBalance>,
}

impl Applied {
    fn with_capacity(n: usize) -> Self {
        Self {
            outcomes: Vec::with_capacity(n),
            transfers: Vec::with_capacity(n),
            accounts: Vec::new(),
        }
    }

    fn push(&mut self, outcome: Outcome, transfer: TransferRow, payee_owner: Option<Uuid>) {
        self.outcomes.push(outcome);
        self.transfers.push(AppliedTransfer {
            transfer,
            payee_owner,
        });
    }

    /// Batch accounting: one answer per request, every request either
    /// decided now (committed or rejected) or recognised (duplicate, key
    /// reused).
    fn check_accounting(&self, requests: usize) {
        assert_eq!(self.outcomes.len(), requests, "one outcome per request");
        assert_eq!(self.transfers.len(), requests, "one transfer per request");
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
    let mut tx = pool.begin().await?;
    let applied = decide_and_write(&mut tx, requests, stages).await?;
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

/// Steps 1–5 of the module docs inside the caller's transaction.
async fn decide_and_write(
    conn: &mut PgConnection,
    requests: &[TransferRequest],
    stages: &[Stages],
) -> Result<Applied, LedgerError> {
    if requests.is_empty() {
        return Ok(Applied::default());
    }
    let mut accounts = lock_accounts(conn, requests).await?;
    let ids: Vec<Uuid> = requests.iter().map(|r| r.id).collect();
    let existing: Vec<TransferRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id = ANY($1)"
    )))
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut known: HashMap<Uuid, TransferRow> = existing.into_iter().map(|t| (t.id, t)).collect();

    // PostgreSQL keeps microseconds: round now so the rows we return equal
    // what a later read returns.
    let processed_at = micros(Utc::now());
    let mut transfers = TransferRows::default();
    let mut entries = EntryRows::default();
    let mut applied = Applied::with_capacity(requests.len());
    let payee = |accounts: &Accounts, to: Uuid| accounts.get(&to).map(|a| a.row.owner_id);

    let no_stages = Stages::default();
    for (i, r) in requests.iter().enumerate() {
        if let Some(prior) = known.get(&r.id) {
            let outcome = if prior.fingerprint == r.fingerprint() {
                Outcome::Duplicate
            } else {
                Outcome::KeyReused
            };
            if prior.status == TransferStatus::Committed.as_str() {
                for acc in [prior.from_account, prior.to_account] {
                    if let Some(a) = accounts.get_mut(&acc) {
                        a.report = true;
                    }
                }
            }
            let payee_owner = payee(&accounts, prior.to_account);
            applied.push(outcome, prior.clone(), payee_owner);
            continue;
        }

        let reason = decide(r, &mut accounts).err();
        if reason.is_none() {
            // `decide` only commits when both accounts are locked.
            let balance = |id: Uuid| accounts.get(&id).map_or(Decimal::ZERO, |a| a.row.balance);
            entries.push_pair(
                r.id,
                (r.from_account, -r.amount, balance(r.from_account)),
                (r.to_account, r.amount, balance(r.to_account)),
                processed_at,
            );
        }
        let fingerprint = r.fingerprint().to_vec();
        let stage = stages.get(i).unwrap_or(&no_stages);
        transfers.push(r, fingerprint.clone(), reason, processed_at, stage);
        let row = stored_row(r, fingerprint, reason, processed_at);
        let outcome = reason.map_or(Outcome::Committed, Outcome::Rejected);
        applied.push(outcome, row.clone(), payee(&accounts, r.to_account));
        // A second copy of this id later in the same batch is a duplicate.
        known.insert(r.id, row);
    }
    applied.check_accounting(requests.len());
    let committed = applied
        .outcomes
        .iter()
        .filter(|o| **o == Outcome::Committed)
        .count();
    // Established by `push_pair`: two entries per commit, summing to zero.
    assert_eq!(entries.len(), 2 * committed, "two entries per commit");
    assert_eq!(entries.sum(), Decimal::ZERO, "entries sum to zero");

    let mut balances = BalanceUpdates::default();
    for a in accounts.values().filter(|a| a.changed) {
        balances.id.push(a.row.id);
        balances.balance.push(a.row.balance);
        balances.version.push(a.row.version);
    }
    if !transfers.is_empty() {
        let written = write::write_batch(conn, &transfers, &entries, &balances).await?;
        let expected = (transfers.len(), entries.len(), balances.id.len());
        if written != expected {
            // Someone inserted one of our ids after we looked (possible only for
            // transfers that touch no locked account). Roll back and retry.
            return Err(LedgerError::Conflict(format!(
                "wrote (transfers, entries, accounts) = {written:?}, expected {expected:?}"
            )));
        }
    }
    applied.accounts = accounts
        .into_values()
        .filter(|a| a.changed || a.report)
        .map(|a| a.row)
        .collect();
    Ok(applied)
}

/// Step 1: locks every account the batch touches, in id order.
async fn lock_accounts(
    conn: &mut PgConnection,
    requests: &[TransferRequest],
) -> Result<Accounts, LedgerError> {
    let mut account_ids: Vec<Uuid> = requests
        .iter()
        .flat_map(|r| [r.from_account, r.to_account])
        .collect();
    account_ids.sort_unstable();
    account_ids.dedup();
    let locked: Vec<AccountBalance> = sqlx::query_as(
        "SELECT id, owner_id, currency, balance, overdraft_limit, version, created_at \
         FROM accounts WHERE id = ANY($1) ORDER BY id FOR UPDATE",
    )
    .bind(&account_ids)
    .fetch_all(&mut *conn)
    .await?;
    Ok(locked
        .into_iter()
        .map(|row| (row.id, AccountState::new(row)))
        .collect())
}

/// The row a newly decided request becomes (what a later read returns).
fn stored_row(
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
