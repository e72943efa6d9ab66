//! The statement's query parameters and its streamed body, as JSON or CSV.
//!
//! The body is written while the ledger's rows arrive (see
//! `ledger::statements`): the JSON's fields around `entries` first, then
//! one entry at a time, so a year of entries never sits in memory. If the
//! database fails half-way the body is cut off with an error (the client
//! sees a broken transfer, never a shorter statement that looks complete).

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use ledger::accounts::AccountRow;
use ledger::statements::{Statement, StatementRow, Summary};
use shared::messages::format_money;
use shared::statement::{self as view, StatementEntryView, StatementView};
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use crate::error::ApiError;

/// The longest statement range: a year, leap day included. Bounds one
/// request's work on the database.
pub const RANGE_DAYS_MAX: i64 = 366;
/// Rows written into one chunk of the body when they are already waiting.
const ROWS_PER_CHUNK_MAX: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

impl Format {
    /// `format=json|csv` if given, else CSV when the client accepts
    /// `text/csv`, else JSON.
    pub fn choose(param: Option<&str>, headers: &HeaderMap) -> Result<Self, ApiError> {
        match param.filter(|p| !p.is_empty()) {
            Some("json") => Ok(Self::Json),
            Some("csv") => Ok(Self::Csv),
            Some(_) => Err(ApiError::BadParameter {
                param: "format",
                message: "must be `json` or `csv`".into(),
            }),
            None => {
                let accept = headers
                    .get(header::ACCEPT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                Ok(match accept.contains("text/csv") {
                    true => Self::Csv,
                    false => Self::Json,
                })
            }
        }
    }
}

/// An RFC 3339 moment from query parameter `param`. A `+` of an offset
/// that arrived unencoded reads as a space; it is taken back.
pub fn moment(param: &'static str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|e| match text.contains(' ') {
            true => DateTime::parse_from_rfc3339(&text.replace(' ', "+")),
            false => Err(e),
        })
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ApiError::BadParameter {
            param,
            message: "must be an RFC 3339 date-time, e.g. 2026-11-30T00:00:00Z".into(),
        })
}

/// The statement's range: both given, `from` before `to`, at most
/// [`RANGE_DAYS_MAX`] days.
pub fn range(
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let required = |param| ApiError::BadParameter {
        param,
        message: "is required".into(),
    };
    let from = moment("from", from.ok_or_else(|| required("from"))?)?;
    let to = moment("to", to.ok_or_else(|| required("to"))?)?;
    if from >= to {
        return Err(ApiError::BadParameter {
            param: "to",
            message: "must be after `from`".into(),
        });
    }
    if to - from > TimeDelta::days(RANGE_DAYS_MAX) {
        return Err(ApiError::BadParameter {
            param: "to",
            message: format!("must be at most {RANGE_DAYS_MAX} days after `from`"),
        });
    }
    Ok((from, to))
}

/// Writes rows in one format.
struct Encoder {
    format: Format,
    currency: String,
    /// Whether a row was written yet (JSON separates rows with commas).
    started: bool,
}

impl Encoder {
    fn row(&mut self, row: StatementRow, out: &mut String) {
        let money = |v| format_money(v, &self.currency);
        match self.format {
            Format::Json => {
                let entry = StatementEntryView {
                    entry_id: row.entry_id,
                    transfer_id: row.transfer_id,
                    created_at: row.created_at,
                    amount: money(row.amount),
                    running_balance: money(row.running_balance),
                    counterparty_account: row.counterparty_account,
                    reference: row.reference,
                };
                if self.started {
                    out.push(',');
                }
                // Serializing these plain fields cannot fail.
                out.push_str(&serde_json::to_string(&entry).unwrap_or_default());
            }
            Format::Csv => {
                let fields = [
                    row.entry_id.to_string(),
                    row.transfer_id.to_string(),
                    row.created_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                    money(row.amount),
                    money(row.running_balance),
                    row.counterparty_account
                        .map(|a| a.to_string())
                        .unwrap_or_default(),
                    csv_field(row.reference.as_deref().unwrap_or("")),
                ];
                out.push_str(&fields.join(","));
                out.push_str("\r\n");
            }
        }
        self.started = true;
    }
}

/// A CSV field quoted when it must be (RFC 4180). Text a spreadsheet would
/// run as a formula (`=`, `+`, `-`, `@` first) gets a leading `'`: a
/// reference is written by whoever sent the money.
fn csv_field(text: &str) -> String {
    let text = match text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        true => format!("'{text}"),
        false => text.to_owned(),
    };
    match text.contains([',', '"', '\n', '\r']) {
        true => format!("\"{}\"", text.replace('"', "\"\"")),
        false => text,
    }
}

