//! Steps 1–5 of the apply (see the module docs of `apply`) inside the
//! caller's transaction: lock, read what is known, decide each request in
//! order, write set-based, check the counts.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use shared::hold::Op;
use shared::transfer::{RejectReason, TransferStatus};
use sqlx::PgConnection;
use uuid::Uuid;

use super::decide::{Accounts, decide};
use super::locks::{Locking, deferred, lock_accounts};
use super::special::{self, Special, decide_capture, decide_hold, decide_release, decide_reversal};
use super::write::{self, BalanceUpdates, EntryRows, TransferRows};
use super::{Applied, AppliedHold, Outcome, Stages, TransferRequest, hold_rows};
use crate::transfers::{TRANSFER_COLUMNS, TransferRow};
use crate::{LedgerError, micros};

/// Everything the loop below builds up.
struct Batch<'a> {
    accounts: Accounts,
    special: Special,
    known: HashMap<Uuid, TransferRow>,
    transfers: TransferRows,
    entries: EntryRows,
    applied: Applied,
    processed_at: DateTime<Utc>,
    stages: &'a [Stages],
}

/// Steps 1–5 for `requests`; with [`Locking::SkipHeld`] some may be
/// deferred: the result then answers the requests *not* listed in the
/// returned indices, in order, and the deferred ones are left untouched.
pub(super) async fn decide_and_write(
    conn: &mut PgConnection,
    requests: &[TransferRequest],
    stages: &[Stages],
    locking: Locking,
) -> Result<(Applied, Vec<usize>), LedgerError> {
    if requests.is_empty() {
        return Ok((Applied::default(), Vec::new()));
    }
    let special_needed = special::needed(requests);
    let locking = if special_needed {
        Locking::Wait
    } else {
        locking
    };
    let (special, extra_accounts) = if special_needed {
        Special::accounts(conn, requests).await?
    } else {
        (Special::default(), Vec::new())
    };
    let ids: Vec<Uuid> = requests.iter().map(|r| r.id).collect();
    let (accounts, maybe_known) =
        lock_accounts(conn, requests, extra_accounts, &ids, locking).await?;
    let put_off = match locking {
        Locking::Wait => Vec::new(),
        Locking::SkipHeld => deferred(requests, &accounts),
    };
    if put_off.is_empty() {
        let applied =
            decide_locked(conn, requests, stages, &ids, accounts, maybe_known, special).await?;
        return Ok((applied, put_off));
    }
    // The rest of the batch, decided now (clones only when some wait).
    let now = (0..requests.len()).filter(|i| put_off.binary_search(i).is_err());
    let (kept, kept_stages) = sub_batch(requests, stages, now);
    let kept_ids: Vec<Uuid> = kept.iter().map(|r| r.id).collect();
    let applied = decide_locked(
        conn,
        &kept,
        &kept_stages,
        &kept_ids,
        accounts,
        maybe_known,
        special,
    )
    .await?;
    Ok((applied, put_off))
}

/// `requests[i]` with `stages[i]` for each `i` of `pick`, ascending: part
/// of a batch to decide on its own (`stages` stays empty if it was).
pub(super) fn sub_batch(
    requests: &[TransferRequest],
    stages: &[Stages],
    pick: impl Iterator<Item = usize>,
) -> (Vec<TransferRequest>, Vec<Stages>) {
    let (mut part, mut part_stages) = (Vec::new(), Vec::new());
    for i in pick {
        part.push(requests[i].clone());
        if !stages.is_empty() {
            part_stages.push(stages.get(i).cloned().unwrap_or_default());
        }
    }
    (part, part_stages)
}

