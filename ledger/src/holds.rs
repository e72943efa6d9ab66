//! Hold reads: one hold with its captures and voids, a list for an
//! account, and the processor's expiry scan. Holds are written only by
//! `apply` (under the account locks).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use shared::hold::{HoldActionView, HoldStatus, HoldView};
use shared::messages::format_money;
use shared::transfer::RejectReason;
use sqlx::PgPool;
use uuid::Uuid;

use crate::LedgerError;

pub(crate) const HOLD_COLUMNS: &str = "id, owner_id, idempotency_key, fingerprint, from_account, \
     to_account, amount, captured_amount, currency, reference, status, reason, created_at, \
     expires_at, processed_at, finished_at, capture_transfer_id";

/// A hold as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HoldRow {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub idempotency_key: String,
    pub fingerprint: Vec<u8>,
    pub from_account: Uuid,
    pub to_account: Uuid,
    pub amount: Decimal,
    pub captured_amount: Option<Decimal>,
    pub currency: String,
    pub reference: Option<String>,
    pub status: String,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub processed_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub capture_transfer_id: Option<Uuid>,
}

fn reason(text: Option<&str>) -> Option<RejectReason> {
    text.map(|r| RejectReason::parse(r).unwrap_or(RejectReason::ProcessingFailed))
}

impl HoldRow {
    pub fn is_pending(&self) -> bool {
        self.status == HoldStatus::Pending.as_str()
    }

    pub fn view(&self) -> HoldView {
        HoldView {
            id: self.id,
            // The table's CHECK admits only known states.
            status: HoldStatus::parse(&self.status).unwrap_or(HoldStatus::Rejected),
            reason: reason(self.reason.as_deref()),
            from_account: self.from_account,
            to_account: self.to_account,
            amount: format_money(self.amount, &self.currency),
            captured_amount: self
                .captured_amount
                .map(|a| format_money(a, &self.currency)),
            currency: self.currency.clone(),
            reference: self.reference.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            finished_at: self.finished_at,
            capture_transfer_id: self.capture_transfer_id,
            action: None,
            actions: None,
        }
    }
}

pub(crate) const ACTION_COLUMNS: &str =
    "id, hold_id, kind, owner_id, idempotency_key, fingerprint, amount, status, reason, created_at";

/// A capture or void as asked, with its outcome.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HoldActionRow {
    pub id: Uuid,
    pub hold_id: Uuid,
    pub kind: String,
    pub owner_id: Uuid,
    pub idempotency_key: String,
    pub fingerprint: Vec<u8>,
    pub amount: Option<Decimal>,
    pub status: String,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl HoldActionRow {
    pub fn view(&self, currency: &str) -> HoldActionView {
        HoldActionView {
            id: self.id,
            kind: self.kind.clone(),
            status: self.status.clone(),
            reason: reason(self.reason.as_deref()),
            amount: self.amount.map(|a| format_money(a, currency)),
            created_at: self.created_at,
        }
    }
}

pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<HoldRow>, LedgerError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {HOLD_COLUMNS} FROM holds WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// The owners of a hold's two accounts (for authorization); of a rejected
/// hold only the payer's: nothing was reserved for the payee, and why it
/// was refused is the payer's business (the payee is not notified of one
/// either).
pub async fn owners(pool: &PgPool, hold: &HoldRow) -> Result<Vec<Uuid>, LedgerError> {
    let payee = (hold.status != HoldStatus::Rejected.as_str()).then_some(hold.to_account);
    Ok(
        sqlx::query_scalar("SELECT owner_id FROM accounts WHERE id = $1 OR id = $2")
            .bind(hold.from_account)
            .bind(payee)
            .fetch_all(pool)
            .await?,
    )
}

pub async fn actions_of(pool: &PgPool, hold: Uuid) -> Result<Vec<HoldActionRow>, LedgerError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ACTION_COLUMNS} FROM hold_actions WHERE hold_id = $1 ORDER BY created_at, id"
    )))
    .bind(hold)
    .fetch_all(pool)
    .await?)
}

pub async fn action(pool: &PgPool, id: Uuid) -> Result<Option<HoldActionRow>, LedgerError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ACTION_COLUMNS} FROM hold_actions WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// Which holds an account's list shows on its payee side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// Every hold naming the account as payee (ops, reversers).
    All,
    /// Not the rejected ones: to its owner a refused hold of someone
    /// else's money never happened (see [`owners`]).
    NotRejected,
}

/// The holds on `account` (either side), newest first, optionally in one state.
pub async fn list_for_account(
    pool: &PgPool,
    account: Uuid,
    status: Option<&str>,
    incoming: Incoming,
    limit: i64,
) -> Result<Vec<HoldRow>, LedgerError> {
    let sql = format!(
        "(SELECT {HOLD_COLUMNS} FROM holds WHERE from_account = $1
            AND ($2::text IS NULL OR status = $2) ORDER BY created_at DESC, id DESC LIMIT $3)
         UNION
         (SELECT {HOLD_COLUMNS} FROM holds WHERE to_account = $1
            AND ($2::text IS NULL OR status = $2) AND ($4 OR status <> 'rejected')
            ORDER BY created_at DESC, id DESC LIMIT $3)
         ORDER BY created_at DESC, id DESC LIMIT $3"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(account)
        .bind(status)
        .bind(limit)
        .bind(incoming == Incoming::All)
        .fetch_all(pool)
        .await?)
}

/// Pending holds past their expiry, oldest first, at most `limit`: the
/// processor publishes an expiry command for each.
pub async fn expired_pending(pool: &PgPool, limit: i64) -> Result<Vec<Uuid>, LedgerError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM holds WHERE status = 'pending' AND expires_at <= now() \
         ORDER BY expires_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
