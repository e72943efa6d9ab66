//! `POST /v1/batches`, `GET /v1/batches/{id}`, `GET /v1/batches/{id}/payments`.
//!
//! An upload is read and validated line by line (see `batch_input`); if any
//! line is invalid the batch is refused and nothing is published. Payment ids
//! derive from (batch id, line), the batch id from (caller, key): submitting
//! the same file again after any crash republishes the same ids, which
//! JetStream and the ledger both deduplicate, and lines already applied are
//! skipped. `202` comes only after every payment is acknowledged.

use std::collections::{HashMap, HashSet};

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::messages::{AtomicBatchCommand, BatchRef, SCHEMA_VERSION, TransferCommand};
use shared::problem::FieldError;
use shared::transfer::{batch_id, payment_id};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::batch_input::{self, Format, Payment};
use ledger::audit::Record;

use crate::error::ApiError;
use crate::extract::{Caller, PathId, idempotency_key};
use crate::guard::RequestMeta;
use crate::openapi::responses as r;
use crate::publish;
use crate::routes::transfers::Page;

/// Outcomes per page: larger than other lists, since a batch job reads all
/// of a 100,000-line batch's outcomes (each row is small, fetched by index).
pub const PAYMENTS_PAGE_MAX: i64 = 1000;
use crate::state::SharedState;

/// Payments of an atomic batch (one message, one database transaction).
pub const ATOMIC_MAX: usize = 1_000;
/// Batches one user may upload at the same time (per gateway replica).
pub const CONCURRENT_PER_USER: usize = 2;
/// Publishes in flight for one upload.
const PUBLISH_CONCURRENCY: usize = 512;

#[derive(Deserialize)]
pub struct SubmitParams {
    mode: Option<String>,
}

/// Releases the caller's upload slot when the request ends.
struct Slot<'a> {
    state: &'a SharedState,
    user: Uuid,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut slots = self
            .state
            .batch_slots
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = slots.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                slots.remove(&self.user);
            }
        }
    }
}

fn take_slot(state: &SharedState, user: Uuid) -> Result<Slot<'_>, ApiError> {
    let mut slots = state.batch_slots.lock().unwrap_or_else(|e| e.into_inner());
    let n = slots.entry(user).or_insert(0);
    if *n >= CONCURRENT_PER_USER {
        return Err(ApiError::TooMany(format!(
            "at most {CONCURRENT_PER_USER} batch uploads at a time"
        )));
    }
    *n += 1;
    Ok(Slot { state, user })
}

/// How a batch is applied.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BatchMode {
    /// Each payment commits or is rejected on its own.
    Independent,
    /// All payments commit, or none does (at most 1,000).
    Atomic,
}

