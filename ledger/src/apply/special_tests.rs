//! Unit tests of the hold and reversal decisions (pure, in memory).

use super::*;
use crate::apply::AccountBalance;
use crate::apply::decide::AccountState;
use std::str::FromStr;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn accounts(from_balance: &str) -> Accounts {
    [(1, 10, from_balance), (2, 20, "0")]
        .into_iter()
        .map(|(id, owner, balance)| {
            let id = Uuid::from_u128(id);
            let row = AccountBalance {
                id,
                owner_id: Uuid::from_u128(owner),
                currency: "EUR".into(),
                balance: d(balance),
                overdraft_limit: Decimal::ZERO,
                held: Decimal::ZERO,
                version: 0,
                created_at: Utc::now(),
            };
            (id, AccountState::new(row))
        })
        .collect()
}

fn req(op: Op, id: u128, amount: &str) -> TransferRequest {
    let mut r = TransferRequest::transfer(
        Uuid::from_u128(id),
        Uuid::from_u128(10),
        format!("k{id}"),
        Uuid::from_u128(1),
        Uuid::from_u128(2),
        d(amount),
        "EUR".into(),
        None,
        Utc::now(),
    );
    r.op = op;
    r.expires_at = Some(Utc::now() + chrono::TimeDelta::hours(1));
    r
}

fn action(op: Op, id: u128, hold: u128, amount: &str) -> TransferRequest {
    let mut r = req(op, id, amount);
    r.hold_id = Some(Uuid::from_u128(hold));
    r
}

/// A hold of `amount` created in memory; returns (special, accounts).
fn held(amount: &str) -> (Special, Accounts) {
    let mut acc = accounts("100");
    let mut special = Special::default();
    let r = req(Op::HoldCreate, 50, amount);
    assert_eq!(decide_hold(&r, &mut acc), Ok(()));
    special.create(&r, None, Utc::now());
    (special, acc)
}

fn row(acc: &Accounts, id: u128) -> &AccountBalance {
    &acc[&Uuid::from_u128(id)].row
}

#[test]
fn a_hold_reserves_and_a_partial_capture_releases_the_rest() {
    let (mut special, mut acc) = held("60");
    assert_eq!(
        (row(&acc, 1).balance, row(&acc, 1).held),
        (d("100"), d("60"))
    );
    // 40 available: a second hold of 41 is refused.
    assert_eq!(
        decide_hold(&req(Op::HoldCreate, 51, "41"), &mut acc),
        Err(RejectReason::InsufficientFunds)
    );
    let cap = action(Op::HoldCapture, 60, 50, "25");
    let moved = decide_capture(&cap, &mut special, &mut acc, Utc::now());
    assert_eq!(moved.map(|m| m.2), Ok(d("25")));
    assert_eq!((row(&acc, 1).balance, row(&acc, 1).held), (d("75"), d("0")));
    assert_eq!(row(&acc, 2).balance, d("25"));
    let h = &special.holds[&Uuid::from_u128(50)];
    assert_eq!(
        (h.status.as_str(), h.captured_amount),
        ("captured", Some(d("25")))
    );
    // Everything after is refused: nothing moves.
    for r in [
        action(Op::HoldCapture, 61, 50, "0"),
        action(Op::HoldVoid, 62, 50, "0"),
    ] {
        let before = row(&acc, 1).clone();
        let refused = if r.op == Op::HoldVoid {
            decide_release(&r, &mut special, &mut acc, Utc::now()).err()
        } else {
            decide_capture(&r, &mut special, &mut acc, Utc::now()).err()
        };
        assert_eq!(refused, Some(RejectReason::HoldNotPending));
        assert_eq!(row(&acc, 1), &before);
    }
}

#[test]
fn captures_beyond_the_hold_and_strangers_are_refused() {
    let (mut special, mut acc) = held("60");
    let over = action(Op::HoldCapture, 60, 50, "60.01");
    assert_eq!(
        decide_capture(&over, &mut special, &mut acc, Utc::now()).err(),
        Some(RejectReason::CaptureExceedsHold)
    );
    let mut stranger = action(Op::HoldVoid, 61, 50, "0");
    stranger.owner = Uuid::from_u128(20);
    assert_eq!(
        decide_release(&stranger, &mut special, &mut acc, Utc::now()).err(),
        Some(RejectReason::HoldNotFound)
    );
    assert_eq!(row(&acc, 1).held, d("60"));
}

