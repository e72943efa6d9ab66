//! `POST /v1/transfers`, `GET /v1/transfers/{id}`, `GET /v1/transfers`.
//!
//! Thin adapters: the POST validates the body (`shared::transfer_body`),
//! audits, and hands the order to `submit_transfer`; the reads ask the
//! ledger (and the queue, for a transfer not applied yet).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use shared::hold::{Op, ReversalSummary};
use shared::messages::{TransferView, format_money};
use shared::transfer::{TransferStatus, transfer_id};
use shared::transfer_body::{TransferBody, Wording, validate};

use ledger::audit::Record;

use crate::audit;
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, PathId, idempotency_key, parse_transfer_id};
use crate::guard::RequestMeta;
use crate::page::{self, Page, PageParams};
use crate::publish::{self, Found};
use crate::responses as r;
use crate::state::SharedState;
use crate::submit_transfer;

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
    state
        .audit
        .record(meta.stamp(audit::outcome(audit, &result)));
    result
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
    let order = validate(&body, Wording::Api, &mut errors);
    let (Ok(key), Some(order)) = (key, order) else {
        return Err(ApiError::Validation(errors));
    };
    audit.detail = serde_json::json!({
        "from_account": order.from_account.to_string(),
        "to_account": order.to_account.to_string(),
        "amount": shared::messages::format_money(order.amount.value(), order.currency.code()),
        "currency": order.currency.code(),
    });
    submit_transfer::submit(state, caller, &key, order).await
}

/// A transfer the caller sent (pending ones included) or received (once
/// committed: a refused transfer is the payer's business), any for ops and
/// reversers; a committed original lists its reversals.
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
    let id = parse_transfer_id(&id)?;
    let found = publish::find(&state, id, || ledger::transfers::get(&state.pool, id)).await?;
    if let Found::Queued(cmd) = &found
        && matches!(cmd.op, Op::Transfer | Op::Reversal)
        && caller.may_read(cmd.owner)
    {
        return Ok(Json(cmd.pending_view()));
    }
    if let Found::Stored((row, payee)) = found {
        // A reversal's payer (the original's payee) did not ask for it but sees it.
        let payer = if row.reverses.is_some() {
            let [from] = state
                .accounts
                .lookup(&state.pool, [row.from_account])
                .await?;
            from.map(|a| a.owner_id)
        } else {
            None
        };
        if caller.may_read(row.owner_id) || payee == Some(caller.id) || payer == Some(caller.id) {
            let mut view = row.view();
            if row.reverses.is_none() && row.status == TransferStatus::Committed.as_str() {
                let reversals = ledger::transfers::reversals_of(&state.pool, id).await?;
                let reversed: rust_decimal::Decimal = reversals
                    .iter()
                    .filter(|t| t.status == TransferStatus::Committed.as_str())
                    .map(|t| t.amount)
                    .sum();
                view.reversed_amount = Some(format_money(reversed, &row.currency));
                view.reversals = Some(
                    reversals
                        .iter()
                        .map(|t| ReversalSummary {
                            id: t.id,
                            amount: format_money(t.amount, &t.currency),
                            status: TransferStatus::parse(&t.status)
                                .unwrap_or(TransferStatus::Rejected),
                            created_at: t.created_at,
                        })
                        .collect(),
                );
            }
            return Ok(Json(view));
        }
    }
    Err(ApiError::NotFound(format!(
        "no transfer {id} visible to you"
    )))
}

/// The caller's processed transfers, sent and received (committed ones),
/// newest first.
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
    let cursor = page::keyset_cursor(params.cursor())?;
    let rows = ledger::transfers::list_for_user(&state.pool, caller.id, limit, cursor).await?;
    let page = Page::of(rows, limit, |r| {
        ledger::transfers::Cursor {
            created_at: r.created_at,
            id: r.id,
        }
        .encode()
    });
    Ok(Json(Page {
        items: page.items.iter().map(|r| r.view()).collect(),
        next_cursor: page.next_cursor,
    }))
}
