//! Wire formats: the command on the transfers stream, the API views that
//! are also the payload of WebSocket events, and the result batch the
//! processor hands to the notification path.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::hold::{HoldView, Op, ReversalSummary};
use crate::money::Currency;
use crate::transfer::{RejectReason, TransferStatus};

/// Version of [`TransferCommand`] and [`ResultBatch`]. Readers refuse versions
/// they do not know instead of guessing.
pub const SCHEMA_VERSION: u8 = 1;

// Kept here for callers that read relay times (the gateway's ops timeline);
// the event feed owns them.
pub use crate::event_feed::{RELAYED_KEEP, relayed_key};

/// NATS header carrying the transfer id (also the JetStream `Nats-Msg-Id`),
/// so a message that cannot be decoded can still be named in the dead letter.
pub const HEADER_TRANSFER_ID: &str = "Bank-Transfer-Id";

/// One transfer request, as published by the gateway after validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferCommand {
    pub v: u8,
    pub id: Uuid,
    /// The authenticated user who asked; must own `from_account`.
    pub owner: Uuid,
    pub idempotency_key: String,
    pub from_account: Uuid,
    pub to_account: Uuid,
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// When the gateway accepted it; becomes the transfer's `created_at`.
    pub accepted_at: DateTime<Utc>,
    /// The batch (and 1-based line) this payment belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchRef>,
    /// What is asked: a plain transfer unless it says otherwise. For a
    /// capture or reversal an `amount` of zero means "all of it" (the whole
    /// hold, what is left of the original).
    #[serde(default, skip_serializing_if = "Op::is_transfer")]
    pub op: Op,
    /// The hold a capture, void or expiry is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_id: Option<Uuid>,
    /// When a new hold expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// The transfer a reversal reverses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverses: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reversal_reason: Option<String>,
}

/// An atomic batch: every payment commits, or none does. One message, one
/// database transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtomicBatchCommand {
    pub v: u8,
    pub id: Uuid,
    pub owner: Uuid,
    pub payments: Vec<TransferCommand>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRef {
    pub id: Uuid,
    pub line: i32,
}

impl TransferCommand {
    /// How the transfer looks while it waits in the queue.
    pub fn pending_view(&self) -> TransferView {
        TransferView {
            id: self.id,
            status: TransferStatus::Pending,
            reason: None,
            from_account: self.from_account,
            to_account: self.to_account,
            amount: format_money(self.amount, &self.currency),
            currency: self.currency.clone(),
            reference: self.reference.clone(),
            created_at: self.accepted_at,
            committed_at: None,
            processed_at: None,
            reverses: self.reverses,
            reversal_reason: self.reversal_reason.clone(),
            hold_id: None,
            reversals: None,
            reversed_amount: None,
        }
    }

    /// The request fingerprint (same function the ledger stores).
    pub fn fingerprint(&self) -> [u8; 32] {
        crate::hold::CommandFields {
            op: self.op,
            from: self.from_account,
            to: self.to_account,
            amount: self.amount,
            currency: &self.currency,
            reference: self.reference.as_deref(),
            hold_id: self.hold_id,
            reverses: self.reverses,
            reversal_reason: self.reversal_reason.as_deref(),
        }
        .fingerprint()
    }
}

/// A transfer as the API and the WebSocket show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TransferView {
    pub id: Uuid,
    pub status: TransferStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RejectReason>,
    pub from_account: Uuid,
    pub to_account: Uuid,
    /// Decimal string with the currency's minor units, e.g. `"12.30"`.
    #[schema(pattern = r"^[0-9]+(\.[0-9]+)?$", example = "12.30")]
    pub amount: String,
    #[schema(pattern = "^[A-Z]{3}$", example = "EUR")]
    pub currency: String,
    pub reference: Option<String>,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_at: Option<DateTime<Utc>>,
    /// When the ledger decided (committed or rejected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed_at: Option<DateTime<Utc>>,
    /// For a reversal: the transfer it reverses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverses: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reversal_reason: Option<String>,
    /// For a capture: the hold it captured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_id: Option<Uuid>,
    /// For an original (GET of one transfer): its reversals, oldest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reversals: Option<Vec<ReversalSummary>>,
    /// For an original (GET of one transfer): the sum of its committed reversals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^[0-9]+(\.[0-9]+)?$", example = "5.00")]
    pub reversed_amount: Option<String>,
}