#[test]
fn expiry_waits_for_its_time_and_happens_once() {
    let (mut special, mut acc) = held("60");
    let expire = action(Op::HoldExpire, 70, 50, "0");
    // Not due yet (an hour to go).
    assert!(decide_release(&expire, &mut special, &mut acc, Utc::now()).is_err());
    let later = Utc::now() + chrono::TimeDelta::hours(2);
    assert_eq!(
        decide_release(&expire, &mut special, &mut acc, later),
        Ok(())
    );
    assert_eq!(row(&acc, 1).held, d("0"));
    assert_eq!(
        decide_release(&expire, &mut special, &mut acc, later),
        Err(RejectReason::HoldNotPending)
    );
    assert_eq!(row(&acc, 1).held, d("0"));
    assert_eq!(row(&acc, 1).balance, d("100"));
}

#[test]
fn reversals_never_exceed_the_original() {
    let mut acc = accounts("100");
    let mut special = Special::default();
    let original = TransferRow {
        id: Uuid::from_u128(90),
        owner_id: Uuid::from_u128(20),
        fingerprint: vec![0; 32],
        // Account 2 paid account 1: the reversal takes from 1.
        from_account: Uuid::from_u128(2),
        to_account: Uuid::from_u128(1),
        amount: d("80"),
        currency: "EUR".into(),
        reference: None,
        status: "committed".into(),
        reason: None,
        created_at: Utc::now(),
        processed_at: Utc::now(),
        hold_id: None,
        reverses: None,
        reversal_reason: None,
    };
    special.originals.insert(original.id, original);
    let rev = |id: u128, amount: &str| {
        let mut r = req(Op::Reversal, id, amount);
        r.reverses = Some(Uuid::from_u128(90));
        r.reversal_reason = Some("x".into());
        r
    };
    assert_eq!(
        decide_reversal(&rev(1, "30"), &mut special, &mut acc).map(|m| (m.0, m.2)),
        Ok((Uuid::from_u128(1), d("30")))
    );
    assert_eq!(
        decide_reversal(&rev(2, "50.01"), &mut special, &mut acc).err(),
        Some(RejectReason::ReversalExceedsOriginal)
    );
    // "All of it" is what is left.
    assert_eq!(
        decide_reversal(&rev(3, "0"), &mut special, &mut acc).map(|m| m.2),
        Ok(d("50"))
    );
    assert_eq!(
        decide_reversal(&rev(4, "0"), &mut special, &mut acc).err(),
        Some(RejectReason::ReversalExceedsOriginal)
    );
    assert_eq!(row(&acc, 1).balance, d("20"));
    assert_eq!(row(&acc, 2).balance, d("80"));
}

#[test]
fn a_reversal_needs_the_payees_money() {
    let mut acc = accounts("10");
    let mut special = Special::default();
    let mut r = req(Op::Reversal, 1, "0");
    r.reverses = Some(Uuid::from_u128(91));
    // Unknown original.
    assert_eq!(
        decide_reversal(&r, &mut special, &mut acc).err(),
        Some(RejectReason::OriginalNotCommitted)
    );
    let original = TransferRow {
        id: Uuid::from_u128(91),
        owner_id: Uuid::from_u128(20),
        fingerprint: vec![0; 32],
        from_account: Uuid::from_u128(2),
        to_account: Uuid::from_u128(1),
        amount: d("80"),
        currency: "EUR".into(),
        reference: None,
        status: "committed".into(),
        reason: None,
        created_at: Utc::now(),
        processed_at: Utc::now(),
        hold_id: None,
        reverses: None,
        reversal_reason: None,
    };
    special.originals.insert(original.id, original);
    assert_eq!(
        decide_reversal(&r, &mut special, &mut acc).err(),
        Some(RejectReason::InsufficientFunds)
    );
    assert!(acc.values().all(|a| !a.changed));
}

#[test]
fn a_capture_or_void_asked_after_expiry_is_refused_and_moves_nothing() {
    for op in [Op::HoldCapture, Op::HoldVoid] {
        let (mut special, mut acc) = held("40");
        let hold = Uuid::from_u128(50);
        if let Some(h) = special.holds.get_mut(&hold) {
            h.expires_at = Utc::now() - chrono::TimeDelta::seconds(1);
        }
        let late = action(op, 60, 50, "40");
        let refused = if op == Op::HoldCapture {
            decide_capture(&late, &mut special, &mut acc, Utc::now()).err()
        } else {
            decide_release(&late, &mut special, &mut acc, Utc::now()).err()
        };
        assert_eq!(refused, Some(RejectReason::HoldNotPending), "{op:?}");
        // Still held, nothing moved: the expiry command releases it.
        assert_eq!(row(&acc, 1).held, d("40"), "{op:?}");
        assert_eq!(row(&acc, 1).balance, d("100"), "{op:?}");
        let expiry = action(Op::HoldExpire, 61, 50, "0");
        assert_eq!(
            decide_release(&expiry, &mut special, &mut acc, Utc::now()),
            Ok(())
        );
        assert_eq!(row(&acc, 1).held, d("0"), "{op:?}");
    }
}
