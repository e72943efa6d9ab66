//! `POST /v1/holds`, `POST /v1/holds/{id}/capture`, `POST /v1/holds/{id}/void`,
//! `GET /v1/holds/{id}`, `GET /v1/holds`.
//!
//! Thin adapters: bodies validated here, the pipeline in `submit_hold`.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use ledger::audit::Record;
use serde::{Deserialize, Serialize};
use shared::hold::{HOLD_EXPIRES_IN_SECONDS_MAX, HoldStatus, HoldView, Op, hold_id};
use shared::problem::FieldError;
use shared::transfer_body::{TransferBody, Wording, validate};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit;
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, PathId, idempotency_key};
use crate::guard::RequestMeta;
use crate::page::{PAGE_DEFAULT, PAGE_MAX};
use crate::responses as r;
use crate::state::SharedState;
use crate::submit_hold;

/// A new hold: a transfer's fields and how long the money stays reserved.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct HoldBody {
    #[schema(required = true, value_type = String, format = Uuid)]
    pub from_account: Option<String>,
    #[schema(required = true, value_type = String, format = Uuid)]
    pub to_account: Option<String>,
    /// A positive decimal string (the currency's minor units at most).
    #[schema(required = true, value_type = String, pattern = r"^[0-9]+(\.[0-9]+)?$", example = "12.50")]
    pub amount: Option<serde_json::Value>,
    #[schema(required = true, value_type = String, pattern = "^[A-Z]{3}$", example = "EUR")]
    pub currency: Option<String>,
    #[schema(value_type = String, max_length = 140)]
    pub reference: Option<String>,
    /// 1 to 604800 (a week).
    #[schema(required = true, value_type = i64, minimum = 1, maximum = 604800)]
    pub expires_in_seconds: Option<serde_json::Value>,
}

/// A capture: the amount to move (omitted: the whole hold).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CaptureBody {
    #[schema(value_type = String, pattern = r"^[0-9]+(\.[0-9]+)?$", example = "10.00")]
    pub amount: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HoldList {
    pub items: Vec<HoldView>,
}

#[derive(Debug, Deserialize)]
pub struct ListParams {
    pub account: Option<String>,
    pub status: Option<String>,
    pub limit: Option<String>,
}

fn seconds(value: &Option<serde_json::Value>, errors: &mut Vec<FieldError>) -> Option<u32> {
    let n = value.as_ref().and_then(serde_json::Value::as_u64);
    match n {
        Some(n) if (1..=u64::from(HOLD_EXPIRES_IN_SECONDS_MAX)).contains(&n) => {
            u32::try_from(n).ok()
        }
        _ => {
            errors.push(FieldError {
                field: "expires_in_seconds".into(),
                message: format!("must be a whole number from 1 to {HOLD_EXPIRES_IN_SECONDS_MAX}"),
                line: None,
            });
            None
        }
    }
}

/// Reserves money on one of the caller's accounts until captured, voided
/// or expired. `202` with status `requested` once queued.
#[utoipa::path(
    post,
    path = "/v1/holds",
    operation_id = "createHold",
    tag = "holds",
    security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
        description = "The client's name for this hold: a retry reserves once")),
    request_body = HoldBody,
    responses(
        (status = 202, description = "Queued (or, replayed, its current state)", body = HoldView),
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
    body: Result<JsonBody<HoldBody>, ApiError>,
) -> Result<Response, ApiError> {
    let mut record = Record::new("hold.submit", "refused")
        .actor(caller.id.to_string())
        .role(caller.role.as_str());
    let result = async {
        caller.require_mover()?;
        let JsonBody(body) = body?;
        let mut errors = Vec::new();
        let key = idempotency_key(&headers).map_err(|e| {
            if let ApiError::Validation(mut v) = e {
                errors.append(&mut v);
            }
        });
        let transfer = TransferBody {
            from_account: body.from_account.clone(),
            to_account: body.to_account.clone(),
            amount: body.amount.clone(),
            currency: body.currency.clone(),
            reference: body.reference.clone(),
        };
        let order = validate(&transfer, Wording::Api, &mut errors);
        let secs = seconds(&body.expires_in_seconds, &mut errors);
        let (Ok(key), Some(order), Some(secs)) = (key, order, secs) else {
            return Err(ApiError::Validation(errors));
        };
        record.target = Some(hold_id(caller.id, &key).to_string());
        submit_hold::create(&state, caller, &key, order, secs).await
    }
    .await;
    state
        .audit
        .record(meta.stamp(audit::outcome(record, &result)));
    result
}

/// Captures a pending hold (all of it, or less: the rest is released).
#[utoipa::path(
    post,
    path = "/v1/holds/{id}/capture",
    operation_id = "captureHold",
    tag = "holds",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "Hold id"),
        ("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
            description = "The client's name for this capture"),
    ),
    request_body = CaptureBody,
    responses(
        (status = 202, description = "Queued; the hold as stored now, with `action`", body = HoldView),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 404, response = r::NotFound),
        (status = 409, response = r::Conflict),
        (status = 413, response = r::TooLarge),
        (status = 422, response = r::Unprocessable),
        (status = 500, response = r::Internal),
    )
)]
pub async fn capture(
    State(state): State<SharedState>,
    caller: Caller,
    meta: RequestMeta,
    PathId(id): PathId,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    // No body at all captures the whole hold, like `{}`.
    let parsed = if body.is_empty() {
        Ok(CaptureBody::default())
    } else {
        serde_json::from_slice::<CaptureBody>(&body)
            .map_err(|e| ApiError::MalformedBody(e.to_string()))
    };
    let amount = parsed.and_then(|b| match b.amount {
        None => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::field("amount", "must be a decimal string")),
    });
    act(&state, caller, meta, &id, &headers, Op::HoldCapture, amount).await
}

