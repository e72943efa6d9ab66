//! What the API answers for a balance at a moment and for a statement
//! (`GET /v1/accounts/{id}/balance`, `/statement`): the gateway writes
//! them, `bankctl` and the tests read them.
//!
//! Apart from `messages` because a statement is a read of the ledger's
//! history, never a message on the pipeline.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The CSV statement's header line (the columns of [`StatementEntryView`]).
pub const CSV_HEADER: &str =
    "entry_id,transfer_id,created_at,amount,running_balance,counterparty_account,reference";

/// Response headers of the CSV statement carrying what the JSON has around
/// its entries (a CSV has no place for them).
pub const HEADER_OPENING: &str = "bank-opening-balance";
pub const HEADER_CLOSING: &str = "bank-closing-balance";
pub const HEADER_DEBITS: &str = "bank-total-debits";
pub const HEADER_CREDITS: &str = "bank-total-credits";

/// An account's balance at a moment: the sum of its entries created at or
/// before `as_of`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BalanceView {
    pub account_id: Uuid,
    #[schema(pattern = "^[A-Z]{3}$", example = "EUR")]
    pub currency: String,
    pub as_of: DateTime<Utc>,
    #[schema(pattern = r"^-?[0-9]+(\.[0-9]+)?$", example = "9987.70")]
    pub balance: String,
}

/// One entry of a statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatementEntryView {
    pub entry_id: i64,
    pub transfer_id: Uuid,
    pub created_at: DateTime<Utc>,
    /// Negative for a debit, positive for a credit.
    #[schema(pattern = r"^-?[0-9]+(\.[0-9]+)?$", example = "-12.30")]
    pub amount: String,
    /// The opening balance plus every amount up to and including this one.
    #[schema(pattern = r"^-?[0-9]+(\.[0-9]+)?$", example = "9987.70")]
    pub running_balance: String,
    /// The other account of the transfer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterparty_account: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// An account's statement from `from` to `to` (both included):
/// `closing_balance = opening_balance - total_debits + total_credits`.
///
/// `entries` stays the last field: the gateway streams the entries after
/// the other fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatementView {
    pub account_id: Uuid,
    #[schema(pattern = "^[A-Z]{3}$", example = "EUR")]
    pub currency: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The balance just before `from`.
    #[schema(pattern = r"^-?[0-9]+(\.[0-9]+)?$", example = "10000.00")]
    pub opening_balance: String,
    /// The balance at `to`.
    #[schema(pattern = r"^-?[0-9]+(\.[0-9]+)?$", example = "9987.70")]
    pub closing_balance: String,
    /// The debits' sum, as a positive amount.
    #[schema(pattern = r"^[0-9]+(\.[0-9]+)?$", example = "12.30")]
    pub total_debits: String,
    /// The credits' sum.
    #[schema(pattern = r"^[0-9]+(\.[0-9]+)?$", example = "0.00")]
    pub total_credits: String,
    pub entry_count: i64,
    /// Oldest first (by creation time, then entry id).
    pub entries: Vec<StatementEntryView>,
}
