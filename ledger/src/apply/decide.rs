//! Deciding transfers in memory against the locked accounts: the only
//! place the ledger's money rules live (same account, valid amount,
//! ownership, currency, overdraft). Pure: no I/O, so it is unit-tested.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use shared::money::{Amount, Currency};
use shared::transfer::RejectReason;
use uuid::Uuid;

use super::TransferRequest;

/// An account locked by the batch, as it stands after the batch (balances
/// and versions move in memory as transfers commit).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AccountBalance {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub currency: String,
    pub balance: Decimal,
    pub overdraft_limit: Decimal,
    /// The sum of the pending holds: `balance - held` is what can be spent.
    pub held: Decimal,
    /// Increases with every balance (or held) change.
    pub version: i64,
    pub created_at: DateTime<Utc>,
}

/// Mutable view of a locked account while the batch is decided.
#[derive(Debug, Clone)]
pub(super) struct AccountState {
    pub(super) row: AccountBalance,
    pub(super) changed: bool,
    /// Included in the result (changed now, or touched by a re-emitted commit).
    pub(super) report: bool,
}

impl AccountState {
    pub(super) fn new(row: AccountBalance) -> Self {
        Self {
            row,
            changed: false,
            report: false,
        }
    }
}

/// The batch's locked accounts by id.
pub(super) type Accounts = HashMap<Uuid, AccountState>;

impl AccountBalance {
    /// What can be spent or held now (may be negative within the overdraft).
    pub fn available(&self) -> Decimal {
        self.balance - self.held
    }
}

/// Decides one transfer against the in-memory account states and, when it
/// commits, moves the money there. Checks run in a fixed order so the same
/// request always gets the same reason.
pub(super) fn decide(r: &TransferRequest, accounts: &mut Accounts) -> Result<(), RejectReason> {
    check(r, accounts)?;
    move_money(accounts, r.from_account, r.to_account, r.amount);
    Ok(())
}

/// The checks of [`decide`] without moving anything (also a new hold's).
pub(super) fn check(r: &TransferRequest, accounts: &Accounts) -> Result<(), RejectReason> {
    if r.from_account == r.to_account {
        return Err(RejectReason::SameAccount);
    }
    let currency = Currency::parse(&r.currency).map_err(|_| RejectReason::InvalidAmount)?;
    Amount::from_decimal(r.amount, currency).map_err(|_| RejectReason::InvalidAmount)?;
    let from = accounts
        .get(&r.from_account)
        .ok_or(RejectReason::SourceAccountNotFound)?;
    if from.row.owner_id != r.owner {
        return Err(RejectReason::SourceAccountNotOwned);
    }
    let to = accounts
        .get(&r.to_account)
        .ok_or(RejectReason::DestinationAccountNotFound)?;
    if from.row.currency != r.currency || to.row.currency != r.currency {
        return Err(RejectReason::CurrencyMismatch);
    }
    if from.row.available() - r.amount < -from.row.overdraft_limit {
        return Err(RejectReason::InsufficientFunds);
    }
    Ok(())
}

/// Moves `amount` from `from` to `to` in memory (both checked before).
pub(super) fn move_money(accounts: &mut Accounts, from: Uuid, to: Uuid, amount: Decimal) {
    for (id, delta) in [(from, -amount), (to, amount)] {
        if let Some(a) = accounts.get_mut(&id) {
            a.row.balance += delta;
            a.row.version += 1;
            a.changed = true;
        }
    }
    // Established by the callers' checks: no commit leaves the payer past
    // its overdraft, holds included.
    debug_assert!(
        accounts
            .get(&from)
            .is_some_and(|a| a.row.available() >= -a.row.overdraft_limit),
        "a committed movement overdrew its source"
    );
}

