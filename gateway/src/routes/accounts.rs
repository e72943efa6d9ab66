//! `GET /v1/accounts`, `GET /v1/accounts/{id}`, `GET /v1/accounts/{id}/entries`.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use shared::messages::{AccountView, EntryView};

use crate::account_access::visible;
use crate::error::ApiError;
use crate::extract::{Caller, PathId};
use crate::page::{self, Page, PageParams};
use crate::responses as r;
use crate::state::SharedState;

#[utoipa::path(
    get,
    path = "/v1/accounts",
    operation_id = "listAccounts",
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's accounts (none for ops)", body = Vec<AccountView>),
        (status = 401, response = r::Unauthorized),
        (status = 500, response = r::Internal),
    )
)]
pub async fn list(
    State(state): State<SharedState>,
    caller: Caller,
) -> Result<Json<Vec<AccountView>>, ApiError> {
    let rows = ledger::accounts::list_for_owner(&state.pool, caller.id).await?;
    Ok(Json(rows.iter().map(|a| a.view()).collect()))
}

#[utoipa::path(
    get,
    path = "/v1/accounts/{id}",
    operation_id = "getAccount",
    tag = "accounts",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "Account id")),
    responses(
        (status = 200, description = "The account (its owner or ops)", body = AccountView),
        (status = 401, response = r::Unauthorized),
        (status = 404, response = r::NotFound),
        (status = 500, response = r::Internal),
    )
)]
pub async fn get(
    State(state): State<SharedState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<AccountView>, ApiError> {
    Ok(Json(visible(&state, caller, &id).await?.view()))
}

/// The account's entries, newest first; `next_cursor` fetches the next page.
#[utoipa::path(
    get,
    path = "/v1/accounts/{id}/entries",
    operation_id = "listAccountEntries",
    tag = "accounts",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "Account id"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "Page size (default 50)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of entries", body = Page<EntryView>),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 404, response = r::NotFound),
        (status = 422, response = r::Unprocessable),
        (status = 500, response = r::Internal),
    )
)]
pub async fn entries(
    State(state): State<SharedState>,
    caller: Caller,
    PathId(id): PathId,
    query: Result<Query<PageParams>, QueryRejection>,
) -> Result<Json<Page<EntryView>>, ApiError> {
    let params = PageParams::from_query(query)?;
    let limit = params.limit()?;
    let before = page::keyset_cursor(params.cursor())?;
    let account = visible(&state, caller, &id).await?;
    let items = ledger::accounts::entries(&state.pool, &account, limit, before).await?;
    Ok(Json(Page::of(items, limit, |e| {
        ledger::transfers::Cursor {
            created_at: e.created_at,
            id: e.id,
        }
        .encode()
    })))
}
