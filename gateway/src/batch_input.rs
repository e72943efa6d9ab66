//! Reading a batch upload: CSV, NDJSON or JSON, streamed line by line and
//! validated as it arrives. Only the compact validated payments are kept,
//! never the raw file; reading stops at the first [`ERRORS_MAX`] errors.

use axum::body::Body;
use futures::StreamExt;
use shared::problem::FieldError;
use shared::transfer::TransferOrder;

use crate::error::ApiError;
use crate::routes::transfers::{TransferBody, validate};

/// Payments per batch.
pub const LINES_MAX: usize = 100_000;
/// Bytes per upload.
pub const BODY_MAX: usize = 32 * 1024 * 1024;
/// Errors reported before giving up on a file.
pub const ERRORS_MAX: usize = 20;
/// The CSV header (the `reference` column may be left out).
pub use shared::batch_file::{CSV_HEADER, csv_fields};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Ndjson,
    Json,
}

impl Format {
    pub fn from_content_type(ct: Option<&str>) -> Option<Self> {
        let ct = ct?.split(';').next()?.trim().to_ascii_lowercase();
        match ct.as_str() {
            "text/csv" => Some(Self::Csv),
            "application/x-ndjson" | "application/ndjson" | "application/jsonl" => {
                Some(Self::Ndjson)
            }
            "application/json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// One validated payment and its line: the physical 1-based line of the
/// upload for CSV and NDJSON (a CSV's header is line 1, so its first payment
/// is line 2), the array index + 1 for JSON. Errors use the same numbers.
#[derive(Debug, Clone)]
pub struct Payment {
    pub line: u32,
    pub order: TransferOrder,
}

fn line_error(line: u64, field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
        line: Some(line),
    }
}

struct Reader {
    format: Format,
    payments: Vec<Payment>,
    errors: Vec<FieldError>,
    /// Physical line number in the upload.
    physical: u64,
    header_seen: bool,
}

impl Reader {
    fn full(&self) -> bool {
        self.errors.len() >= ERRORS_MAX
    }

    fn add(&mut self, line: u64, body: &TransferBody) {
        let mut errs = Vec::new();
        match validate(body, &mut errs) {
            Some(order) if errs.is_empty() => {
                if self.payments.len() >= LINES_MAX {
                    self.errors.push(line_error(
                        line,
                        "line",
                        format!("a batch holds at most {LINES_MAX} payments"),
                    ));
                    return;
                }
                self.payments.push(Payment {
                    line: line as u32,
                    order,
                });
            }
            _ => self.errors.extend(errs.into_iter().map(|mut e| {
                e.line = Some(line);
                e
            })),
        }
    }

    fn line(&mut self, raw: &[u8]) {
        self.physical += 1;
        let Ok(text) = std::str::from_utf8(raw) else {
            self.errors
                .push(line_error(self.physical, "line", "is not valid UTF-8"));
            return;
        };
        let text = text.trim_end_matches('\r');
        if text.trim().is_empty() {
            return;
        }
        match self.format {
            Format::Csv => self.csv_line(text),
            Format::Ndjson => match serde_json::from_str::<TransferBody>(text) {
                Ok(body) => self.add(self.physical, &body),
                Err(e) => self.errors.push(line_error(
                    self.physical,
                    "line",
                    format!("not a JSON payment: {e}"),
                )),
            },
            Format::Json => {}
        }
    }

    fn csv_line(&mut self, text: &str) {
        let fields = match csv_fields(text) {
            Ok(f) => f,
            Err(e) => {
                self.errors.push(line_error(self.physical, "line", e));
                return;
            }
        };
        if !self.header_seen {
            self.header_seen = true;
            let header: Vec<&str> = fields.iter().map(|f| f.trim()).collect();
            let expected: Vec<&str> = CSV_HEADER.split(',').collect();
            if header != expected && header != expected[..4] {
                self.errors.push(line_error(
                    self.physical,
                    "header",
                    format!("the first line must be `{CSV_HEADER}`"),
                ));
            }
            return;
        }
        if fields.len() < 4 || fields.len() > 5 {
            self.errors.push(line_error(
                self.physical,
                "line",
                format!("expected 4 or 5 fields, found {}", fields.len()),
            ));
            return;
        }
        let body = TransferBody {
            from_account: Some(fields[0].trim().to_owned()),
            to_account: Some(fields[1].trim().to_owned()),
            amount: Some(serde_json::Value::String(fields[2].trim().to_owned())),
            currency: Some(fields[3].trim().to_owned()),
            reference: fields.get(4).filter(|r| !r.is_empty()).cloned(),
        };
        self.add(self.physical, &body);
    }
}

/// A batch as one JSON document (`application/json`); a payment's line
/// is its index + 1.
#[derive(serde::Deserialize, utoipa::ToSchema)]
pub struct JsonBatch {
    #[schema(min_items = 1, max_items = 100000)]
    pub payments: Vec<TransferBody>,
}

/// Reads and validates the whole upload. Any invalid line refuses the batch.
pub async fn read(body: Body, format: Format) -> Result<Vec<Payment>, ApiError> {
    let mut reader = Reader {
        format,
        payments: Vec::new(),
        errors: Vec::new(),
        physical: 0,
        header_seen: false,
    };
    let mut stream = body.into_data_stream();
    let mut pending: Vec<u8> = Vec::new();
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::MalformedBody(format!("upload interrupted: {e}")))?;
        total += chunk.len();
        if total > BODY_MAX {
            return Err(ApiError::TooLarge(format!(
                "a batch upload is at most {BODY_MAX} bytes"
            )));
        }
        pending.extend_from_slice(&chunk);
        if format == Format::Json {
            continue; // one document: parsed at the end
        }
        let mut start = 0;
        while let Some(pos) = pending[start..].iter().position(|b| *b == b'\n') {
            reader.line(&pending[start..start + pos]);
            start += pos + 1;
            if reader.full() {
                return Err(ApiError::Validation(reader.errors));
            }
        }
        pending.drain(..start);
    }
    match format {
        Format::Json => {
            let doc: JsonBatch = serde_json::from_slice(&pending).map_err(|e| {
                ApiError::MalformedBody(format!("expected {{\"payments\": [...]}}: {e}"))
            })?;
            for (i, body) in doc.payments.iter().enumerate() {
                reader.add(i as u64 + 1, body);
                if reader.full() {
                    break;
                }
            }
        }
        _ if !pending.is_empty() => reader.line(&pending),
        _ => {}
    }
    if format == Format::Csv && !reader.header_seen {
        reader.errors.push(line_error(
            1,
            "header",
            format!("the first line must be `{CSV_HEADER}`"),
        ));
    }
    if !reader.errors.is_empty() {
        reader.errors.truncate(ERRORS_MAX);
        return Err(ApiError::Validation(reader.errors));
    }
    if reader.payments.is_empty() {
        return Err(ApiError::field("body", "the batch has no payments"));
    }
    Ok(reader.payments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(
            Format::from_content_type(Some("text/csv; charset=utf-8")),
            Some(Format::Csv)
        );
        assert_eq!(
            Format::from_content_type(Some("application/x-ndjson")),
            Some(Format::Ndjson)
        );
        assert_eq!(
            Format::from_content_type(Some("application/json")),
            Some(Format::Json)
        );
        assert_eq!(Format::from_content_type(Some("text/plain")), None);
        assert_eq!(Format::from_content_type(None), None);
    }

    #[tokio::test]
    async fn errors_name_line_and_field() {
        let csv = "from_account,to_account,amount,currency,reference\n\
                   a11ce000-0000-4000-8000-000000000001,b0b00000-0000-4000-8000-000000000001,1.00,EUR,ok\n\
                   a11ce000-0000-4000-8000-000000000001,b0b00000-0000-4000-8000-000000000001,0,EUR,\n";
        match read(Body::from(csv), Format::Csv).await {
            Err(ApiError::Validation(errors)) => {
                assert_eq!(errors.len(), 1);
                assert_eq!(
                    (errors[0].line, errors[0].field.as_str()),
                    (Some(3), "amount")
                );
            }
            other => panic!("{other:?}"),
        }
        let ok = "from_account,to_account,amount,currency\n\
                  a11ce000-0000-4000-8000-000000000001,b0b00000-0000-4000-8000-000000000001,1.00,EUR";
        let payments = read(Body::from(ok), Format::Csv).await.unwrap();
        assert_eq!(payments.len(), 1);
        assert_eq!(payments[0].line, 2);
    }
}
