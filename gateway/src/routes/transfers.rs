//! `POST /v1/transfers`, `GET /v1/transfers/{id}`, `GET /v1/transfers`.
//!
//! The POST path: validate → known already? (idempotent replay) → account
//! checks from the cache → publish with `Nats-Msg-Id` = transfer id and
//! "no earlier message on this transfer's subject" → 202 once JetStream acked.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use shared::messages::{SCHEMA_VERSION, TransferCommand, TransferView};
use shared::money::{Amount, Currency};
use shared::problem::FieldError;
use shared::transfer::{IdempotencyKey, Reference, TransferOrder, transfer_id};
use utoipa::ToSchema;
use uuid::Uuid;

use ledger::audit::Record;

use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, PathId, idempotency_key};
use crate::guard::RequestMeta;
use crate::openapi::responses as r;
use crate::publish::{self, Published};
use crate::state::SharedState;

/// The wire form of a transfer request. Every field is optional here so that
/// a missing one is reported by name, with the others, in one response; the
/// schema says what a valid request holds.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = TransferRequest, example = json!({
    "from_account": "a11ce000-0000-4000-8000-000000000001",
    "to_account": "b0b00000-0000-4000-8000-000000000001",
    "amount": "12.50",
    "currency": "EUR",
    "reference": "lunch"
}))]
pub struct TransferBody {
    /// One of the caller's accounts.
    #[schema(required = true, value_type = String, format = Uuid)]
    pub from_account: Option<String>,
    /// Any existing account in the same currency, other than `from_account`.
    #[schema(required = true, value_type = String, format = Uuid)]
    pub to_account: Option<String>,
    /// A positive decimal string with at most the currency's minor-unit
    /// decimals (EUR 2, JPY 0, KWD 3), at most 1,000,000,000. Never a JSON number.
    #[schema(required = true, value_type = String, pattern = r"^[0-9]+(\.[0-9]+)?$", example = "12.50")]
    pub amount: Option<serde_json::Value>,
    /// An ISO 4217 code.
    #[schema(required = true, value_type = String, pattern = "^[A-Z]{3}$", example = "EUR")]
    pub currency: Option<String>,
    /// Free text shown to both parties: at most 140 characters, no control characters.
    #[schema(value_type = String, max_length = 140, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub reference: Option<String>,
}

fn required<'a>(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: &'a Option<String>,
) -> Option<&'a str> {
    match value.as_deref() {
        Some(v) => Some(v),
        None => {
            errors.push(FieldError {
                field: field.into(),
                message: "is required".into(),
                line: None,
            });
            None
        }
    }
}

fn push(errors: &mut Vec<FieldError>, field: &str, message: impl Into<String>) {
    errors.push(FieldError {
        field: field.into(),
        message: message.into(),
        line: None,
    });
}

fn account_id(errors: &mut Vec<FieldError>, field: &str, value: &Option<String>) -> Option<Uuid> {
    let text = required(errors, field, value)?;
    match Uuid::parse_str(text) {
        Ok(id) => Some(id),
        Err(_) => {
            push(errors, field, "must be an account id (a UUID)");
            None
        }
    }
}

/// Everything the gateway can check without looking anything up.
pub fn validate(body: &TransferBody, errors: &mut Vec<FieldError>) -> Option<TransferOrder> {
    let from = account_id(errors, "from_account", &body.from_account);
    let to = account_id(errors, "to_account", &body.to_account);
    let currency = required(errors, "currency", &body.currency).and_then(|c| {
        Currency::parse(c)
            .map_err(|e| push(errors, "currency", e.to_string()))
            .ok()
    });
    let amount = match &body.amount {
        None => {
            push(errors, "amount", "is required");
            None
        }
        Some(serde_json::Value::String(text)) => currency.and_then(|c| {
            Amount::parse(text, c)
                .map_err(|e| push(errors, "amount", e.to_string()))
                .ok()
        }),
        Some(_) => {
            push(
                errors,
                "amount",
                "must be a decimal string such as \"12.34\", not a JSON number",
            );
            None
        }
    };
    let reference = match &body.reference {
        None => None,
        Some(text) => match Reference::parse(text) {
            Ok(r) => Some(r),
            Err(e) => {
                push(errors, "reference", e.to_string());
                return None;
            }
        },
    };
    if let (Some(f), Some(t)) = (from, to)
        && f == t
    {
        push(errors, "to_account", "must differ from from_account");
    }
    if !errors.is_empty() {
        return None;
    }
    Some(TransferOrder {
        from_account: from?,
        to_account: to?,
        amount: amount?,
        currency: currency?,
        reference,
    })
}

