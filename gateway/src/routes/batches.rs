//! `POST /v1/batches`, `GET /v1/batches/{id}`, `GET /v1/batches/{id}/payments`.
//!
//! Thin adapters: the upload's parameters are read here and the batch is
//! queued by `submit_batch` (any invalid line refuses the whole batch and
//! nothing is published); progress and outcomes come from `batch_report`.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use serde::Deserialize;
use shared::batch_line::Format;
use shared::transfer::{TransferStatus, batch_id};

use ledger::audit::Record;

use crate::audit;
use crate::batch_report::{self, BatchView, PAYMENTS_PAGE_DEFAULT, PAYMENTS_PAGE_MAX, PaymentView};
use crate::error::ApiError;
use crate::extract::{Caller, PathId, idempotency_key};
use crate::guard::RequestMeta;
use crate::page::{self, Page};
use crate::responses as r;
use crate::state::SharedState;
use crate::submit_batch::{self, Accepted, BatchMode};

#[derive(Deserialize)]
pub struct SubmitParams {
    mode: Option<String>,
}

/// Uploads a batch of payments: CSV (header
/// `from_account,to_account,amount,currency,reference`), NDJSON (one
/// transfer request per line) or JSON. Read line by line as it streams in;
/// any invalid line refuses the whole batch (`422`, line-numbered errors)
/// and nothing is published. `202` after every payment is queued. The same
/// Idempotency-Key with the same file names the same batch and applies
/// nothing twice.
#[utoipa::path(
    post,
    path = "/v1/batches",
    operation_id = "submitBatch",
    tag = "batches",
    security(("bearer" = [])),
    params(
        ("mode" = Option<BatchMode>, Query, description = "`independent` (default) or `atomic`"),
        ("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
            description = "The client's name for this batch: resubmitting with the same key applies nothing twice"),
    ),
    request_body(
        description = "At most 100,000 payments and 32 MiB",
        content(
            (String = "text/csv", example = "from_account,to_account,amount,currency,reference\na11ce000-0000-4000-8000-000000000001,b0b00000-0000-4000-8000-000000000001,12.50,EUR,lunch\n"),
            (String = "application/x-ndjson"),
            (crate::batch_input::JsonBatch = "application/json"),
        )
    ),
    responses(
        (status = 202, description = "Every payment is queued (or, replayed, was queued before)", body = Accepted,
            headers(
                ("Location" = String, description = "`/v1/batches/{id}`"),
                ("Idempotent-Replayed" = String, description = "`true` when this batch was submitted before"),
            )),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 413, response = r::TooLarge),
        (status = 415, response = r::UnsupportedMediaType),
        (status = 422, response = r::Unprocessable),
        (status = 500, response = r::Internal),
    )
)]
pub async fn submit(
    State(state): State<SharedState>,
    caller: Caller,
    meta: RequestMeta,
    headers: HeaderMap,
    params: Result<Query<SubmitParams>, QueryRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    let mut audit = Record::new("batch.submit", "refused")
        .actor(caller.id.to_string())
        .role(caller.role.as_str());
    let result = submit_checked(&state, caller, headers, params, body, &mut audit).await;
    state
        .audit
        .record(meta.stamp(audit::outcome(audit, &result)));
    result
}

async fn submit_checked(
    state: &SharedState,
    caller: Caller,
    headers: HeaderMap,
    params: Result<Query<SubmitParams>, QueryRejection>,
    body: Body,
    audit: &mut Record,
) -> Result<Response, ApiError> {
    caller.require_mover()?;
    let key = idempotency_key(&headers)?;
    audit.target = Some(batch_id(caller.id, &key).to_string());
    let params = page::query(params)?;
    let mode = BatchMode::parse(params.mode.as_deref())?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let format = Format::from_content_type(content_type).ok_or_else(|| {
        ApiError::Unsupported("send text/csv, application/x-ndjson or application/json".into())
    })?;
    submit_batch::submit(state, caller, &key, mode, format, body, &mut audit.detail).await
}

#[utoipa::path(
    get,
    path = "/v1/batches/{id}",
    operation_id = "getBatch",
    tag = "batches",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "Batch id")),
    responses(
        (status = 200, description = "The batch (its owner or ops)", body = BatchView),
        (status = 401, response = r::Unauthorized),
        (status = 404, response = r::NotFound),
        (status = 500, response = r::Internal),
    )
)]
pub async fn get(
    State(state): State<SharedState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<BatchView>, ApiError> {
    let batch = batch_report::visible(&state, caller, &id).await?;
    Ok(Json(batch_report::view(&state, batch).await?))
}

#[derive(Deserialize)]
pub struct PaymentParams {
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// Per-payment outcomes by line. Pending lines (not applied yet) show only
/// their line and id. The cursor is the last line of the previous page.
#[utoipa::path(
    get,
    path = "/v1/batches/{id}/payments",
    operation_id = "listBatchPayments",
    tag = "batches",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "Batch id"),
        ("status" = Option<shared::transfer::TransferStatus>, Query, description = "Only payments in this state"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size (default 100)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page (the last line seen)"),
    ),
    responses(
        (status = 200, description = "A page of outcomes, by line", body = Page<PaymentView>),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 404, response = r::NotFound),
        (status = 422, response = r::Unprocessable),
        (status = 500, response = r::Internal),
    )
)]
pub async fn payments(
    State(state): State<SharedState>,
    caller: Caller,
    PathId(id): PathId,
    query: Result<Query<PaymentParams>, QueryRejection>,
) -> Result<Json<Page<PaymentView>>, ApiError> {
    let batch = batch_report::visible(&state, caller, &id).await?;
    let params = page::query(query)?;
    let limit = match params.limit.as_deref() {
        None => PAYMENTS_PAGE_DEFAULT,
        Some(t) => t
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=PAYMENTS_PAGE_MAX).contains(n))
            .ok_or_else(|| ApiError::field("limit", format!("must be 1 to {PAYMENTS_PAGE_MAX}")))?,
    };
    let after = match params.cursor.as_deref() {
        None | Some("") => 0,
        Some(t) => t
            .parse::<i32>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(page::bad_cursor)?,
    };
    let status =
        match params.status.as_deref() {
            None => None,
            Some(s) => Some(TransferStatus::parse(s).ok_or_else(|| {
                ApiError::field("status", "must be pending, committed or rejected")
            })?),
        };
    let items = batch_report::payments(&state, batch.id, status, after, limit).await?;
    Ok(Json(Page::of(items, limit, |p| p.line.to_string())))
}