/// The body: `head`, the rows as they come, then `tail`. `slot` is held
/// until the body is dropped (read to the end, or the client went away).
fn stream(
    head: String,
    rows: mpsc::Receiver<Result<StatementRow, ledger::LedgerError>>,
    encoder: Encoder,
    tail: &'static str,
    slot: OwnedSemaphorePermit,
) -> Body {
    // (rows, encoder, head not yet sent, finished); the permit rides along.
    let state = (rows, (encoder, slot), Some(head), false);
    let chunks = futures::stream::unfold(
        state,
        move |(mut rows, (mut enc, slot), head, done)| async move {
            if done {
                return None;
            }
            if let Some(head) = head {
                return Some((Ok(Bytes::from(head)), (rows, (enc, slot), None, false)));
            }
            let mut out = String::new();
            let mut next = rows.recv().await;
            let mut written = 0;
            loop {
                match next {
                    Some(Ok(row)) => enc.row(row, &mut out),
                    Some(Err(e)) => {
                        tracing::error!(error = %e, "statement cut off");
                        let cut = std::io::Error::other("statement read failed");
                        return Some((Err(cut), (rows, (enc, slot), None, true)));
                    }
                    None => {
                        out.push_str(tail);
                        return Some((Ok(Bytes::from(out)), (rows, (enc, slot), None, true)));
                    }
                }
                written += 1;
                if written == ROWS_PER_CHUNK_MAX {
                    break;
                }
                match rows.try_recv() {
                    Ok(more) => next = Some(more),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => next = None,
                }
            }
            Some((Ok(Bytes::from(out)), (rows, (enc, slot), None, false)))
        },
    );
    Body::from_stream(chunks)
}

/// The statement's figures as one would read them on paper.
fn figures(s: &Summary, currency: &str) -> [String; 4] {
    [s.opening, s.closing(), s.debits, s.credits].map(|v| format_money(v, currency))
}

/// The streamed response for `statement` of `account`.
pub fn response(
    account: &AccountRow,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    format: Format,
    statement: Statement,
    slot: OwnedSemaphorePermit,
) -> Response {
    let [opening, closing, debits, credits] = figures(&statement.summary, &account.currency);
    let encoder = Encoder {
        format,
        currency: account.currency.clone(),
        started: false,
    };
    match format {
        Format::Json => {
            let head = StatementView {
                account_id: account.id,
                currency: account.currency.clone(),
                from,
                to,
                opening_balance: opening,
                closing_balance: closing,
                total_debits: debits,
                total_credits: credits,
                entry_count: statement.summary.entry_count,
                entries: vec![],
            };
            // `entries` is the last field: cut its `[]}` and stream it.
            let head = serde_json::to_string(&head).unwrap_or_default();
            let Some(head) = head.strip_suffix("]}") else {
                return ApiError::Internal("statement head has no entries".into()).into_response();
            };
            let body = stream(head.to_owned(), statement.rows, encoder, "]}", slot);
            let mut response = (StatusCode::OK, body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Format::Csv => {
            let head = format!("{}\r\n", view::CSV_HEADER);
            let body = stream(head, statement.rows, encoder, "", slot);
            let mut response = (StatusCode::OK, body).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            let name = format!(
                "attachment; filename=\"statement-{}-{}-{}.csv\"",
                account.id,
                from.format("%Y-%m-%d"),
                to.format("%Y-%m-%d")
            );
            for (name, value) in [
                (header::CONTENT_DISPOSITION.as_str(), name),
                (view::HEADER_OPENING, opening),
                (view::HEADER_CLOSING, closing),
                (view::HEADER_DEBITS, debits),
                (view::HEADER_CREDITS, credits),
            ] {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert(HeaderName::from_static(name), value);
                }
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("rent"), "rent");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=1+1"), "'=1+1");
    }

    #[test]
    fn ranges_are_checked() {
        assert!(range(Some("2026-01-01T00:00:00Z"), Some("2026-02-01T00:00:00Z")).is_ok());
        let param = |r: Result<_, ApiError>| match r {
            Err(ApiError::BadParameter { param, .. }) => param,
            _ => "ok",
        };
        assert_eq!(param(range(None, Some("2026-02-01T00:00:00Z"))), "from");
        assert_eq!(
            param(range(Some("2026-01-01"), Some("2026-02-01T00:00:00Z"))),
            "from"
        );
        assert_eq!(
            param(range(
                Some("2026-02-01T00:00:00Z"),
                Some("2026-01-01T00:00:00Z")
            )),
            "to"
        );
        assert_eq!(
            param(range(
                Some("2025-01-01T00:00:00Z"),
                Some("2026-02-01T00:00:00Z")
            )),
            "to"
        );
        // An unencoded `+` arrives as a space.
        assert!(moment("as_of", "2026-01-01T00:00:00 01:00").is_ok());
    }
}
