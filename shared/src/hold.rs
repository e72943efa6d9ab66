//! Holds (two-phase transfers) and reversals: the command kinds on the
//! stream, deterministic ids, request fingerprints, hold states and the
//! hold's API view. See docs/holds-and-reversals.md.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::transfer::{IdempotencyKey, RejectReason};

/// Longest hold: a week, the usual card authorization window.
pub const HOLD_EXPIRES_IN_SECONDS_MAX: u32 = 604_800;
/// Longest reversal reason.
pub const REVERSAL_REASON_LEN_MAX: usize = 200;

/// Namespaces for the UUIDv5 ids. Fixed forever (see `transfer_id`).
const HOLD_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6b1e_0c4a_5f0d_4d6e_9a77_1f3c_2e8b_b003);
const HOLD_ACTION_NAMESPACE: Uuid = Uuid::from_u128(0x6b1e_0c4a_5f0d_4d6e_9a77_1f3c_2e8b_b004);

/// What a command on the transfers stream asks for. Absent on the wire for
/// a plain transfer, so messages written before holds existed still decode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    #[default]
    Transfer,
    HoldCreate,
    HoldCapture,
    HoldVoid,
    HoldExpire,
    Reversal,
}

impl Op {
    pub fn is_transfer(&self) -> bool {
        *self == Self::Transfer
    }
}

fn derived(namespace: &Uuid, owner: Uuid, key: &IdempotencyKey) -> Uuid {
    let mut name = Vec::with_capacity(16 + key.as_str().len());
    name.extend_from_slice(owner.as_bytes());
    name.extend_from_slice(key.as_str().as_bytes());
    Uuid::new_v5(namespace, &name)
}

/// A hold's id, from (caller, key).
pub fn hold_id(owner: Uuid, key: &IdempotencyKey) -> Uuid {
    derived(&HOLD_ID_NAMESPACE, owner, key)
}

/// A capture's or void's id, from (caller, key); a committed capture's
/// transfer has the same id.
pub fn hold_action_id(owner: Uuid, key: &IdempotencyKey) -> Uuid {
    derived(&HOLD_ACTION_NAMESPACE, owner, key)
}

/// The id an expiry command travels under (its subject); one per hold.
pub fn hold_expire_id(hold: Uuid) -> Uuid {
    Uuid::new_v5(&hold, b"expire")
}

/// The `Nats-Msg-Id` of a hold's expiry command.
pub fn hold_expire_msg_id(hold: Uuid) -> String {
    format!("hold-expire-{hold}")
}

fn digest(fields: &[&str]) -> [u8; 32] {
    let mut h = Sha256::new();
    for f in fields {
        h.update((f.len() as u64).to_be_bytes());
        h.update(f.as_bytes());
    }
    h.finalize().into()
}

/// Fingerprint of a capture or void: kind, hold and amount (`None`: the whole hold).
pub fn action_fingerprint(op: Op, hold: Uuid, amount: Option<Decimal>) -> [u8; 32] {
    let amount = amount
        .map(|a| a.normalize().to_string())
        .unwrap_or_default();
    let kind = if op == Op::HoldVoid {
        "void"
    } else {
        "capture"
    };
    digest(&[kind, &hold.to_string(), &amount])
}

/// Fingerprint of a reversal request: original, amount (`None`: the rest), reason.
pub fn reversal_fingerprint(original: Uuid, amount: Option<Decimal>, reason: &str) -> [u8; 32] {
    let amount = amount
        .map(|a| a.normalize().to_string())
        .unwrap_or_default();
    digest(&["reversal", &original.to_string(), &amount, reason])
}

/// The fingerprint of any command as its client sent it (what the ledger
/// stores and compares): a transfer's or new hold's order; a capture's or
/// void's hold and amount; a reversal's original, amount and reason. A zero
/// `amount` on a capture or reversal means "all of it".
pub struct CommandFields<'a> {
    pub op: Op,
    pub from: Uuid,
    pub to: Uuid,
    pub amount: Decimal,
    pub currency: &'a str,
    pub reference: Option<&'a str>,
    pub hold_id: Option<Uuid>,
    pub reverses: Option<Uuid>,
    pub reversal_reason: Option<&'a str>,
}

impl CommandFields<'_> {
    pub fn fingerprint(&self) -> [u8; 32] {
        let asked = (!self.amount.is_zero()).then_some(self.amount);
        match self.op {
            Op::Transfer | Op::HoldCreate => crate::transfer::fingerprint(
                self.from,
                self.to,
                self.amount,
                self.currency,
                self.reference,
            ),
            Op::HoldCapture | Op::HoldVoid | Op::HoldExpire => {
                action_fingerprint(self.op, self.hold_id.unwrap_or_default(), asked)
            }
            Op::Reversal => reversal_fingerprint(
                self.reverses.unwrap_or_default(),
                asked,
                self.reversal_reason.unwrap_or(""),
            ),
        }
    }
}

/// Where a hold is. `Requested` exists only on the wire (in the queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HoldStatus {
    Requested,
    Pending,
    Captured,
    Voided,
    Expired,
    Rejected,
}

impl HoldStatus {
    pub const ALL: [HoldStatus; 6] = [
        Self::Requested,
        Self::Pending,
        Self::Captured,
        Self::Voided,
        Self::Expired,
        Self::Rejected,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Pending => "pending",
            Self::Captured => "captured",
            Self::Voided => "voided",
            Self::Expired => "expired",
            Self::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// A capture or void as asked, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HoldActionView {
    pub id: Uuid,
    /// `capture` or `void`.
    pub kind: String,
    /// `requested` (in the queue), `applied` or `rejected`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RejectReason>,
    /// The capture amount asked for (absent: the whole hold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A hold as the API and the WebSocket show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HoldView {
    pub id: Uuid,
    pub status: HoldStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RejectReason>,
    pub from_account: Uuid,
    pub to_account: Uuid,
    #[schema(pattern = r"^[0-9]+(\.[0-9]+)?$", example = "12.30")]
    pub amount: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^[0-9]+(\.[0-9]+)?$", example = "10.00")]
    pub captured_amount: Option<String>,
    #[schema(pattern = "^[A-Z]{3}$", example = "EUR")]
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_transfer_id: Option<Uuid>,
    /// The capture or void this response answers (POST capture/void only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<HoldActionView>,
    /// Every capture and void asked for, oldest first (GET of one hold only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<HoldActionView>>,
}

/// One reversal of a transfer, as listed on the original.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReversalSummary {
    pub id: Uuid,
    #[schema(pattern = r"^[0-9]+(\.[0-9]+)?$", example = "5.00")]
    pub amount: String,
    pub status: crate::transfer::TransferStatus,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_defaults_to_transfer_and_round_trips() {
        assert_eq!(Op::default(), Op::Transfer);
        let json = serde_json::to_string(&Op::HoldExpire).unwrap();
        assert_eq!(json, "\"hold_expire\"");
        for s in HoldStatus::ALL {
            assert_eq!(HoldStatus::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn ids_differ_by_namespace() {
        let k = IdempotencyKey::parse("k").unwrap();
        let o = Uuid::from_u128(1);
        assert_ne!(hold_id(o, &k), hold_action_id(o, &k));
        assert_ne!(hold_id(o, &k), crate::transfer::transfer_id(o, &k));
        assert_ne!(hold_expire_id(hold_id(o, &k)), hold_id(o, &k));
    }
}
