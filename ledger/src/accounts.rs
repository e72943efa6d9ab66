//! Account reads: a user's accounts, one account, its ledger entries, and the
//! immutable facts (owner, currency) the gateway caches.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use shared::messages::{AccountView, EntryView, format_money};
use sqlx::PgPool;
use uuid::Uuid;

use crate::LedgerError;
use crate::transfers::{Cursor, far_future};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccountRow {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub currency: String,
    pub balance: Decimal,
    pub overdraft_limit: Decimal,
    /// The sum of the pending holds on the account.
    pub held: Decimal,
    pub version: i64,
    pub kind: String,
    pub created_at: DateTime<Utc>,
}

impl AccountRow {
    pub fn view(&self) -> AccountView {
        AccountView {
            id: self.id,
            currency: self.currency.clone(),
            balance: format_money(self.balance, &self.currency),
            overdraft_limit: format_money(self.overdraft_limit, &self.currency),
            available: format_money(self.balance - self.held, &self.currency),
            held: format_money(self.held, &self.currency),
            created_at: self.created_at,
            version: self.version,
        }
    }
}

const ACCOUNT_COLUMNS: &str =
    "id, owner_id, currency, balance, overdraft_limit, held, version, kind, created_at";

pub async fn list_for_owner(pool: &PgPool, owner: Uuid) -> Result<Vec<AccountRow>, LedgerError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE owner_id = $1 ORDER BY created_at, id"
    )))
    .bind(owner)
    .fetch_all(pool)
    .await?)
}

pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<AccountRow>, LedgerError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// What never changes about an account: safe to cache forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct AccountKey {
    pub id: Uuid,
    pub owner_id: Uuid,
    #[sqlx(try_from = "String")]
    pub currency: CurrencyCode,
}

/// A three-letter code stored inline (no allocation per cached account).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CurrencyCode(pub [u8; 3]);

impl CurrencyCode {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl TryFrom<String> for CurrencyCode {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        let bytes: [u8; 3] = s
            .as_bytes()
            .try_into()
            .map_err(|_| format!("bad currency {s}"))?;
        Ok(Self(bytes))
    }
}

/// Every account's immutable facts, up to `limit` (the gateway warms its
/// cache with them at start).
pub async fn all_keys(pool: &PgPool, limit: i64) -> Result<Vec<AccountKey>, LedgerError> {
    Ok(sqlx::query_as(
        "SELECT id, owner_id, currency FROM accounts ORDER BY created_at DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

pub async fn keys(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<AccountKey>, LedgerError> {
    Ok(
        sqlx::query_as("SELECT id, owner_id, currency FROM accounts WHERE id = ANY($1)")
            .bind(ids)
            .fetch_all(pool)
            .await?,
    )
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct EntryRow {
    id: i64,
    transfer_id: Uuid,
    account_id: Uuid,
    amount: Decimal,
    balance_after: Decimal,
    created_at: DateTime<Utc>,
}

/// A page of an account's entries, newest first (by time, then entry
/// number); `before` is where the previous page ended. One index serves
/// this, balance as-of and statements: `entries (account_id, created_at,
/// id)`; a batch takes its time once it holds the account's lock, so per
/// account this is the order the balance changed in.
pub async fn entries(
    pool: &PgPool,
    account: &AccountRow,
    limit: i64,
    before: Option<Cursor<i64>>,
) -> Result<Vec<EntryView>, LedgerError> {
    let (ts, id) = before.map_or((far_future(), i64::MAX), |c| (c.created_at, c.id));
    let rows: Vec<EntryRow> = sqlx::query_as(
        "SELECT id, transfer_id, account_id, amount, balance_after, created_at FROM entries
          WHERE account_id = $1 AND (created_at, id) < ($2, $3)
          ORDER BY created_at DESC, id DESC LIMIT $4",
    )
    .bind(account.id)
    .bind(ts)
    .bind(id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| EntryView {
            id: r.id,
            transfer_id: r.transfer_id,
            account_id: r.account_id,
            amount: format_money(r.amount, &account.currency),
            balance_after: format_money(r.balance_after, &account.currency),
            currency: account.currency.clone(),
            created_at: r.created_at,
        })
        .collect())
}
