//! `GET /v1/accounts/{id}/balance?as_of=` and
//! `GET /v1/accounts/{id}/statement?from=&to=&format=`: the account's
//! history, from its entries.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::Utc;
use serde::Deserialize;
use shared::messages::format_money;
use shared::statement::{BalanceView, StatementView};

use crate::account_access::visible;
use crate::error::ApiError;
use crate::extract::{Caller, PathId};
use crate::page;
use crate::responses as r;
use crate::state::SharedState;
use crate::statement_body::{self, Format};

#[derive(Debug, Deserialize)]
pub struct BalanceParams {
    as_of: Option<String>,
}

/// The balance at a moment, from the entries (their owner, ops).
#[utoipa::path(
    get,
    path = "/v1/accounts/{id}/balance",
    operation_id = "getAccountBalanceAsOf",
    tag = "accounts",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "Account id"),
        ("as_of" = Option<String>, Query, format = DateTime, description = "RFC 3339 moment (default: now); entries created at or before it count"),
    ),
    responses(
        (status = 200, description = "The balance at `as_of`", body = BalanceView),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 404, response = r::NotFound),
        (status = 500, response = r::Internal),
    )
)]
pub async fn balance(
    State(state): State<SharedState>,
    caller: Caller,
    PathId(id): PathId,
    query: Result<Query<BalanceParams>, QueryRejection>,
) -> Result<Json<BalanceView>, ApiError> {
    let params = page::query(query)?;
    let as_of = match params.as_of.as_deref().filter(|t| !t.is_empty()) {
        Some(text) => statement_body::moment("as_of", text)?,
        None => Utc::now(),
    };
    let account = visible(&state, caller, &id).await?;
    let balance = ledger::statements::balance_as_of(&state.pool, account.id, as_of).await?;
    Ok(Json(BalanceView {
        account_id: account.id,
        balance: format_money(balance, &account.currency),
        currency: account.currency,
        as_of,
    }))
}

#[derive(Debug, Deserialize)]
pub struct StatementParams {
    from: Option<String>,
    to: Option<String>,
    format: Option<String>,
}

/// The statement from `from` to `to` (both included): opening balance,
/// every entry with the running balance, closing balance and totals.
/// Streamed, as JSON or (with `format=csv` or `Accept: text/csv`) CSV.
#[utoipa::path(
    get,
    path = "/v1/accounts/{id}/statement",
    operation_id = "getAccountStatement",
    tag = "accounts",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "Account id"),
        ("from" = String, Query, format = DateTime, description = "RFC 3339 start (included)"),
        ("to" = String, Query, format = DateTime, description = "RFC 3339 end (included); after `from`, at most 366 days later"),
        ("format" = Option<String>, Query, description = "`json` (default) or `csv`; without it `Accept: text/csv` chooses CSV"),
    ),
    responses(
        (status = 200, description = "The statement. As CSV: a header line, one line per entry, the figures in headers",
            content((StatementView = "application/json"), (String = "text/csv")),
            headers(
                ("Bank-Opening-Balance" = String, description = "CSV only: the balance just before `from`"),
                ("Bank-Closing-Balance" = String, description = "CSV only: the balance at `to`"),
                ("Bank-Total-Debits" = String, description = "CSV only: the debits' sum, positive"),
                ("Bank-Total-Credits" = String, description = "CSV only: the credits' sum"),
                ("Content-Disposition" = String, description = "CSV only: `attachment; filename=\"statement-<account>-<from>-<to>.csv\"`"),
            )),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 404, response = r::NotFound),
        (status = 500, response = r::Internal),
    )
)]
pub async fn statement(
    State(state): State<SharedState>,
    caller: Caller,
    PathId(id): PathId,
    headers: HeaderMap,
    query: Result<Query<StatementParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let params = page::query(query)?;
    let format = Format::choose(params.format.as_deref(), &headers)?;
    let (from, to) = statement_body::range(params.from.as_deref(), params.to.as_deref())?;
    let account = visible(&state, caller, &id).await?;
    let slot = state
        .statement_slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::TooMany("too many statements are being read at once; retry shortly".into())
        })?;
    let statement = ledger::statements::open(&state.pool, account.id, from, to).await?;
    Ok(statement_body::response(
        &account, from, to, format, statement, slot,
    ))
}