/// An account as the API and the WebSocket show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccountView {
    pub id: Uuid,
    #[schema(pattern = "^[A-Z]{3}$", example = "EUR")]
    pub currency: String,
    /// Negative only within the overdraft limit.
    #[schema(pattern = r"^-?[0-9]+(\.[0-9]+)?$", example = "10000.00")]
    pub balance: String,
    #[schema(pattern = r"^[0-9]+(\.[0-9]+)?$", example = "0.00")]
    pub overdraft_limit: String,
    /// Balance minus the pending holds: what can be spent or held now.
    #[serde(default)]
    #[schema(pattern = r"^-?[0-9]+(\.[0-9]+)?$", example = "9900.00")]
    pub available: String,
    /// The sum of the account's pending holds.
    #[serde(default)]
    #[schema(pattern = r"^[0-9]+(\.[0-9]+)?$", example = "100.00")]
    pub held: String,
    pub created_at: DateTime<Utc>,
    /// Increases with every balance change: a client keeps the highest, since
    /// events for one account may arrive out of order across processors.
    pub version: i64,
}

/// One ledger entry (a debit or a credit) as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EntryView {
    pub id: i64,
    pub transfer_id: Uuid,
    pub account_id: Uuid,
    /// Negative for a debit, positive for a credit.
    #[schema(pattern = r"^-?[0-9]+(\.[0-9]+)?$", example = "-12.30")]
    pub amount: String,
    #[schema(pattern = r"^-?[0-9]+(\.[0-9]+)?$", example = "9987.70")]
    pub balance_after: String,
    #[schema(pattern = "^[A-Z]{3}$", example = "EUR")]
    pub currency: String,
    pub created_at: DateTime<Utc>,
}

/// Formats a stored amount with its currency's minor units; falls back to the
/// plain decimal if the stored code is somehow not a currency we know.
pub fn format_money(value: Decimal, currency: &str) -> String {
    match Currency::parse(currency) {
        Ok(c) => c.format(value),
        Err(_) => value.normalize().to_string(),
    }
}

/// An event for one user's WebSocket. Serialized as `{"type":…, …}`; the
/// notifier adds the event `id` when it sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Event {
    #[serde(rename = "transfer.updated")]
    TransferUpdated { transfer: TransferView },
    #[serde(rename = "account.updated")]
    AccountUpdated { account: AccountView },
    #[serde(rename = "batch.updated")]
    BatchUpdated { batch: BatchProgress },
    #[serde(rename = "hold.updated")]
    HoldUpdated { hold: HoldView },
}

/// A batch's progress, pushed to its owner as payments are applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchProgress {
    pub id: Uuid,
    pub count: i64,
    pub pending: i64,
    pub committed: i64,
    pub rejected: i64,
    pub done: bool,
}

/// A transfer outcome and who must hear about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferResult {
    pub transfer: TransferView,
    /// Users to notify: the requester and, if different, the payee's owner.
    pub notify: Vec<Uuid>,
    /// W3C traceparent of the processing span, so the notifier's push joins
    /// the transfer's trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// A hold's new state and who must hear about it: the owners of both
/// accounts (the payee only once the hold was accepted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldResult {
    pub hold: HoldView,
    pub notify: Vec<Uuid>,
}

/// An account's state after a batch, and its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountResult {
    pub account: AccountView,
    pub owner: Uuid,
}

/// What one applied batch produced; published once per batch to the results
/// stream so a crash between commit and notification loses nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultBatch {
    pub v: u8,
    pub transfers: Vec<TransferResult>,
    pub accounts: Vec<AccountResult>,
    /// Batch progress for their owners (throttled by the processor).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<(Uuid, BatchProgress)>,
    /// Holds created or finished by the batch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holds: Vec<HoldResult>,
}

/// An EUR account holding 1.00 at version 3: the one fixture of the
/// crate's event tests.
#[cfg(test)]
pub(crate) fn account_view(id: Uuid) -> AccountView {
    AccountView {
        id,
        currency: "EUR".into(),
        balance: "1.00".into(),
        overdraft_limit: "0.00".into(),
        available: "1.00".into(),
        held: "0.00".into(),
        created_at: DateTime::<Utc>::UNIX_EPOCH,
        version: 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_tagged() {
        let e = Event::AccountUpdated {
            account: account_view(Uuid::nil()),
        };
        let json = serde_json::to_string(&e).unwrap();
        assert!(
            json.starts_with(r#"{"type":"account.updated","account":{"#),
            "{json}"
        );
    }

    #[test]
    fn command_amount_is_a_string() {
        let c = TransferCommand {
            v: SCHEMA_VERSION,
            id: Uuid::nil(),
            owner: Uuid::nil(),
            idempotency_key: "k".into(),
            from_account: Uuid::nil(),
            to_account: Uuid::nil(),
            amount: Decimal::new(1230, 2),
            currency: "EUR".into(),
            reference: None,
            accepted_at: DateTime::<Utc>::UNIX_EPOCH,
            batch: None,
            op: Op::Transfer,
            hold_id: None,
            expires_at: None,
            reverses: None,
            reversal_reason: None,
        };
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains(r#""amount":"12.30""#), "{json}");
        // A plain transfer looks as it did before holds existed.
        assert!(!json.contains("\"op\""), "{json}");
        let back: TransferCommand = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
    }
}