/// Steps 2–5 once the accounts of `requests` are locked.
/// `ids` are the requests' ids, in order.
async fn decide_locked(
    conn: &mut PgConnection,
    requests: &[TransferRequest],
    stages: &[Stages],
    ids: &[Uuid],
    accounts: Accounts,
    maybe_known: bool,
    mut special: Special,
) -> Result<Applied, LedgerError> {
    let special_needed = special::needed(requests);
    if special_needed {
        special.settle(conn, requests).await?;
    }
    // Step 2 rides on step 1's statement: in the usual batch none of the
    // ids exists and this costs no round trip. When one may (a redelivery),
    // the rows are read now, after the locks, as before.
    let existing: Vec<TransferRow> = if maybe_known {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id = ANY($1)"
        )))
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?
    } else {
        Vec::new()
    };
    let mut b = Batch {
        accounts,
        special,
        known: existing.into_iter().map(|t| (t.id, t)).collect(),
        transfers: TransferRows::default(),
        entries: EntryRows::default(),
        applied: Applied::with_capacity(requests.len()),
        // PostgreSQL keeps microseconds: round now so the rows we return
        // equal what a later read returns.
        processed_at: micros(Utc::now()),
        stages,
    };
    for (i, r) in requests.iter().enumerate() {
        match r.op {
            Op::Transfer | Op::Reversal => b.transfer(i, r),
            Op::HoldCreate => b.hold_create(i, r),
            Op::HoldCapture | Op::HoldVoid => b.hold_action(i, r),
            Op::HoldExpire => b.hold_expire(i, r),
        }
    }
    b.applied.check_accounting(requests.len());
    let committed = b
        .applied
        .transfers
        .iter()
        .filter(|t| t.fresh && t.transfer.status == TransferStatus::Committed.as_str())
        .count();
    // Established by `push_pair`: two entries per commit, summing to zero.
    assert_eq!(b.entries.len(), 2 * committed, "two entries per commit");
    assert_eq!(b.entries.sum(), Decimal::ZERO, "entries sum to zero");

    let mut balances = BalanceUpdates::default();
    for a in b.accounts.values().filter(|a| a.changed) {
        balances.id.push(a.row.id);
        balances.balance.push(a.row.balance);
        balances.version.push(a.row.version);
        balances.held.push(a.row.held);
    }
    if !b.transfers.is_empty() || !balances.id.is_empty() {
        let written = write::write_batch(conn, &b.transfers, &b.entries, &balances).await?;
        let expected = (b.transfers.len(), b.entries.len(), balances.id.len());
        if written != expected {
            // Someone inserted one of our ids after we looked (possible only for
            // transfers that touch no locked account). Roll back and retry.
            return Err(LedgerError::Conflict(format!(
                "wrote (transfers, entries, accounts) = {written:?}, expected {expected:?}"
            )));
        }
    }
    if special_needed {
        hold_rows::write(conn, &b.special).await?;
    }
    let mut applied = b.applied;
    applied.accounts = b
        .accounts
        .into_values()
        .filter(|a| a.changed || a.report)
        .map(|a| a.row)
        .collect();
    Ok(applied)
}

