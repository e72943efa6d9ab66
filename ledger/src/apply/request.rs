//! What the ledger is asked to apply: a transfer request as decoded from
//! the queue, and the stages it passed before (kept for the ops timeline).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use shared::hold::{CommandFields, Op};
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
    /// What is asked (a plain transfer by default).
    pub op: Op,
    /// Capture, void, expiry: the hold.
    pub hold_id: Option<Uuid>,
    /// A new hold: when it expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// A reversal: the original transfer, and why.
    pub reverses: Option<Uuid>,
    pub reversal_reason: Option<String>,
}

impl TransferRequest {
    /// A plain transfer (the other fields at their defaults).
    #[allow(clippy::too_many_arguments)]
    pub fn transfer(
        id: Uuid,
        owner: Uuid,
        idempotency_key: String,
        from_account: Uuid,
        to_account: Uuid,
        amount: Decimal,
        currency: String,
        reference: Option<String>,
        accepted_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            owner,
            idempotency_key,
            from_account,
            to_account,
            amount,
            currency,
            reference,
            accepted_at,
            op: Op::Transfer,
            hold_id: None,
            expires_at: None,
            reverses: None,
            reversal_reason: None,
        }
    }

    /// The amount asked for, `None` for "all of it" (zero on the wire).
    pub fn amount_asked(&self) -> Option<Decimal> {
        (!self.amount.is_zero()).then_some(self.amount)
    }

    /// The fingerprint of the request as the client sent it: same key with
    /// another fingerprint is a reused key.
    pub fn fingerprint(&self) -> [u8; 32] {
        CommandFields {
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
            op: c.op,
            hold_id: c.hold_id,
            expires_at: c.expires_at,
            reverses: c.reverses,
            reversal_reason: c.reversal_reason,
        }
    }
}