fn transfer_response(status: StatusCode, view: &TransferView, replayed: bool) -> Response {
    let mut response = (status, Json(view)).into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/transfers/{}", view.id)) {
        headers.insert(header::LOCATION, location);
    }
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// What is already known about transfer `id` with this request's fingerprint.
async fn known(
    state: &SharedState,
    id: Uuid,
    fingerprint: &[u8; 32],
    look_in_queue: bool,
) -> Result<Option<Response>, ApiError> {
    if let Some(row) = state.lookups.get(id).await? {
        if row.fingerprint.as_slice() != fingerprint {
            return Err(ApiError::KeyReused);
        }
        return Ok(Some(transfer_response(
            StatusCode::ACCEPTED,
            &row.view(),
            true,
        )));
    }
    if look_in_queue && let Some(cmd) = publish::pending_command(state, id).await? {
        if &cmd.fingerprint() != fingerprint {
            return Err(ApiError::KeyReused);
        }
        return Ok(Some(transfer_response(
            StatusCode::ACCEPTED,
            &cmd.pending_view(),
            true,
        )));
    }
    Ok(None)
}

/// Queues a transfer. `202` only after JetStream has stored it; the same
/// Idempotency-Key with the same body answers with the same transfer
/// (`Idempotent-Replayed: true`), with another body `422`.
#[utoipa::path(
    post,
    path = "/v1/transfers",
    operation_id = "createTransfer",
    tag = "transfers",
    security(("bearer" = [])),
    params(
        ("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
            description = "The client's name for this transfer (1-255 visible ASCII characters): a retry with the same key moves money once"),
    ),
    request_body = TransferBody,
    responses(
        (status = 202, description = "Queued (or, replayed, its current state)", body = TransferView,
            headers(
                ("Location" = String, description = "`/v1/transfers/{id}`"),
                ("Idempotent-Replayed" = String, description = "`true` when this answers an earlier request with the same key"),
            )),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 409, response = r::Conflict),
        (status = 413, response = r::TooLarge),
        (status = 422, response = r::Unprocessable),
        (status = 500, response = r::Internal),
    )
)]
pub async fn create(
    State(state): State<SharedState>,
    caller: Caller,
    meta: RequestMeta,
    headers: HeaderMap,
    body: Result<JsonBody<TransferBody>, ApiError>,
) -> Result<Response, ApiError> {
    let mut audit = Record::new("transfer.submit", "refused")
        .actor(caller.id.to_string())
        .role(caller.role.as_str());
    let result = create_checked(&state, caller, &headers, body, &mut audit).await;
    state.audit.record(meta.stamp(outcome(audit, &result)));
    result
}

/// The audit record's outcome from the response: `accepted`, `replayed`,
/// `refused` (4xx, with status and problem type) or `error` (5xx).
pub fn outcome(mut record: Record, result: &Result<Response, ApiError>) -> Record {
    let (outcome, problem) = match result {
        Ok(r) if r.headers().contains_key("idempotent-replayed") => ("replayed", None),
        Ok(_) => ("accepted", None),
        Err(e) => {
            let (status, slug) = e.summary();
            let outcome = if status >= 500 { "error" } else { "refused" };
            (outcome, Some((status, slug)))
        }
    };
    record.outcome = outcome.to_owned();
    if let (Some((status, slug)), serde_json::Value::Object(map)) = (problem, &mut record.detail) {
        map.insert("status".into(), status.into());
        map.insert("problem".into(), slug.into());
    }
    record
}