/// Voids a pending hold: the money is released, nothing moves.
#[utoipa::path(
    post,
    path = "/v1/holds/{id}/void",
    operation_id = "voidHold",
    tag = "holds",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "Hold id"),
        ("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
            description = "The client's name for this void"),
    ),
    responses(
        (status = 202, description = "Queued; the hold as stored now, with `action`", body = HoldView),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::Forbidden),
        (status = 404, response = r::NotFound),
        (status = 409, response = r::Conflict),
        (status = 413, response = r::TooLarge),
        (status = 422, response = r::Unprocessable),
        (status = 500, response = r::Internal),
    )
)]
pub async fn void(
    State(state): State<SharedState>,
    caller: Caller,
    meta: RequestMeta,
    PathId(id): PathId,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    act(&state, caller, meta, &id, &headers, Op::HoldVoid, Ok(None)).await
}

async fn act(
    state: &SharedState,
    caller: Caller,
    meta: RequestMeta,
    id: &str,
    headers: &HeaderMap,
    op: Op,
    amount: Result<Option<String>, ApiError>,
) -> Result<Response, ApiError> {
    let action = if op == Op::HoldVoid {
        "hold.void"
    } else {
        "hold.capture"
    };
    let mut record = Record::new(action, "refused")
        .actor(caller.id.to_string())
        .role(caller.role.as_str());
    let result = async {
        caller.require_mover()?;
        let hold = Uuid::parse_str(id)
            .map_err(|_| ApiError::NotFound(format!("no hold with id {id:?}")))?;
        record.target = Some(hold.to_string());
        let key = idempotency_key(headers)?;
        let amount = amount?;
        submit_hold::act(state, caller, &key, hold, op, amount.as_deref()).await
    }
    .await;
    state
        .audit
        .record(meta.stamp(audit::outcome(record, &result)));
    result
}

/// A hold (its owner, the payee unless it was rejected, ops, reversers),
/// with its captures and voids.
#[utoipa::path(
    get,
    path = "/v1/holds/{id}",
    operation_id = "getHold",
    tag = "holds",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "Hold id")),
    responses(
        (status = 200, description = "The hold", body = HoldView),
        (status = 401, response = r::Unauthorized),
        (status = 404, response = r::NotFound),
        (status = 500, response = r::Internal),
    )
)]
pub async fn get(
    State(state): State<SharedState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<HoldView>, ApiError> {
    let id =
        Uuid::parse_str(&id).map_err(|_| ApiError::NotFound(format!("no hold with id {id:?}")))?;
    Ok(Json(submit_hold::visible(&state, caller, id).await?))
}

/// The holds on one account (either side; as payee, not the rejected
/// ones unless the caller is ops or a reverser), newest first.
#[utoipa::path(
    get,
    path = "/v1/holds",
    operation_id = "listHolds",
    tag = "holds",
    security(("bearer" = [])),
    params(
        ("account" = String, Query, format = Uuid, description = "An account the caller may read"),
        ("status" = Option<String>, Query, description = "pending, captured, voided, expired or rejected"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "At most (default 50)"),
    ),
    responses(
        (status = 200, description = "Holds, newest first", body = HoldList),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 404, response = r::NotFound),
        (status = 422, response = r::Unprocessable),
        (status = 500, response = r::Internal),
    )
)]
pub async fn list(
    State(state): State<SharedState>,
    caller: Caller,
    query: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<HoldList>, ApiError> {
    let Query(params) = query.map_err(|e| ApiError::MalformedBody(e.body_text()))?;
    let mut errors = Vec::new();
    let field = |f: &str, m: &str| FieldError {
        field: f.into(),
        message: m.into(),
        line: None,
    };
    let account = params
        .account
        .as_deref()
        .and_then(|a| Uuid::parse_str(a).ok());
    if account.is_none() {
        errors.push(field("account", "an account id is required"));
    }
    let status = match params.status.as_deref() {
        None => None,
        Some(s) => match HoldStatus::parse(s).filter(|s| *s != HoldStatus::Requested) {
            Some(s) => Some(s.as_str()),
            None => {
                errors.push(field(
                    "status",
                    "must be pending, captured, voided, expired or rejected",
                ));
                None
            }
        },
    };
    let limit = match params.limit.as_deref() {
        None => PAGE_DEFAULT,
        Some(text) => match text.parse::<i64>() {
            Ok(n) if (1..=PAGE_MAX).contains(&n) => n,
            _ => {
                errors.push(field("limit", "must be a whole number from 1 to 200"));
                PAGE_DEFAULT
            }
        },
    };
    let Some(account) = account.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let not_found = || ApiError::NotFound(format!("no account {account} visible to you"));
    match ledger::accounts::get(&state.pool, account).await? {
        Some(a) if caller.may_read(a.owner_id) => {}
        _ => return Err(not_found()),
    }
    let incoming = if caller.reads_all() {
        ledger::holds::Incoming::All
    } else {
        ledger::holds::Incoming::NotRejected
    };
    let rows =
        ledger::holds::list_for_account(&state.pool, account, status, incoming, limit).await?;
    Ok(Json(HoldList {
        items: rows.iter().map(|h| h.view()).collect(),
    }))
}
