//! Transfer requests: idempotency keys, deterministic ids, fingerprints,
//! references and outcomes.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::money::{Amount, Currency};

/// Longest idempotency key accepted (the IETF draft's common bound).
pub const IDEMPOTENCY_KEY_LEN_MAX: usize = 255;
/// Longest free-text reference: SEPA's remittance information limit.
pub const REFERENCE_LEN_MAX: usize = 140;

/// Namespace for UUIDv5 transfer ids. Fixed forever: changing it would give a
/// retried request a different id and break idempotency across a deploy.
const TRANSFER_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6b1e_0c4a_5f0d_4d6e_9a77_1f3c_2e8b_b001);

/// A client-chosen key that makes a request safe to retry:
/// 1–255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdempotencyKeyError {
    #[error("must be 1 to {IDEMPOTENCY_KEY_LEN_MAX} characters long")]
    Length,
    #[error("must contain only visible ASCII characters (no spaces or control characters)")]
    Charset,
}

impl IdempotencyKey {
    pub fn parse(key: &str) -> Result<Self, IdempotencyKeyError> {
        if key.is_empty() || key.len() > IDEMPOTENCY_KEY_LEN_MAX {
            return Err(IdempotencyKeyError::Length);
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(IdempotencyKeyError::Charset);
        }
        Ok(Self(key.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = IdempotencyKeyError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<IdempotencyKey> for String {
    fn from(k: IdempotencyKey) -> Self {
        k.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The transfer id is a pure function of (caller, key): a retry computes the
/// same id without asking anyone, and JetStream and PostgreSQL both
/// deduplicate on it.
pub fn transfer_id(owner: Uuid, key: &IdempotencyKey) -> Uuid {
    let mut name = Vec::with_capacity(16 + key.0.len());
    name.extend_from_slice(owner.as_bytes());
    name.extend_from_slice(key.0.as_bytes());
    Uuid::new_v5(&TRANSFER_ID_NAMESPACE, &name)
}

const BATCH_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6b1e_0c4a_5f0d_4d6e_9a77_1f3c_2e8b_b002);

/// A batch's id, from (caller, key) like a transfer's: resubmitting names
/// the same batch.
pub fn batch_id(owner: Uuid, key: &IdempotencyKey) -> Uuid {
    let mut name = Vec::with_capacity(16 + key.0.len());
    name.extend_from_slice(owner.as_bytes());
    name.extend_from_slice(key.0.as_bytes());
    Uuid::new_v5(&BATCH_ID_NAMESPACE, &name)
}

/// The id of a batch's payment: a pure function of the batch and the line,
/// so a resubmitted batch republishes the same ids and nothing twice.
pub fn payment_id(batch: Uuid, line: u32) -> Uuid {
    Uuid::new_v5(&batch, line.to_string().as_bytes())
}

/// A free-text reference shown to both parties.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Reference(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("must be at most {REFERENCE_LEN_MAX} characters")]
    TooLong,
    #[error("must not contain control characters")]
    Control,
}

impl Reference {
    pub fn parse(text: &str) -> Result<Self, ReferenceError> {
        if text.chars().count() > REFERENCE_LEN_MAX {
            return Err(ReferenceError::TooLong);
        }
        if text.chars().any(char::is_control) {
            return Err(ReferenceError::Control);
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Reference {
    type Error = ReferenceError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Reference> for String {
    fn from(r: Reference) -> Self {
        r.0
    }
}

/// A validated transfer order: what the customer asked for, before any
/// account lookup. Ownership and funds are the ledger's business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferOrder {
    pub from_account: Uuid,
    pub to_account: Uuid,
    pub amount: Amount,
    pub currency: Currency,
    pub reference: Option<Reference>,
}

impl TransferOrder {
    /// SHA-256 over the canonical order. Two bodies that mean the same thing
    /// ("12.3" and "12.30") have the same fingerprint; anything that changes
    /// what moves changes it. Fields are length-prefixed so none can bleed
    /// into another.
    pub fn fingerprint(&self) -> [u8; 32] {
        fingerprint(
            self.from_account,
            self.to_account,
            self.amount.value(),
            self.currency.code(),
            self.reference.as_ref().map(Reference::as_str),
        )
    }
}

/// See [`TransferOrder::fingerprint`]; also used by the processor to check a
/// message against its own fingerprint.
pub fn fingerprint(
    from: Uuid,
    to: Uuid,
    amount: Decimal,
    currency: &str,
    reference: Option<&str>,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(from.as_bytes());
    h.update(to.as_bytes());
    let amount = amount.normalize().to_string();
    for field in [amount.as_str(), currency, reference.unwrap_or("")] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    h.update([u8::from(reference.is_some())]);
    h.finalize().into()
}

/// Where a transfer is. `Pending` exists only on the wire (accepted, queued);
/// the ledger stores final states only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransferStatus {
    Pending,
    Committed,
    Rejected,
}

impl TransferStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Committed => "committed",
            Self::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "committed" => Some(Self::Committed),
            "rejected" => Some(Self::Rejected),
            _ => None,
        }
    }
}

/// Why a transfer was rejected. Business outcomes, not errors: machine-readable
/// on the wire, explained in words by [`RejectReason::describe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    InsufficientFunds,
    SourceAccountNotFound,
    DestinationAccountNotFound,
    SourceAccountNotOwned,
    CurrencyMismatch,
    SameAccount,
    InvalidAmount,
    IdempotencyKeyReused,
    ProcessingFailed,
    /// Another payment of the same atomic batch was rejected.
    BatchAborted,
    /// A capture or void of a hold that is no longer pending.
    HoldNotPending,
    /// A capture of more than the hold reserved.
    CaptureExceedsHold,
    /// A capture or void of a hold the ledger does not have.
    HoldNotFound,
    /// The sum of the reversals would exceed the original transfer.
    ReversalExceedsOriginal,
    /// The transfer to reverse is not committed (rejected, unknown, or itself a reversal).
    OriginalNotCommitted,
}

impl RejectReason {
    pub const ALL: [RejectReason; 15] = [
        Self::InsufficientFunds,
        Self::SourceAccountNotFound,
        Self::DestinationAccountNotFound,
        Self::SourceAccountNotOwned,
        Self::CurrencyMismatch,
        Self::SameAccount,
        Self::InvalidAmount,
        Self::IdempotencyKeyReused,
        Self::ProcessingFailed,
        Self::BatchAborted,
        Self::HoldNotPending,
        Self::CaptureExceedsHold,
        Self::HoldNotFound,
        Self::ReversalExceedsOriginal,
        Self::OriginalNotCommitted,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::InsufficientFunds => "insufficient_funds",
            Self::SourceAccountNotFound => "source_account_not_found",
            Self::DestinationAccountNotFound => "destination_account_not_found",
            Self::SourceAccountNotOwned => "source_account_not_owned",
            Self::CurrencyMismatch => "currency_mismatch",
            Self::SameAccount => "same_account",
            Self::InvalidAmount => "invalid_amount",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::ProcessingFailed => "processing_failed",
            Self::BatchAborted => "batch_aborted",
            Self::HoldNotPending => "hold_not_pending",
            Self::CaptureExceedsHold => "capture_exceeds_hold",
            Self::HoldNotFound => "hold_not_found",
            Self::ReversalExceedsOriginal => "reversal_exceeds_original",
            Self::OriginalNotCommitted => "original_not_committed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Self::InsufficientFunds => "The source account does not have enough funds.",
            Self::SourceAccountNotFound => "The source account does not exist.",
            Self::DestinationAccountNotFound => "The destination account does not exist.",
            Self::SourceAccountNotOwned => "The source account belongs to someone else.",
            Self::CurrencyMismatch => "An account's currency differs from the transfer's.",
            Self::SameAccount => "Source and destination are the same account.",
            Self::InvalidAmount => "The amount is not valid for the currency.",
            Self::IdempotencyKeyReused => {
                "The idempotency key was already used for a different transfer."
            }
            Self::ProcessingFailed => {
                "The transfer could not be processed; operators were alerted."
            }
            Self::BatchAborted => {
                "Another payment of this atomic batch was rejected, so none was applied."
            }
            Self::HoldNotPending => "The hold was already captured, voided or expired.",
            Self::CaptureExceedsHold => "The capture is larger than the amount held.",
            Self::HoldNotFound => "The hold does not exist.",
            Self::ReversalExceedsOriginal => {
                "The reversals would add up to more than the original transfer."
            }
            Self::OriginalNotCommitted => {
                "Only a committed transfer that is not itself a reversal can be reversed."
            }
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn keys() {
        assert!(IdempotencyKey::parse("abc-123_X:y").is_ok());
        assert_eq!(IdempotencyKey::parse(""), Err(IdempotencyKeyError::Length));
        assert_eq!(
            IdempotencyKey::parse(&"k".repeat(256)),
            Err(IdempotencyKeyError::Length)
        );
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert_eq!(
            IdempotencyKey::parse("a b"),
            Err(IdempotencyKeyError::Charset)
        );
        assert_eq!(
            IdempotencyKey::parse("é"),
            Err(IdempotencyKeyError::Charset)
        );
    }

    #[test]
    fn ids_are_deterministic_per_owner() {
        let k = IdempotencyKey::parse("k1").unwrap();
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        assert_eq!(transfer_id(a, &k), transfer_id(a, &k));
        assert_ne!(transfer_id(a, &k), transfer_id(b, &k));
    }

    #[test]
    fn fingerprints_ignore_formatting_only() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let d = |s| Decimal::from_str(s).unwrap();
        let f = |amt, r| fingerprint(a, b, d(amt), "EUR", r);
        assert_eq!(f("12.3", None), f("12.30", None));
        assert_ne!(f("12.3", None), f("12.31", None));
        assert_ne!(f("12.3", None), f("12.3", Some("")));
        assert_ne!(f("12.3", Some("x")), f("12.3", Some("y")));
        assert_ne!(f("1", None), fingerprint(b, a, d("1"), "EUR", None));
    }

    #[test]
    fn reasons_round_trip() {
        for r in RejectReason::ALL {
            assert_eq!(RejectReason::parse(r.as_str()), Some(r));
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.as_str()));
        }
    }
}