async fn create_checked(
    state: &SharedState,
    caller: Caller,
    headers: &HeaderMap,
    body: Result<JsonBody<TransferBody>, ApiError>,
    audit: &mut Record,
) -> Result<Response, ApiError> {
    caller.require_mover()?;
    let JsonBody(body) = body?;
    let mut errors = Vec::new();
    let key = idempotency_key(headers).map_err(|e| {
        if let ApiError::Validation(mut v) = e {
            errors.append(&mut v);
        }
    });
    if let Ok(key) = &key {
        audit.target = Some(transfer_id(caller.id, key).to_string());
    }
    let order = validate(&body, &mut errors);
    let (Ok(key), Some(order)) = (key, order) else {
        return Err(ApiError::Validation(errors));
    };
    audit.detail = serde_json::json!({
        "from_account": order.from_account.to_string(),
        "to_account": order.to_account.to_string(),
        "amount": shared::messages::format_money(order.amount.value(), order.currency.code()),
        "currency": order.currency.code(),
    });
    submit(state, caller, &key, order).await
}

async fn submit(
    state: &SharedState,
    caller: Caller,
    key: &IdempotencyKey,
    order: TransferOrder,
) -> Result<Response, ApiError> {
    let id = transfer_id(caller.id, key);
    let fingerprint = order.fingerprint();
    // A retry after the transfer was applied (JetStream's duplicate window
    // may be long gone): answer from the ledger.
    if let Some(response) = known(state, id, &fingerprint, false).await? {
        return Ok(response);
    }
    check_accounts(state, caller, &order).await?;

    let command = TransferCommand {
        v: SCHEMA_VERSION,
        id,
        owner: caller.id,
        idempotency_key: key.as_str().to_owned(),
        from_account: order.from_account,
        to_account: order.to_account,
        amount: order.amount.value(),
        currency: order.currency.code().to_owned(),
        reference: order.reference.as_ref().map(|r| r.as_str().to_owned()),
        accepted_at: micros_now(),
        batch: None,
    };
    match publish::transfer(state, &command).await? {
        Published::New => Ok(transfer_response(
            StatusCode::ACCEPTED,
            &command.pending_view(),
            false,
        )),
        Published::AlreadyThere => {
            // A concurrent or earlier request with this key: wait briefly for
            // it to be visible in the queue or the ledger, then compare bodies.
            for attempt in 0..30u64 {
                if let Some(response) = known(state, id, &fingerprint, true).await? {
                    return Ok(response);
                }
                tokio::time::sleep(Duration::from_millis(20 + attempt * 10)).await;
            }
            Err(ApiError::InProgress)
        }
    }
}

/// Ownership and currency, from the immutable-account cache.
async fn check_accounts(
    state: &SharedState,
    caller: Caller,
    order: &TransferOrder,
) -> Result<(), ApiError> {
    let [from, to] = state
        .accounts
        .lookup(&state.pool, [order.from_account, order.to_account])
        .await?;
    let currency = order.currency.code();
    let from = match from {
        Some(a) if a.owner_id == caller.id => a,
        // Someone else's account and an unknown one look the same: no probing.
        _ => {
            return Err(ApiError::Forbidden(
                "from_account is not one of your accounts",
            ));
        }
    };
    let Some(to) = to else {
        return Err(ApiError::Unprocessable {
            slug: "unknown-account",
            title: "Unknown destination account",
            detail: "to_account does not exist".into(),
            field: "to_account",
        });
    };
    if from.currency.as_str() != currency {
        return Err(ApiError::Unprocessable {
            slug: "currency-mismatch",
            title: "Currency mismatch",
            detail: format!(
                "from_account holds {}, not {currency}",
                from.currency.as_str()
            ),
            field: "currency",
        });
    }
    if to.currency.as_str() != currency {
        return Err(ApiError::Unprocessable {
            slug: "currency-mismatch",
            title: "Currency mismatch",
            detail: format!("to_account holds {}, not {currency}", to.currency.as_str()),
            field: "to_account",
        });
    }
    Ok(())
}

