//! What a batch owner reads back: progress and totals, and the outcome of
//! each payment by line.
//!
//! Counts are tallied from the ledger's rows by their typed status
//! ([`TransferStatus`]), never by comparing strings.

use std::collections::HashMap;

use rust_decimal::Decimal;
use serde::Serialize;
use shared::messages::format_money;
use shared::transfer::{TransferStatus, payment_id};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::Caller;
use crate::state::SharedState;

/// Outcomes per page when the client does not say.
pub const PAYMENTS_PAGE_DEFAULT: i64 = 100;
/// Outcomes per page: larger than other lists, since a batch job reads all
/// of a 100,000-line batch's outcomes (each row is small, fetched by index).
pub const PAYMENTS_PAGE_MAX: i64 = 1000;

/// Amounts per currency.
#[derive(Serialize, ToSchema)]
pub struct Total {
    #[schema(pattern = "^[A-Z]{3}$", example = "EUR")]
    currency: String,
    #[schema(pattern = r"^[0-9]+(\.[0-9]+)?$", example = "250.00")]
    committed: String,
    #[schema(pattern = r"^[0-9]+(\.[0-9]+)?$", example = "0.00")]
    rejected: String,
}

/// A batch's progress and totals.
#[derive(Serialize, ToSchema)]
pub struct BatchView {
    id: Uuid,
    #[schema(value_type = crate::submit_batch::BatchMode)]
    mode: String,
    count: i64,
    pending: i64,
    committed: i64,
    rejected: i64,
    totals: Vec<Total>,
    created_at: chrono::DateTime<chrono::Utc>,
    done: bool,
}

/// The batch `id` if the caller may see it; otherwise the same 404 as for
/// an unknown id.
pub async fn visible(
    state: &SharedState,
    caller: Caller,
    id: &str,
) -> Result<ledger::batches::BatchRow, ApiError> {
    let not_found = || ApiError::NotFound(format!("no batch {id:?} visible to you"));
    let id = Uuid::parse_str(id).map_err(|_| not_found())?;
    match ledger::batches::get(&state.pool, id).await? {
        Some(b) if caller.may_read(b.owner_id) => Ok(b),
        _ => Err(not_found()),
    }
}

/// Committed and rejected amounts of one currency.
#[derive(Default)]
struct Sums {
    committed: Decimal,
    rejected: Decimal,
}

/// The batch's progress: processed payments by status, totals by currency.
pub async fn view(
    state: &SharedState,
    batch: ledger::batches::BatchRow,
) -> Result<BatchView, ApiError> {
    let counts = ledger::batches::counts(&state.pool, batch.id).await?;
    let (mut committed, mut rejected) = (0, 0);
    let mut sums: HashMap<String, Sums> = HashMap::new();
    for c in &counts {
        let sum = sums.entry(c.currency.clone()).or_default();
        match TransferStatus::parse(&c.status) {
            Some(TransferStatus::Committed) => {
                committed += c.transfers;
                sum.committed += c.amount;
            }
            Some(TransferStatus::Rejected) => {
                rejected += c.transfers;
                sum.rejected += c.amount;
            }
            // A processed row is committed or rejected; anything else is
            // still pending, and counted so.
            Some(TransferStatus::Pending) | None => {
                tracing::warn!(batch = %batch.id, status = %c.status, "batch row with an unexpected status");
            }
        }
    }
    let mut totals: Vec<Total> = sums
        .into_iter()
        .map(|(currency, s)| Total {
            committed: format_money(s.committed, &currency),
            rejected: format_money(s.rejected, &currency),
            currency,
        })
        .collect();
    totals.sort_by(|a, b| a.currency.cmp(&b.currency));
    let count = i64::from(batch.count);
    let pending = (count - committed - rejected).max(0);
    Ok(BatchView {
        id: batch.id,
        mode: batch.mode,
        count,
        pending,
        committed,
        rejected,
        totals,
        created_at: batch.created_at,
        done: pending == 0,
    })
}

/// One payment's outcome. Pending ones show only line, id and status.
#[derive(Serialize, ToSchema)]
pub struct PaymentView {
    #[schema(minimum = 1)]
    pub line: i32,
    id: Uuid,
    #[schema(value_type = shared::transfer::TransferStatus)]
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<shared::transfer::RejectReason>)]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from_account: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to_account: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^[0-9]+(\.[0-9]+)?$", example = "12.50")]
    amount: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Z]{3}$", example = "EUR")]
    currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reference: Option<String>,
}

/// Up to `limit` outcomes after line `after`, by line; `status` keeps only
/// payments in that state.
pub async fn payments(
    state: &SharedState,
    batch: Uuid,
    status: Option<TransferStatus>,
    after: i32,
    limit: i64,
) -> Result<Vec<PaymentView>, ApiError> {
    if status == Some(TransferStatus::Pending) {
        let lines = ledger::batches::pending_lines(&state.pool, batch, after, limit).await?;
        return Ok(lines
            .into_iter()
            .map(|line| PaymentView {
                line,
                id: payment_id(batch, line as u32),
                status: TransferStatus::Pending.as_str(),
                reason: None,
                from_account: None,
                to_account: None,
                amount: None,
                currency: None,
                reference: None,
            })
            .collect());
    }
    let status = status.map(|s| s.as_str());
    let rows = ledger::batches::payments(&state.pool, batch, status, after, limit).await?;
    Ok(rows
        .into_iter()
        .map(|(line, row)| {
            let v = row.view();
            PaymentView {
                line,
                id: v.id,
                status: v.status.as_str(),
                reason: v.reason.map(|r| r.as_str().to_owned()),
                from_account: Some(v.from_account),
                to_account: Some(v.to_account),
                amount: Some(v.amount),
                currency: Some(v.currency),
                reference: v.reference,
            }
        })
        .collect())
}
