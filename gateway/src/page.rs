//! Pagination of list endpoints: the `limit`/`cursor` query parameters and
//! the `{items, next_cursor}` page every list answers with.
//!
//! One module so every list reads its parameters and reports a bad one the
//! same way; the cursor's meaning (a timestamp and id, an entry id, a line)
//! is each list's own.

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;

/// Items per page when the client does not say.
pub const PAGE_DEFAULT: i64 = 50;
/// Most items per page: bounds one query's work and one response's size.
pub const PAGE_MAX: i64 = 200;

#[derive(Debug, Deserialize)]
pub struct PageParams {
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

impl PageParams {
    pub fn from_query(q: Result<Query<PageParams>, QueryRejection>) -> Result<Self, ApiError> {
        query(q)
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

    /// The cursor, if one was given (an empty one is none).
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref().filter(|c| !c.is_empty())
    }
}

/// The parameters of a query string, or a 400 saying why they cannot be read.
pub fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(p)| p)
        .map_err(|e| ApiError::MalformedBody(format!("bad query string: {}", e.body_text())))
}

/// A cursor the API does not recognise.
pub fn bad_cursor() -> ApiError {
    ApiError::field("cursor", "is not a cursor this API returned")
}

/// A `(created_at, id)` keyset cursor this API gave (a transfer's, an
/// entry's), or the error naming `cursor`.
pub fn keyset_cursor<I: std::fmt::Display + std::str::FromStr>(
    cursor: Option<&str>,
) -> Result<Option<ledger::transfers::Cursor<I>>, ApiError> {
    cursor
        .map(|text| ledger::transfers::Cursor::decode(text).ok_or_else(bad_cursor))
        .transpose()
}

/// A positive whole-number cursor (an id or a sequence), if one was given.
pub fn positive_cursor(cursor: Option<&str>) -> Result<Option<i64>, ApiError> {
    cursor
        .filter(|c| !c.is_empty())
        .map(|t| {
            t.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(bad_cursor)
        })
        .transpose()
}

/// One page of a list, in the order the endpoint names.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// `items`; a full page (`limit` items) names its last item's cursor.
    pub fn of(items: Vec<T>, limit: i64, cursor: impl Fn(&T) -> String) -> Self {
        let next_cursor = (items.len() as i64 == limit)
            .then(|| items.last().map(cursor))
            .flatten();
        Self { items, next_cursor }
    }
}