/// Now, at PostgreSQL's precision, so the pending view and the stored row agree.
fn micros_now() -> chrono::DateTime<Utc> {
    let now = Utc::now();
    chrono::DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

pub fn parse_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| ApiError::NotFound(format!("no transfer with id {text:?}")))
}

/// A transfer the caller sent or received (ops: any), pending ones included.
#[utoipa::path(
    get,
    path = "/v1/transfers/{id}",
    operation_id = "getTransfer",
    tag = "transfers",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "Transfer id")),
    responses(
        (status = 200, description = "The transfer", body = TransferView),
        (status = 401, response = r::Unauthorized),
        (status = 404, response = r::NotFound),
        (status = 500, response = r::Internal),
    )
)]
pub async fn get(
    State(state): State<SharedState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<TransferView>, ApiError> {
    let id = parse_id(&id)?;
    if let Some((row, payee)) = ledger::transfers::get(&state.pool, id).await? {
        if caller.may_read(row.owner_id) || payee == Some(caller.id) {
            return Ok(Json(row.view()));
        }
    } else if let Some(cmd) = publish::pending_command(&state, id).await?
        && caller.may_read(cmd.owner)
    {
        return Ok(Json(cmd.pending_view()));
    }
    Err(ApiError::NotFound(format!(
        "no transfer {id} visible to you"
    )))
}

pub const PAGE_DEFAULT: i64 = 50;
pub const PAGE_MAX: i64 = 200;

#[derive(Debug, Deserialize)]
pub struct PageParams {
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

impl PageParams {
    pub fn from_query(q: Result<Query<PageParams>, QueryRejection>) -> Result<Self, ApiError> {
        q.map(|Query(p)| p)
            .map_err(|e| ApiError::MalformedBody(format!("bad query string: {}", e.body_text())))
    }

    pub fn limit(&self) -> Result<i64, ApiError> {
        match &self.limit {
            None => Ok(PAGE_DEFAULT),
            Some(text) => match text.parse::<i64>() {
                Ok(n) if (1..=PAGE_MAX).contains(&n) => Ok(n),
                _ => Err(ApiError::field(
                    "limit",
                    format!("must be a whole number from 1 to {PAGE_MAX}"),
                )),
            },
        }
    }
}

/// One page of a list, in the order the endpoint names.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// The caller's processed transfers, sent and received, newest first.
#[utoipa::path(
    get,
    path = "/v1/transfers",
    operation_id = "listTransfers",
    tag = "transfers",
    security(("bearer" = [])),
    params(
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "Page size (default 50)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of transfers", body = Page<TransferView>),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 422, response = r::Unprocessable),
        (status = 500, response = r::Internal),
    )
)]
pub async fn list(
    State(state): State<SharedState>,
    caller: Caller,
    query: Result<Query<PageParams>, QueryRejection>,
) -> Result<Json<Page<TransferView>>, ApiError> {
    let params = PageParams::from_query(query)?;
    let limit = params.limit()?;
    let cursor = match params.cursor.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            ledger::transfers::Cursor::decode(text)
                .ok_or_else(|| ApiError::field("cursor", "is not a cursor this API returned"))?,
        ),
    };
    let rows = ledger::transfers::list_for_user(&state.pool, caller.id, limit, cursor).await?;
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| rows.last())
        .flatten()
        .map(|r| {
            ledger::transfers::Cursor {
                created_at: r.created_at,
                id: r.id,
            }
            .encode()
        });
    Ok(Json(Page {
        items: rows.iter().map(|r| r.view()).collect(),
        next_cursor,
    }))
}
