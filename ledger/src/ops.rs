//! What operators read: one transfer's stage timestamps, and recent
//! throughput and latency per stage.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::LedgerError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StageRow {
    pub id: Uuid,
    pub status: String,
    pub reason: Option<String>,
    pub trace_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    pub received_at: Option<DateTime<Utc>>,
    pub processed_at: DateTime<Utc>,
    /// A reversal: the transfer it reverses, and why.
    pub reverses: Option<Uuid>,
    pub reversal_reason: Option<String>,
    /// A hold's capture: the hold.
    pub hold_id: Option<Uuid>,
}

pub async fn stages(pool: &PgPool, id: Uuid) -> Result<Option<StageRow>, LedgerError> {
    Ok(sqlx::query_as(
        "SELECT id, status, reason, trace_id, created_at, published_at, received_at, processed_at,
                reverses, reversal_reason, hold_id
           FROM transfers WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// Counts and latency percentiles (p50, p90, p99 in milliseconds) of the
/// transfers processed in the last `window_secs` seconds.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StatsRow {
    pub transfers: i64,
    pub committed: i64,
    pub rejected: i64,
    pub publish_ms: Option<Vec<f64>>,
    pub queue_ms: Option<Vec<f64>>,
    pub apply_ms: Option<Vec<f64>>,
    pub end_to_end_ms: Option<Vec<f64>>,
}

pub async fn stats(pool: &PgPool, window_secs: f64) -> Result<StatsRow, LedgerError> {
    Ok(sqlx::query_as(
        "WITH recent AS (
             SELECT status,
                    extract(epoch FROM published_at - created_at) * 1000 AS publish,
                    extract(epoch FROM received_at - published_at) * 1000 AS queue,
                    extract(epoch FROM processed_at - received_at) * 1000 AS apply,
                    extract(epoch FROM processed_at - created_at) * 1000 AS total
               FROM transfers
              WHERE processed_at > now() - make_interval(secs => $1)
                AND received_at IS NOT NULL)
         SELECT count(*) AS transfers,
                count(*) FILTER (WHERE status = 'committed') AS committed,
                count(*) FILTER (WHERE status = 'rejected') AS rejected,
                percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY publish) AS publish_ms,
                percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY queue) AS queue_ms,
                percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY apply) AS apply_ms,
                percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY total) AS end_to_end_ms
           FROM recent",
    )
    .bind(window_secs)
    .fetch_one(pool)
    .await?)
}

/// The most recently processed transfers of all users, with stage timings.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = RecentTransfer)]
pub struct RecentRow {
    pub id: Uuid,
    /// `committed` or `rejected` (the ledger stores final states only).
    #[schema(value_type = shared::transfer::TransferStatus)]
    pub status: String,
    #[schema(value_type = Option<shared::transfer::RejectReason>)]
    pub reason: Option<String>,
    pub from_account: Uuid,
    pub to_account: Uuid,
    /// Decimal string with the currency's minor units.
    #[schema(pattern = r"^[0-9]+(\.[0-9]+)?$", example = "12.30")]
    pub amount: String,
    #[schema(pattern = "^[A-Z]{3}$", example = "EUR")]
    pub currency: String,
    pub created_at: DateTime<Utc>,
    pub processed_at: DateTime<Utc>,
    pub trace_id: Option<String>,
    /// accepted → JetStream stored.
    pub publish_ms: Option<f64>,
    /// stored → received by a processor.
    pub queue_ms: Option<f64>,
    /// received → committed.
    pub apply_ms: Option<f64>,
    /// accepted → committed.
    pub total_ms: f64,
    /// A reversal: the transfer it reverses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reverses: Option<Uuid>,
    /// A hold's capture: the hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_id: Option<Uuid>,
}

pub async fn recent(pool: &PgPool, limit: i64) -> Result<Vec<RecentRow>, LedgerError> {
    Ok(sqlx::query_as(
        "SELECT id, status, reason, from_account, to_account, amount::text AS amount, currency,
                created_at, processed_at, trace_id,
                (extract(epoch FROM published_at - created_at) * 1000)::float8 AS publish_ms,
                (extract(epoch FROM received_at - published_at) * 1000)::float8 AS queue_ms,
                (extract(epoch FROM processed_at - received_at) * 1000)::float8 AS apply_ms,
                (extract(epoch FROM processed_at - created_at) * 1000)::float8 AS total_ms,
                reverses, hold_id
           FROM transfers ORDER BY processed_at DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
