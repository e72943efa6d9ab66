//! Result messages: what the ledger decided, turned into the result batch
//! the relay hands to the notifiers, and stored on the results stream.
//!
//! Who hears about a transfer is decided here, not in the ledger: the
//! requester always; the payee's owner only about committed transfers
//! (never about a rejected attempt on their account).

use std::time::Duration;

use async_nats::jetstream::Message;
use ledger::apply::{AccountBalance, Applied, AppliedHold, AppliedTransfer, Outcome};
use ledger::transfers::TransferRow;
use shared::backoff::Backoff;
use shared::hold::HoldStatus;
use shared::messages::{
    AccountResult, AccountView, HoldResult, ResultBatch, SCHEMA_VERSION, TransferResult,
    format_money,
};
use shared::shutdown::Shutdown;
use shared::transfer::TransferStatus;
use uuid::Uuid;

use crate::ctx::{Ctx, Failure, RETRY_BACKOFF_MAX, RETRY_BACKOFF_START, sleep_or_stop};
use crate::disposition::KeepAlive;

/// Longest wait for JetStream to confirm a result batch is stored, before
/// trying again.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// The users to notify about `t`: the requester; for a commit, the payee's
/// owner and (a reversal's) the payer's owner too.
fn notify(t: &AppliedTransfer) -> Vec<Uuid> {
    let requester = t.transfer.owner_id;
    let mut users = vec![requester];
    if t.transfer.status == TransferStatus::Committed.as_str() {
        for other in [t.payee_owner, t.payer_owner].into_iter().flatten() {
            if !users.contains(&other) {
                users.push(other);
            }
        }
    }
    users
}

/// The users to notify about a hold: its owner, and the payee's owner once
/// the hold was accepted (never about a rejected attempt).
fn notify_hold(h: &AppliedHold) -> Vec<Uuid> {
    let mut users = vec![h.hold.owner_id];
    if let Some(action) = &h.action
        && !users.contains(&action.owner_id)
    {
        users.push(action.owner_id);
    }
    if h.hold.status != HoldStatus::Rejected.as_str() {
        for other in h.owners.into_iter().flatten() {
            if !users.contains(&other) {
                users.push(other);
            }
        }
    }
    users
}

fn hold(h: &AppliedHold) -> HoldResult {
    let mut view = h.hold.view();
    view.action = h.action.as_ref().map(|a| a.view(&h.hold.currency));
    HoldResult {
        hold: view,
        notify: notify_hold(h),
    }
}

fn account(a: &AccountBalance) -> AccountResult {
    AccountResult {
        owner: a.owner_id,
        account: AccountView {
            id: a.id,
            balance: format_money(a.balance, &a.currency),
            overdraft_limit: format_money(a.overdraft_limit, &a.currency),
            available: format_money(a.available(), &a.currency),
            held: format_money(a.held, &a.currency),
            currency: a.currency.clone(),
            created_at: a.created_at,
            version: a.version,
        },
    }
}

/// The result batch of an applied group; `traceparents` gives each
/// transfer's trace to continue (in input order).
pub fn of_applied(
    applied: &Applied,
    traceparents: impl IntoIterator<Item = Option<String>>,
) -> ResultBatch {
    // One per request (the atomic path passes an endless repeat).
    let traceparents: Vec<Option<String>> = traceparents
        .into_iter()
        .take(applied.outcomes.len())
        .collect();
    let transfers = applied
        .transfers
        .iter()
        .map(|t| TransferResult {
            notify: notify(t),
            transfer: t.transfer.view(),
            traceparent: traceparents.get(t.request).cloned().flatten(),
        })
        .collect();
    ResultBatch {
        v: SCHEMA_VERSION,
        transfers,
        accounts: applied.accounts.iter().map(account).collect(),
        batches: vec![],
        holds: applied.holds.iter().map(hold).collect(),
    }
}

/// The result batch of transfers given up on: only their requesters hear.
pub fn of_given_up(rows: &[TransferRow]) -> ResultBatch {
    ResultBatch {
        v: SCHEMA_VERSION,
        transfers: rows
            .iter()
            .map(|row| TransferResult {
                notify: vec![row.owner_id],
                transfer: row.view(),
                traceparent: None,
            })
            .collect(),
        accounts: vec![],
        batches: vec![],
        holds: vec![],
    }
}

/// The holds, captures and voids given up on, for their requesters.
pub fn of_given_up_holds(holds: &[AppliedHold]) -> ResultBatch {
    ResultBatch {
        v: SCHEMA_VERSION,
        transfers: vec![],
        accounts: vec![],
        batches: vec![],
        holds: holds.iter().map(hold).collect(),
    }
}

