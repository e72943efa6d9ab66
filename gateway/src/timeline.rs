//! A processed transfer's way through the services, stage by stage, for
//! operators: from the ledger's timestamps and, for the hand-over to the
//! notifiers, the relay's record in Redis.

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::transfer::TransferStatus;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::SharedState;

/// One hour in microseconds: the relay's hand-over records are kept in
/// hourly hashes.
const HOUR_MICROS: i64 = 3_600_000_000;

/// The stages of a transfer's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StageName {
    Accepted,
    Published,
    Received,
    Committed,
    Rejected,
    Notified,
}

/// One stage of a transfer and when it happened.
#[derive(Serialize, ToSchema)]
pub struct Stage {
    stage: StageName,
    at: DateTime<Utc>,
    /// Milliseconds since the previous stage.
    ms_since_previous: Option<f64>,
}

/// A processed transfer's way through the services.
#[derive(Serialize, ToSchema)]
pub struct Timeline {
    id: Uuid,
    #[schema(value_type = shared::transfer::TransferStatus)]
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<shared::transfer::RejectReason>)]
    reason: Option<String>,
    /// W3C trace id: search for it in the tracing backend (Jaeger, Tempo).
    trace_id: Option<String>,
    stages: Vec<Stage>,
    total_ms: Option<f64>,
    /// A reversal: the transfer it reverses, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    reverses: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reversal_reason: Option<String>,
    /// A hold's capture: the hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    hold_id: Option<Uuid>,
}

fn ms(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_microseconds().unwrap_or(0) as f64 / 1000.0
}

/// When the relay handed the transfer's result to the notifiers (Redis),
/// if still kept ([`shared::messages::RELAYED_KEEP`]). It is in the hourly
/// hash of the hour the transfer was processed in, or of the next one.
async fn relayed_at(
    state: &SharedState,
    id: Uuid,
    processed_at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let client = state.redis.as_ref()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    let hour = processed_at.timestamp_micros();
    let mut pipe = redis::pipe();
    for at in [hour, hour + HOUR_MICROS] {
        pipe.cmd("HGET")
            .arg(shared::messages::relayed_key(&state.redis_prefix, at))
            .arg(id.to_string());
    }
    let found: Vec<Option<i64>> = pipe.query_async(&mut conn).await.ok()?;
    DateTime::from_timestamp_micros(found.into_iter().flatten().next()?)
}

/// The timeline of processed transfer `id`.
pub async fn of(state: &SharedState, id: Uuid) -> Result<Timeline, ApiError> {
    let row = ledger::ops::stages(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no processed transfer {id}")))?;
    // A processed transfer is committed or rejected.
    let finished = match TransferStatus::parse(&row.status) {
        Some(TransferStatus::Committed) => StageName::Committed,
        _ => StageName::Rejected,
    };
    let points = [
        (StageName::Accepted, Some(row.created_at)),
        (StageName::Published, row.published_at),
        (StageName::Received, row.received_at),
        (finished, Some(row.processed_at)),
        (
            StageName::Notified,
            relayed_at(state, id, row.processed_at).await,
        ),
    ];
    let mut stages = Vec::new();
    let mut previous: Option<DateTime<Utc>> = None;
    for (stage, at) in points {
        let Some(at) = at else { continue };
        stages.push(Stage {
            stage,
            at,
            ms_since_previous: previous.map(|p| ms(p, at)),
        });
        previous = Some(at);
    }
    let total_ms = stages.last().map(|s| ms(row.created_at, s.at));
    Ok(Timeline {
        id: row.id,
        status: row.status,
        reason: row.reason,
        trace_id: row.trace_id,
        stages,
        total_ms,
        reverses: row.reverses,
        reversal_reason: row.reversal_reason,
        hold_id: row.hold_id,
    })
}