impl Batch<'_> {
    fn owner(&self, account: Uuid) -> Option<Uuid> {
        self.accounts.get(&account).map(|a| a.row.owner_id)
    }

    fn report(&mut self, accounts: [Uuid; 2]) {
        for acc in accounts {
            if let Some(a) = self.accounts.get_mut(&acc) {
                a.report = true;
            }
        }
    }

    /// A plain transfer or a reversal (both are rows of `transfers`).
    fn transfer(&mut self, i: usize, r: &TransferRequest) {
        if let Some(prior) = self.known.get(&r.id).cloned() {
            let outcome = if prior.fingerprint == r.fingerprint() {
                Outcome::Duplicate
            } else {
                Outcome::KeyReused
            };
            if prior.status == TransferStatus::Committed.as_str() {
                self.report([prior.from_account, prior.to_account]);
            }
            self.applied.outcomes.push(outcome);
            self.push_transfer(i, prior, false);
            return;
        }
        // A plain transfer moves as asked (no copy on the hot path); a
        // reversal moves what the original and the sums say.
        let decided = if r.op == Op::Reversal {
            decide_reversal(r, &mut self.special, &mut self.accounts).map(|m| {
                let mut eff = r.clone();
                (eff.from_account, eff.to_account, eff.amount, eff.currency) = m;
                Some(eff)
            })
        } else {
            decide(r, &mut self.accounts).map(|()| None)
        };
        match decided {
            Ok(Some(eff)) => self.commit(i, &eff, r),
            Ok(None) => self.commit(i, r, r),
            Err(reason) => self.store(i, r, r, Some(reason)),
        }
    }

    /// Writes the committed transfer `eff` (as it moved) with its entries;
    /// `asked` is the request as its client sent it (see [`Self::store`]).
    fn commit(&mut self, i: usize, eff: &TransferRequest, asked: &TransferRequest) {
        let balance = |id: Uuid| {
            self.accounts
                .get(&id)
                .map_or(Decimal::ZERO, |a| a.row.balance)
        };
        let (from_after, to_after) = (balance(eff.from_account), balance(eff.to_account));
        self.entries.push_pair(
            eff.id,
            (eff.from_account, -eff.amount, from_after),
            (eff.to_account, eff.amount, to_after),
            self.processed_at,
        );
        self.store(i, eff, asked, None);
    }

    /// Stores `r` as decided, under the fingerprint of `asked`, the request
    /// as its client sent it. The two differ for a reversal or capture of
    /// "all of it": `r` carries the amount that moved, the client's request
    /// none, and a retry (or a redelivery) of that request must match what
    /// is stored to be answered as the same request, not as a reused key.
    fn store(
        &mut self,
        i: usize,
        r: &TransferRequest,
        asked: &TransferRequest,
        reason: Option<RejectReason>,
    ) {
        let no_stages = Stages::default();
        let stage = self.stages.get(i).unwrap_or(&no_stages);
        let fingerprint = asked.fingerprint().to_vec();
        self.transfers
            .push(r, fingerprint.clone(), reason, self.processed_at, stage);
        let row = super::stored_row(r, fingerprint, reason, self.processed_at);
        self.applied
            .outcomes
            .push(reason.map_or(Outcome::Committed, Outcome::Rejected));
        self.push_transfer(i, row.clone(), true);
        // A second copy of this id later in the same batch is a duplicate.
        self.known.insert(r.id, row);
    }

    fn push_transfer(&mut self, i: usize, row: TransferRow, fresh: bool) {
        let payee_owner = self.owner(row.to_account);
        let payer_owner = self.owner(row.from_account);
        self.applied.transfers.push(super::AppliedTransfer {
            request: i,
            transfer: row,
            payee_owner,
            payer_owner,
            fresh,
        });
    }

    fn push_hold(&mut self, i: usize, outcome: Outcome, hold_id: Uuid, action: Option<Uuid>) {
        self.applied.outcomes.push(outcome);
        let Some(hold) = self.special.holds.get(&hold_id).cloned() else {
            return;
        };
        let action = action.and_then(|a| self.special.actions.get(&a).cloned());
        let owners = [self.owner(hold.from_account), self.owner(hold.to_account)];
        self.applied.holds.push(AppliedHold {
            request: i,
            hold,
            action,
            owners,
        });
    }

    fn hold_create(&mut self, i: usize, r: &TransferRequest) {
        let stored = self
            .special
            .holds
            .get(&r.id)
            .map(|h| h.fingerprint == r.fingerprint());
        if let Some(same) = stored {
            let outcome = if same {
                Outcome::Duplicate
            } else {
                Outcome::KeyReused
            };
            self.push_hold(i, outcome, r.id, None);
            return;
        }
        let reason = decide_hold(r, &mut self.accounts).err();
        self.special.create(r, reason, self.processed_at);
        let outcome = reason.map_or(Outcome::Committed, Outcome::Rejected);
        self.push_hold(i, outcome, r.id, None);
    }

    fn hold_action(&mut self, i: usize, r: &TransferRequest) {
        let hold_id = r.hold_id.unwrap_or_default();
        if let Some(prior) = self.special.actions.get(&r.id) {
            let outcome = if prior.fingerprint == r.fingerprint() {
                Outcome::Duplicate
            } else {
                Outcome::KeyReused
            };
            let hold_id = prior.hold_id;
            self.push_hold(i, outcome, hold_id, Some(r.id));
            return;
        }
        let at = self.processed_at;
        let decided = if r.op == Op::HoldCapture {
            decide_capture(r, &mut self.special, &mut self.accounts, at).map(Some)
        } else {
            decide_release(r, &mut self.special, &mut self.accounts, at).map(|()| None)
        };
        let reason = decided.as_ref().err().copied();
        self.special.act(r, reason);
        if let Ok(Some((from, to, amount, currency))) = decided {
            // The capture's transfer: the action's id, the hold's accounts.
            let mut eff = r.clone();
            eff.op = Op::HoldCapture;
            (eff.from_account, eff.to_account, eff.amount, eff.currency) =
                (from, to, amount, currency);
            eff.reverses = None;
            eff.reversal_reason = None;
            let outcome_at = self.applied.outcomes.len();
            self.commit(i, &eff, r);
            // `commit` counted the transfer as this request's outcome; the
            // request's answer is the hold's (pushed below), so take it back.
            self.applied.outcomes.truncate(outcome_at);
        }
        let outcome = reason.map_or(Outcome::Committed, Outcome::Rejected);
        self.push_hold(i, outcome, hold_id, Some(r.id));
    }

    fn hold_expire(&mut self, i: usize, r: &TransferRequest) {
        let hold_id = r.hold_id.unwrap_or_default();
        let at = self.processed_at;
        let outcome = match decide_release(r, &mut self.special, &mut self.accounts, at) {
            Ok(()) => Outcome::Committed,
            // Captured, voided or expired already, or not due: nothing to do.
            Err(_) => Outcome::Duplicate,
        };
        self.push_hold(i, outcome, hold_id, None);
    }
}