/// The batch is queued: every payment is stored in JetStream.
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    id: Uuid,
    /// Payments in the batch.
    count: usize,
    #[schema(value_type = BatchMode)]
    mode: &'static str,
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
        .record(meta.stamp(crate::routes::transfers::outcome(audit, &result)));
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
    let Query(params) = params
        .map_err(|e| ApiError::MalformedBody(format!("bad query string: {}", e.body_text())))?;
    let atomic = match params.mode.as_deref() {
        None | Some("independent") => false,
        Some("atomic") => true,
        Some(_) => return Err(ApiError::field("mode", "must be independent or atomic")),
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let format = Format::from_content_type(content_type).ok_or_else(|| {
        ApiError::Unsupported("send text/csv, application/x-ndjson or application/json".into())
    })?;
    let _slot = take_slot(state, caller.id)?;

    let payments = batch_input::read(body, format).await?;
    if atomic && payments.len() > ATOMIC_MAX {
        return Err(ApiError::field(
            "mode",
            format!("an atomic batch holds at most {ATOMIC_MAX} payments"),
        ));
    }
    check_accounts(state, caller, &payments).await?;

    let id = batch_id(caller.id, &key);
    let mode = if atomic { "atomic" } else { "independent" };
    audit.detail = serde_json::json!({"count": payments.len(), "mode": mode});
    let mut hash = Sha256::new();
    hash.update(mode.as_bytes());
    for p in &payments {
        hash.update(p.line.to_be_bytes());
        hash.update(p.order.fingerprint());
    }
    let fingerprint: [u8; 32] = hash.finalize().into();
    let count = payments.len();
    let lines: Vec<i32> = payments.iter().map(|p| p.line as i32).collect();
    let recorded = ledger::batches::record(
        &state.pool,
        id,
        caller.id,
        key.as_str(),
        &fingerprint,
        mode,
        &lines,
    )
    .await?;
    let replayed = match recorded {
        ledger::batches::Recorded::Different => return Err(ApiError::KeyReused),
        ledger::batches::Recorded::New => false,
        ledger::batches::Recorded::Same => true,
    };
    let done: HashSet<i32> = if replayed {
        ledger::batches::applied_lines(&state.pool, id)
            .await?
            .into_iter()
            .collect()
    } else {
        HashSet::new()
    };
    let accepted_at = chrono::Utc::now();
    let mut commands = Vec::with_capacity(payments.len() - done.len().min(payments.len()));
    for p in payments.iter().filter(|p| !done.contains(&(p.line as i32))) {
        commands.push(TransferCommand {
            v: SCHEMA_VERSION,
            id: payment_id(id, p.line),
            owner: caller.id,
            idempotency_key: format!("{}#{}", key.as_str(), p.line),
            from_account: p.order.from_account,
            to_account: p.order.to_account,
            amount: p.order.amount.value(),
            currency: p.order.currency.code().to_owned(),
            reference: p.order.reference.as_ref().map(|r| r.as_str().to_owned()),
            accepted_at,
            batch: Some(BatchRef {
                id,
                line: p.line as i32,
            }),
        });
    }
    drop(payments);
    if atomic {
        if done.is_empty() {
            let batch = AtomicBatchCommand {
                v: SCHEMA_VERSION,
                id,
                owner: caller.id,
                payments: commands,
            };
            publish::atomic_batch(state, &batch).await?;
        }
    } else {
        let mut results = futures::stream::iter(commands)
            .map(|cmd| async move { publish::transfer(state, &cmd).await })
            .buffer_unordered(PUBLISH_CONCURRENCY);
        while let Some(r) = results.next().await {
            // Stop at the first failure: nothing acknowledged is lost, and
            // the client's resubmission completes the rest.
            r?;
        }
    }
    metrics::counter!("gateway_batches_total", "mode" => mode).increment(1);
    metrics::counter!("gateway_batch_payments_total").increment(count as u64);
    let mut response = (StatusCode::ACCEPTED, Json(Accepted { id, count, mode })).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/batches/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Every source account is the caller's; currencies match; destinations exist.
async fn check_accounts(
    state: &SharedState,
    caller: Caller,
    payments: &[Payment],
) -> Result<(), ApiError> {
    let mut ids: Vec<Uuid> = payments
        .iter()
        .flat_map(|p| [p.order.from_account, p.order.to_account])
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let known = state.accounts.lookup_many(&state.pool, &ids).await?;
    let mut errors: Vec<FieldError> = Vec::new();
    let error = |errors: &mut Vec<FieldError>, line: u32, field: &str, message: String| {
        errors.push(FieldError {
            field: field.into(),
            message,
            line: Some(u64::from(line)),
        });
    };
    for p in payments {
        let currency = p.order.currency.code();
        match known.get(&p.order.from_account) {
            Some(a) if a.owner_id == caller.id => {
                if a.currency.as_str() != currency {
                    error(
                        &mut errors,
                        p.line,
                        "currency",
                        format!("from_account holds {}", a.currency.as_str()),
                    );
                }
            }
            _ => error(
                &mut errors,
                p.line,
                "from_account",
                "is not one of your accounts".into(),
            ),
        }
        match known.get(&p.order.to_account) {
            Some(a) if a.currency.as_str() != currency => {
                error(
                    &mut errors,
                    p.line,
                    "to_account",
                    format!("holds {}, not {currency}", a.currency.as_str()),
                );
            }
            Some(_) => {}
            None => error(&mut errors, p.line, "to_account", "does not exist".into()),
        }
        if errors.len() >= batch_input::ERRORS_MAX {
            break;
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        errors.truncate(batch_input::ERRORS_MAX);
        Err(ApiError::Validation(errors))
    }
}

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
    #[schema(value_type = BatchMode)]
    mode: String,
    count: i64,
    pending: i64,
    committed: i64,
    rejected: i64,
    totals: Vec<Total>,
    created_at: chrono::DateTime<chrono::Utc>,
    done: bool,
}

async fn visible(
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
    let batch = visible(&state, caller, &id).await?;
    let counts = ledger::batches::counts(&state.pool, batch.id).await?;
    let (mut committed, mut rejected) = (0, 0);
    let mut totals: HashMap<String, (rust_decimal::Decimal, rust_decimal::Decimal)> =
        HashMap::new();
    for c in &counts {
        let t = totals.entry(c.currency.clone()).or_default();
        if c.status == "committed" {
            committed += c.transfers;
            t.0 += c.amount;
        } else {
            rejected += c.transfers;
            t.1 += c.amount;
        }
    }
    let mut totals: Vec<Total> = totals
        .into_iter()
        .map(|(currency, (c, r))| Total {
            committed: shared::messages::format_money(c, &currency),
            rejected: shared::messages::format_money(r, &currency),
            currency,
        })
        .collect();
    totals.sort_by(|a, b| a.currency.cmp(&b.currency));
    let count = i64::from(batch.count);
    let pending = (count - committed - rejected).max(0);
    Ok(Json(BatchView {
        id: batch.id,
        mode: batch.mode,
        count,
        pending,
        committed,
        rejected,
        totals,
        created_at: batch.created_at,
        done: pending == 0,
    }))
}

#[derive(Deserialize)]
pub struct PaymentParams {
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// One payment's outcome. Pending ones show only line, id and status.
#[derive(Serialize, ToSchema)]
pub struct PaymentView {
    #[schema(minimum = 1)]
    line: i32,
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
    let batch = visible(&state, caller, &id).await?;
    let Query(params) = query
        .map_err(|e| ApiError::MalformedBody(format!("bad query string: {}", e.body_text())))?;
    let limit = match params.limit.as_deref() {
        None => 100,
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
            .ok_or_else(|| ApiError::field("cursor", "is not a cursor this API returned"))?,
    };
    let items: Vec<PaymentView> = match params.status.as_deref() {
        Some("pending") => ledger::batches::pending_lines(&state.pool, batch.id, after, limit)
            .await?
            .into_iter()
            .map(|line| PaymentView {
                line,
                id: payment_id(batch.id, line as u32),
                status: "pending",
                reason: None,
                from_account: None,
                to_account: None,
                amount: None,
                currency: None,
                reference: None,
            })
            .collect(),
        status @ (None | Some("committed") | Some("rejected")) => {
            ledger::batches::payments(&state.pool, batch.id, status, after, limit)
                .await?
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
                .collect()
        }
        Some(_) => {
            return Err(ApiError::field(
                "status",
                "must be pending, committed or rejected",
            ));
        }
    };
    let next_cursor = (items.len() as i64 == limit)
        .then(|| items.last().map(|p| p.line.to_string()))
        .flatten();
    Ok(Json(Page { items, next_cursor }))
}