/// Counts each outcome (`processor_transfers_total`).
pub fn record_outcomes(applied: &Applied) {
    for o in &applied.outcomes {
        let (outcome, reason) = match o {
            Outcome::Committed => ("committed", ""),
            Outcome::Rejected(r) => ("rejected", r.as_str()),
            Outcome::Duplicate => ("duplicate", ""),
            Outcome::KeyReused => ("key_reused", ""),
        };
        metrics::counter!("processor_transfers_total", "outcome" => outcome, "reason" => reason)
            .increment(1);
    }
}

/// Hands the batch on to the notifiers: straight into Redis when it takes
/// it ([`crate::relay::Direct`]), or else stored on the results stream
/// (for the relay), waiting for the ack and retrying until it is stored or
/// shutdown is requested, keeping `holding` (the messages it answers) ours
/// meanwhile. Only then may they be acked: a result is never lost between
/// commit and notification (a redelivery re-emits it from the ledger).
pub async fn publish(
    ctx: &Ctx,
    results: &ResultBatch,
    holding: &[&Message],
    shutdown: &mut Shutdown,
) -> Result<(), Failure> {
    if results.transfers.is_empty() && results.accounts.is_empty() && results.holds.is_empty() {
        return Ok(());
    }
    if let Some(direct) = &ctx.direct
        && direct.push(results).await
    {
        metrics::counter!("processor_result_batches_total", "path" => "direct").increment(1);
        return Ok(());
    }
    metrics::counter!("processor_result_batches_total", "path" => "stream").increment(1);
    let payload = match serde_json::to_vec(results) {
        Ok(p) => bytes::Bytes::from(p),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode results");
            return Ok(());
        }
    };
    let mut backoff = Backoff::new(RETRY_BACKOFF_START, RETRY_BACKOFF_MAX);
    let mut keep_alive = KeepAlive::new(ctx.config.consumer.ack_wait);
    loop {
        let attempt = async {
            ctx.js
                .publish(ctx.config.topology.results_subject.clone(), payload.clone())
                .await?
                .await
        };
        match tokio::time::timeout(PUBLISH_TIMEOUT, attempt).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot publish results; retrying"),
            Err(_) => tracing::warn!("publishing results timed out; retrying"),
        }
        if shutdown.is_triggered() {
            return Err(Failure::Stopped);
        }
        keep_alive.tick(holding).await;
        sleep_or_stop(backoff.next_delay(), shutdown).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use rust_decimal::Decimal;

    fn applied(status: &str, owner: u128, payee: Option<u128>) -> AppliedTransfer {
        AppliedTransfer {
            request: 0,
            payer_owner: None,
            fresh: true,
            transfer: TransferRow {
                id: Uuid::from_u128(99),
                owner_id: Uuid::from_u128(owner),
                fingerprint: vec![0; 32],
                from_account: Uuid::from_u128(1),
                to_account: Uuid::from_u128(2),
                amount: Decimal::ONE,
                currency: "EUR".into(),
                reference: None,
                status: status.into(),
                reason: (status == "rejected").then(|| "insufficient_funds".into()),
                created_at: Utc::now(),
                processed_at: Utc::now(),
                hold_id: None,
                reverses: None,
                reversal_reason: None,
            },
            payee_owner: payee.map(Uuid::from_u128),
        }
    }

    #[test]
    fn the_payee_hears_only_about_commits() {
        let (alice, bob) = (Uuid::from_u128(10), Uuid::from_u128(20));
        assert_eq!(notify(&applied("committed", 10, Some(20))), [alice, bob]);
        assert_eq!(notify(&applied("rejected", 10, Some(20))), [alice]);
        // To oneself, or to an account the batch did not lock: once.
        assert_eq!(notify(&applied("committed", 10, Some(10))), [alice]);
        assert_eq!(notify(&applied("committed", 10, None)), [alice]);
    }

    #[test]
    fn results_keep_the_input_order_and_traces() {
        let a = Applied {
            outcomes: vec![Outcome::Committed, Outcome::Duplicate],
            transfers: vec![applied("committed", 10, Some(20)), {
                let mut second = applied("rejected", 10, None);
                second.request = 1;
                second
            }],
            holds: vec![],
            accounts: vec![],
        };
        let batch = of_applied(&a, [Some("tp".to_owned()), None]);
        assert_eq!(batch.transfers.len(), 2);
        assert_eq!(batch.transfers[0].traceparent.as_deref(), Some("tp"));
        assert_eq!(batch.transfers[1].traceparent, None);
        assert_eq!(batch.transfers[1].notify, [Uuid::from_u128(10)]);
    }
}
