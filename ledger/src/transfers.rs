//! Transfer reads: one by id, a user's list (sent and received), and the
//! batched existence check the gateway's idempotency path uses.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use shared::messages::{TransferView, format_money};
use shared::transfer::{RejectReason, TransferStatus};
use sqlx::PgPool;
use uuid::Uuid;

use crate::LedgerError;

pub(crate) const TRANSFER_COLUMNS: &str = "id, owner_id, fingerprint, from_account, to_account, \
     amount, currency, reference, status, reason, created_at, processed_at, hold_id, reverses, \
     reversal_reason";

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TransferRow {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub fingerprint: Vec<u8>,
    pub from_account: Uuid,
    pub to_account: Uuid,
    pub amount: Decimal,
    pub currency: String,
    pub reference: Option<String>,
    pub status: String,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub processed_at: DateTime<Utc>,
    /// For a capture: its hold.
    pub hold_id: Option<Uuid>,
    /// For a reversal: the original.
    pub reverses: Option<Uuid>,
    pub reversal_reason: Option<String>,
}

impl TransferRow {
    pub fn view(&self) -> TransferView {
        // The table's CHECK constraints admit only these values.
        let status = TransferStatus::parse(&self.status).unwrap_or(TransferStatus::Rejected);
        TransferView {
            id: self.id,
            status,
            reason: self
                .reason
                .as_deref()
                .map(|r| RejectReason::parse(r).unwrap_or(RejectReason::ProcessingFailed)),
            from_account: self.from_account,
            to_account: self.to_account,
            amount: format_money(self.amount, &self.currency),
            currency: self.currency.clone(),
            reference: self.reference.clone(),
            created_at: self.created_at,
            committed_at: (status == TransferStatus::Committed).then_some(self.processed_at),
            processed_at: Some(self.processed_at),
            reverses: self.reverses,
            reversal_reason: self.reversal_reason.clone(),
            hold_id: self.hold_id,
            reversals: None,
            reversed_amount: None,
        }
    }
}

/// One transfer and, once it is committed, the owner of its destination
/// account (for authorization: the payee may see money it received).
///
/// A rejected transfer names no payee: no money reached them, and why it
/// was refused (insufficient funds, say) is the payer's business. The
/// payee hears of commits only, over the WebSocket too (the processor's
/// `results::notify`).
pub async fn get(
    pool: &PgPool,
    id: Uuid,
) -> Result<Option<(TransferRow, Option<Uuid>)>, LedgerError> {
    let row: Option<TransferRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    if row.status != TransferStatus::Committed.as_str() {
        return Ok(Some((row, None)));
    }
    let payee: Option<Uuid> = sqlx::query_scalar("SELECT owner_id FROM accounts WHERE id = $1")
        .bind(row.to_account)
        .fetch_optional(pool)
        .await?;
    Ok(Some((row, payee)))
}

/// Transfers with these ids (the gateway's idempotency check, many requests
/// coalesced into one query).
pub async fn get_many(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<TransferRow>, LedgerError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id = ANY($1)"
    )))
    .bind(ids)
    .fetch_all(pool)
    .await?)
}

/// Keyset cursor for lists ordered by (created_at, id) descending: a
/// transfer's uuid, or (for an account's entries) the entry's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor<I = Uuid> {
    pub created_at: DateTime<Utc>,
    pub id: I,
}

impl<I: std::fmt::Display + std::str::FromStr> Cursor<I> {
    /// Opaque to clients: base64url of `<micros>.<id>`.
    pub fn encode(&self) -> String {
        use base64::Engine;
        let raw = format!("{}.{}", self.created_at.timestamp_micros(), self.id);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    pub fn decode(text: &str) -> Option<Self> {
        use base64::Engine;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (micros, id) = raw.split_once('.')?;
        Some(Self {
            created_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            id: id.parse().ok()?,
        })
    }
}

/// A page of the transfers `user` sent or received, newest first. Index
/// scans (sent by owner, received by destination account, reversals
/// debiting the user's accounts) merged by the database; each side stops
/// at `limit` rows. Received means committed: a payee never sees a
/// transfer to them that was refused (see [`get`]).
pub async fn list_for_user(
    pool: &PgPool,
    user: Uuid,
    limit: i64,
    before: Option<Cursor>,
) -> Result<Vec<TransferRow>, LedgerError> {
    let (ts, id) = match before {
        Some(c) => (c.created_at, c.id),
        None => (far_future(), Uuid::max()),
    };
    let sql = format!(
        "(SELECT {TRANSFER_COLUMNS} FROM transfers
           WHERE owner_id = $1 AND (created_at, id) < ($2, $3)
           ORDER BY created_at DESC, id DESC LIMIT $4)
         UNION
         (SELECT {TRANSFER_COLUMNS} FROM transfers
           WHERE to_account IN (SELECT id FROM accounts WHERE owner_id = $1)
             AND status = 'committed'
             AND (created_at, id) < ($2, $3)
           ORDER BY created_at DESC, id DESC LIMIT $4)
         UNION
         (SELECT {TRANSFER_COLUMNS} FROM transfers
           WHERE reverses IS NOT NULL
             AND from_account IN (SELECT id FROM accounts WHERE owner_id = $1)
             AND (created_at, id) < ($2, $3)
           ORDER BY created_at DESC, id DESC LIMIT $4)
         ORDER BY created_at DESC, id DESC LIMIT $4"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(user)
        .bind(ts)
        .bind(id)
        .bind(limit)
        .fetch_all(pool)
        .await?)
}

/// The reversals of `original`, oldest first.
pub async fn reversals_of(pool: &PgPool, original: Uuid) -> Result<Vec<TransferRow>, LedgerError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE reverses = $1 ORDER BY created_at, id"
    )))
    .bind(original)
    .fetch_all(pool)
    .await?)
}

/// Upper bound for the first page: the year 9999.
pub(crate) fn far_future() -> DateTime<Utc> {
    DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let c = Cursor {
            created_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            id: Uuid::new_v4(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::<Uuid>::decode("not a cursor"), None);
        assert_eq!(Cursor::<Uuid>::decode(""), None);
        let e = Cursor {
            created_at: c.created_at,
            id: 42_i64,
        };
        assert_eq!(Cursor::decode(&e.encode()), Some(e));
        assert_eq!(Cursor::<i64>::decode(&c.encode()), None);
    }
}
