//! What the ledger is asked to apply: a transfer request as decoded from
//! the queue, and the stages it passed before (kept for the ops timeline).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use shared::transfer::fingerprint;
use uuid::Uuid;

/// A transfer to apply, as decoded from the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRequest {
    pub id: Uuid,
    pub owner: Uuid,
    pub idempotency_key: String,
    pub from_account: Uuid,
    pub to_account: Uuid,
    pub amount: Decimal,
    pub currency: String,
    pub reference: Option<String>,
    pub accepted_at: DateTime<Utc>,
}

impl TransferRequest {
    pub fn fingerprint(&self) -> [u8; 32] {
        fingerprint(
            self.from_account,
            self.to_account,
            self.amount,
            &self.currency,
            self.reference.as_deref(),
        )
    }
}

/// When a transfer passed each stage before the ledger, and its trace: kept
/// with the transfer for the operators' timeline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stages {
    /// When JetStream stored the command.
    pub published_at: Option<DateTime<Utc>>,
    /// When the processor received it.
    pub received_at: Option<DateTime<Utc>>,
    /// W3C trace id (32 hex digits) of the request that sent it.
    pub trace_id: Option<String>,
    /// The batch and line it came from, if any.
    pub batch: Option<(Uuid, i32)>,
}

impl From<shared::messages::TransferCommand> for TransferRequest {
    fn from(c: shared::messages::TransferCommand) -> Self {
        Self {
            id: c.id,
            owner: c.owner,
            idempotency_key: c.idempotency_key,
            from_account: c.from_account,
            to_account: c.to_account,
            amount: c.amount,
            currency: c.currency,
            reference: c.reference,
            accepted_at: c.accepted_at,
        }
    }
}