/// Changes what `account` holds by `delta` (a new hold: +, a finished one: -).
pub(super) fn change_held(accounts: &mut Accounts, account: Uuid, delta: Decimal) {
    if let Some(a) = accounts.get_mut(&account) {
        a.row.held += delta;
        a.row.version += 1;
        a.changed = true;
        debug_assert!(a.row.held >= Decimal::ZERO, "held went negative");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn account(id: u128, owner: u128, balance: &str, overdraft: &str) -> (Uuid, AccountState) {
        let id = Uuid::from_u128(id);
        (
            id,
            AccountState::new(AccountBalance {
                id,
                owner_id: Uuid::from_u128(owner),
                currency: "EUR".into(),
                balance: Decimal::from_str(balance).unwrap(),
                overdraft_limit: Decimal::from_str(overdraft).unwrap(),
                held: Decimal::ZERO,
                version: 0,
                created_at: Utc::now(),
            }),
        )
    }

    fn req(from: u128, to: u128, owner: u128, amount: &str) -> TransferRequest {
        TransferRequest::transfer(
            Uuid::new_v4(),
            Uuid::from_u128(owner),
            "k".into(),
            Uuid::from_u128(from),
            Uuid::from_u128(to),
            Decimal::from_str(amount).unwrap(),
            "EUR".into(),
            None,
            Utc::now(),
        )
    }

    #[test]
    fn holds_reduce_what_can_be_spent() {
        let mut acc: Accounts = [account(1, 10, "100", "10"), account(2, 20, "0", "0")]
            .into_iter()
            .collect();
        change_held(&mut acc, Uuid::from_u128(1), Decimal::from(70));
        // available 30, overdraft 10: 40 is the most.
        assert_eq!(
            decide(&req(1, 2, 10, "40.01"), &mut acc),
            Err(RejectReason::InsufficientFunds)
        );
        assert_eq!(decide(&req(1, 2, 10, "40"), &mut acc), Ok(()));
        assert_eq!(acc[&Uuid::from_u128(1)].row.balance, Decimal::from(60));
        assert_eq!(acc[&Uuid::from_u128(1)].row.available(), Decimal::from(-10));
    }

    #[test]
    fn decisions_in_order_within_a_batch() {
        let mut acc: Accounts = [account(1, 10, "100", "0"), account(2, 20, "0", "50")]
            .into_iter()
            .collect();
        assert_eq!(decide(&req(1, 2, 10, "60"), &mut acc), Ok(()));
        // 40 left: the second 60 overdraws and is rejected alone.
        assert_eq!(
            decide(&req(1, 2, 10, "60"), &mut acc),
            Err(RejectReason::InsufficientFunds)
        );
        assert_eq!(decide(&req(1, 2, 10, "40"), &mut acc), Ok(()));
        // Account 2 may go to -50 but not below.
        assert_eq!(decide(&req(2, 1, 20, "150"), &mut acc), Ok(()));
        assert_eq!(
            decide(&req(2, 1, 20, "0.01"), &mut acc),
            Err(RejectReason::InsufficientFunds)
        );
        assert_eq!(acc[&Uuid::from_u128(2)].row.balance, Decimal::from(-50));
        assert_eq!(acc[&Uuid::from_u128(1)].row.balance, Decimal::from(150));
    }

    #[test]
    fn rejections() {
        let mut acc: Accounts = [account(1, 10, "100", "0"), account(2, 20, "0", "0")]
            .into_iter()
            .collect();
        let e = |r: TransferRequest, acc: &mut Accounts| decide(&r, acc).unwrap_err();
        assert_eq!(e(req(1, 1, 10, "1"), &mut acc), RejectReason::SameAccount);
        assert_eq!(
            e(req(3, 2, 10, "1"), &mut acc),
            RejectReason::SourceAccountNotFound
        );
        assert_eq!(
            e(req(1, 3, 10, "1"), &mut acc),
            RejectReason::DestinationAccountNotFound
        );
        assert_eq!(
            e(req(1, 2, 20, "1"), &mut acc),
            RejectReason::SourceAccountNotOwned
        );
        assert_eq!(
            e(req(1, 2, 10, "0.001"), &mut acc),
            RejectReason::InvalidAmount
        );
        let mut usd = req(1, 2, 10, "1");
        usd.currency = "USD".into();
        assert_eq!(e(usd, &mut acc), RejectReason::CurrencyMismatch);
        assert!(acc.values().all(|a| !a.changed));
    }
}
