//! Step 1 of the apply: the batch's account locks, taken once, in id
//! order, waiting for them or going around those another transaction
//! holds; and which requests must then wait for a later round.

use std::collections::HashSet;

use shared::hold::Op;
use sqlx::PgConnection;
use uuid::Uuid;

use super::decide::{AccountState, Accounts};
use super::{AccountBalance, TransferRequest};
use crate::LedgerError;

/// How step 1 takes the batch's account locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Locking {
    /// Wait for every account (the batch is decided whole).
    Wait,
    /// Take the accounts no other transaction holds (`SKIP LOCKED`) and
    /// defer the requests that need one of the others (plain transfers
    /// only; see [`deferred`]).
    SkipHeld,
}

/// The requests (indices, ascending) that must wait for another
/// transaction: those naming an account that `SKIP LOCKED` did not return
/// (held elsewhere, or not there at all: the waiting round tells which),
/// and, so that each account still sees its transfers in batch order,
/// every later request naming an account of a deferred one.
pub(super) fn deferred(requests: &[TransferRequest], locked: &Accounts) -> Vec<usize> {
    let mut blocked: HashSet<Uuid> = HashSet::new();
    let mut out = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        let accounts = [r.from_account, r.to_account];
        if accounts
            .iter()
            .any(|a| blocked.contains(a) || !locked.contains_key(a))
        {
            blocked.extend(accounts);
            out.push(i);
        }
    }
    out
}

/// Step 1's statement: the accounts ($1) locked in id order, and whether
/// any of the batch's ids ($2) is already a transfer.
macro_rules! lock_sql {
    () => {
        "SELECT id, owner_id, currency, balance, overdraft_limit, held, version, created_at,
                EXISTS (SELECT 1 FROM transfers WHERE transfers.id = ANY($2)) AS known
         FROM accounts WHERE id = ANY($1) ORDER BY id FOR UPDATE"
    };
}
const LOCK_SQL: &str = lock_sql!();
/// The same, passing over rows another transaction holds (never waits).
const LOCK_SKIP_HELD_SQL: &str = concat!(lock_sql!(), " SKIP LOCKED");

/// A locked account and whether any of the batch's ids already exists.
#[derive(sqlx::FromRow)]
struct Locked {
    #[sqlx(flatten)]
    row: AccountBalance,
    known: bool,
}

/// Step 1: locks every account the batch touches, in id order, and in the
/// same statement asks whether any of `ids` is already a transfer (step 2's
/// question, without a round trip of its own).
///
/// That answer comes from the statement's snapshot, taken before the lock
/// waits: a transaction holding our accounts may commit one of our ids
/// while we wait, and we would not see it. Nothing goes wrong when it does:
/// inserting that id again fails the write on the primary key, which it
/// reports as a conflict (step 5), and the caller rolls back and retries
/// with a fresh snapshot. Redeliveries racing their own first delivery are
/// rare; a round trip on every batch is not. Answers `true` ("read them")
/// when no account row came back to carry the answer.
pub(super) async fn lock_accounts(
    conn: &mut PgConnection,
    requests: &[TransferRequest],
    mut account_ids: Vec<Uuid>,
    ids: &[Uuid],
    locking: Locking,
) -> Result<(Accounts, bool), LedgerError> {
    account_ids.extend(
        requests
            .iter()
            .filter(|r| matches!(r.op, Op::Transfer | Op::HoldCreate))
            .flat_map(|r| [r.from_account, r.to_account]),
    );
    account_ids.sort_unstable();
    account_ids.dedup();
    let sql = match locking {
        Locking::Wait => LOCK_SQL,
        Locking::SkipHeld => LOCK_SKIP_HELD_SQL,
    };
    let locked: Vec<Locked> = sqlx::query_as(sql)
        .bind(&account_ids)
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
    let maybe_known = locked.first().is_none_or(|l| l.known);
    let accounts = locked
        .into_iter()
        .map(|l| (l.row.id, AccountState::new(l.row)))
        .collect();
    Ok((accounts, maybe_known))
}
