//! Batches: the submission record, progress counts and per-payment outcomes.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use shared::transfer::TransferStatus;
use sqlx::PgPool;
use uuid::Uuid;

use crate::LedgerError;
use crate::transfers::{TRANSFER_COLUMNS, TransferRow};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BatchRow {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub fingerprint: Vec<u8>,
    pub mode: String,
    pub count: i32,
    pub created_at: DateTime<Utc>,
}

/// What recording a submission found.
pub enum Recorded {
    /// First time: recorded now.
    New,
    /// Submitted before with the same content (a resubmission).
    Same,
    /// The key was used for different content.
    Different,
}

pub async fn record(
    pool: &PgPool,
    id: Uuid,
    owner: Uuid,
    key: &str,
    fingerprint: &[u8; 32],
    mode: &str,
    lines: &[i32],
) -> Result<Recorded, LedgerError> {
    let inserted = sqlx::query(
        "INSERT INTO batches (id, owner_id, idempotency_key, fingerprint, mode, count, lines)
         VALUES ($1, $2, $3, $4, $5, cardinality($6::int4[]), $6) ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(owner)
    .bind(key)
    .bind(fingerprint.as_slice())
    .bind(mode)
    .bind(lines)
    .execute(pool)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Recorded::New);
    }
    let existing = get(pool, id).await?;
    Ok(match existing {
        Some(b) if b.fingerprint == fingerprint && b.mode == mode => Recorded::Same,
        _ => Recorded::Different,
    })
}

pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<BatchRow>, LedgerError> {
    Ok(sqlx::query_as(
        "SELECT id, owner_id, fingerprint, mode, count, created_at FROM batches WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// Lines of the batch already applied (a resubmission skips them).
pub async fn applied_lines(pool: &PgPool, id: Uuid) -> Result<Vec<i32>, LedgerError> {
    Ok(
        sqlx::query_scalar("SELECT batch_line FROM transfers WHERE batch_id = $1")
            .bind(id)
            .fetch_all(pool)
            .await?,
    )
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CountRow {
    pub status: String,
    pub currency: String,
    pub transfers: i64,
    pub amount: Decimal,
}

/// How many of a batch's payments are settled, by final status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub committed: i64,
    pub rejected: i64,
}

impl Tally {
    /// Sums [`counts`] rows by status (typed, not by comparing strings).
    pub fn of(counts: &[CountRow]) -> Self {
        let mut tally = Self::default();
        for c in counts {
            match TransferStatus::parse(&c.status) {
                Some(TransferStatus::Committed) => tally.committed += c.transfers,
                Some(TransferStatus::Rejected) => tally.rejected += c.transfers,
                _ => {}
            }
        }
        tally
    }
}

/// Processed payments by status and currency.
pub async fn counts(pool: &PgPool, id: Uuid) -> Result<Vec<CountRow>, LedgerError> {
    Ok(sqlx::query_as(
        "SELECT status, currency::text AS currency, count(*) AS transfers, sum(amount) AS amount
           FROM transfers WHERE batch_id = $1 GROUP BY status, currency ORDER BY currency, status",
    )
    .bind(id)
    .fetch_all(pool)
    .await?)
}

/// Processed payments with line numbers after `after_line`, in line order.
pub async fn payments(
    pool: &PgPool,
    id: Uuid,
    status: Option<&str>,
    after_line: i32,
    limit: i64,
) -> Result<Vec<(i32, TransferRow)>, LedgerError> {
    #[derive(sqlx::FromRow)]
    struct Row {
        batch_line: i32,
        #[sqlx(flatten)]
        transfer: TransferRow,
    }
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT batch_line, {TRANSFER_COLUMNS} FROM transfers
          WHERE batch_id = $1 AND batch_line > $2 AND ($3::text IS NULL OR status = $3)
          ORDER BY batch_line LIMIT $4"
    )))
    .bind(id)
    .bind(after_line)
    .bind(status)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.batch_line, r.transfer))
        .collect())
}

/// Lines not processed yet, after `after_line`, in order.
pub async fn pending_lines(
    pool: &PgPool,
    id: Uuid,
    after_line: i32,
    limit: i64,
) -> Result<Vec<i32>, LedgerError> {
    Ok(sqlx::query_scalar(
        "SELECT l FROM batches b, unnest(b.lines) AS l
          WHERE b.id = $1 AND l > $2
            AND NOT EXISTS (SELECT 1 FROM transfers t WHERE t.batch_id = $1 AND t.batch_line = l)
          ORDER BY l LIMIT $3",
    )
    .bind(id)
    .bind(after_line)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
