//! Operators' views (role `ops`): a transfer's timeline and recent stats.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use shared::auth::Role;
use utoipa::ToSchema;

use crate::backlog::BacklogView;
use crate::error::ApiError;
use crate::extract::{Caller, PathId};
use crate::page::{self, PAGE_DEFAULT, PAGE_MAX, Page};
use crate::responses as r;
use crate::state::SharedState;
use crate::timeline::{self, Timeline};

fn require_ops(caller: &Caller) -> Result<(), ApiError> {
    if caller.role == Role::Ops {
        Ok(())
    } else {
        Err(ApiError::Forbidden("this endpoint is for the ops role"))
    }
}

#[utoipa::path(
    get,
    path = "/v1/ops/transfers/{id}/timeline",
    operation_id = "getTransferTimeline",
    tag = "ops",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "Transfer id")),
    responses(
        (status = 200, description = "Stages and their timing; `trace_id` finds the trace", body = Timeline),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 404, response = r::NotFound),
        (status = 500, response = r::Internal),
    )
)]
pub async fn timeline(
    State(state): State<SharedState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<Timeline>, ApiError> {
    require_ops(&caller)?;
    let id = crate::extract::parse_transfer_id(&id)?;
    Ok(Json(timeline::of(&state, id).await?))
}

#[derive(Deserialize)]
pub struct StatsParams {
    window_seconds: Option<String>,
}

/// Milliseconds.
#[derive(Serialize, ToSchema)]
pub struct Percentiles {
    p50: f64,
    p90: f64,
    p99: f64,
}

fn percentiles(v: Option<Vec<f64>>) -> Option<Percentiles> {
    match v.as_deref() {
        Some([p50, p90, p99]) => Some(Percentiles {
            p50: *p50,
            p90: *p90,
            p99: *p99,
        }),
        _ => None,
    }
}

/// Milliseconds per stage (`null` when nothing was processed in the window).
#[derive(Serialize, ToSchema)]
pub struct Latency {
    /// Accepted → stored by JetStream.
    publish: Option<Percentiles>,
    /// Stored → received by a processor.
    queue: Option<Percentiles>,
    /// Received → committed.
    apply: Option<Percentiles>,
    /// Accepted → committed.
    end_to_end: Option<Percentiles>,
}

/// Throughput and latency over a recent window.
#[derive(Serialize, ToSchema)]
pub struct Stats {
    window_seconds: u32,
    transfers: i64,
    committed: i64,
    rejected: i64,
    per_second: f64,
    /// Milliseconds per stage: accepted → published (JetStream ack),
    /// published → received (queue wait), received → committed (apply),
    /// and accepted → committed.
    latency_ms: Latency,
    /// The transfers queue right now (not over the window): what waits,
    /// how fast it clears, and whether new transfers are being refused.
    backlog: BacklogView,
}

#[utoipa::path(
    get,
    path = "/v1/ops/stats",
    operation_id = "getStats",
    tag = "ops",
    security(("bearer" = [])),
    params(("window_seconds" = Option<u32>, Query, minimum = 1, maximum = 86400, description = "The window (default 60)")),
    responses(
        (status = 200, description = "Throughput and p50/p90/p99 per stage", body = Stats),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 422, response = r::Unprocessable),
        (status = 500, response = r::Internal),
    )
)]
pub async fn stats(
    State(state): State<SharedState>,
    caller: Caller,
    query: Result<Query<StatsParams>, QueryRejection>,
) -> Result<Json<Stats>, ApiError> {
    require_ops(&caller)?;
    let params = page::query(query)?;
    let window: u32 = match params.window_seconds.as_deref() {
        None => 60,
        Some(t) => t
            .parse()
            .ok()
            .filter(|w| (1..=86_400).contains(w))
            .ok_or_else(|| ApiError::field("window_seconds", "must be 1 to 86400"))?,
    };
    let row = ledger::ops::stats(&state.pool, f64::from(window)).await?;
    Ok(Json(Stats {
        window_seconds: window,
        transfers: row.transfers,
        committed: row.committed,
        rejected: row.rejected,
        per_second: row.transfers as f64 / f64::from(window),
        latency_ms: Latency {
            publish: percentiles(row.publish_ms),
            queue: percentiles(row.queue_ms),
            apply: percentiles(row.apply_ms),
            end_to_end: percentiles(row.end_to_end_ms),
        },
        backlog: state.backlog.view(),
    }))
}

#[derive(Deserialize)]
pub struct RecentParams {
    limit: Option<String>,
}

/// `GET /v1/ops/transfers?limit=`: the live flow across all users.
#[utoipa::path(
    get,
    path = "/v1/ops/transfers",
    operation_id = "listRecentTransfers",
    tag = "ops",
    security(("bearer" = [])),
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "How many (default 50)")),
    responses(
        (status = 200, description = "The most recently processed transfers of all users, with stage timings", body = Vec<ledger::ops::RecentRow>),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 422, response = r::Unprocessable),
        (status = 500, response = r::Internal),
    )
)]
pub async fn recent(
    State(state): State<SharedState>,
    caller: Caller,
    query: Result<Query<RecentParams>, QueryRejection>,
) -> Result<Json<Vec<ledger::ops::RecentRow>>, ApiError> {
    require_ops(&caller)?;
    let params = page::query(query)?;
    let limit = match params.limit.as_deref() {
        None => 50,
        Some(t) => t
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| ApiError::field("limit", "must be 1 to 500"))?,
    };
    let mut rows = ledger::ops::recent(&state.pool, limit).await?;
    for r in &mut rows {
        // numeric::text keeps 4 decimals; show the currency's own.
        if let Ok(v) = r.amount.parse::<rust_decimal::Decimal>() {
            r.amount = shared::messages::format_money(v, &r.currency);
        }
    }
    Ok(Json(rows))
}

#[derive(Deserialize)]
pub struct AuditParams {
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /v1/ops/audit?limit=&cursor=`: the audit trail, newest first, with
/// each row's hashes (read-only; `bankadmin audit verify` checks the chain).
#[utoipa::path(
    get,
    path = "/v1/ops/audit",
    operation_id = "listAudit",
    tag = "ops",
    security(("bearer" = [])),
    params(
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "Page size (default 50)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of the audit trail, newest first", body = Page<ledger::audit::Row>),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 422, response = r::Unprocessable),
        (status = 500, response = r::Internal),
    )
)]
pub async fn audit(
    State(state): State<SharedState>,
    caller: Caller,
    query: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<Page<ledger::audit::Row>>, ApiError> {
    require_ops(&caller)?;
    let params = page::query(query)?;
    let limit = match params.limit.as_deref() {
        None => PAGE_DEFAULT,
        Some(t) => t
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=PAGE_MAX).contains(n))
            .ok_or_else(|| ApiError::field("limit", format!("must be 1 to {PAGE_MAX}")))?,
    };
    let before = page::positive_cursor(params.cursor.as_deref())?;
    let items = ledger::audit::page(&state.pool, before, limit).await?;
    Ok(Json(Page::of(items, limit, |r| r.id.to_string())))
}
