//! Reading a batch file line by line: the limits of a batch and the check
//! of every line, once for the gateway (which reads uploads as they stream
//! in) and bankctl (which checks a file before sending it).
//!
//! Lines are physical 1-based line numbers (a CSV's header is line 1, so its
//! first payment is line 2); blank lines are skipped but counted. For a JSON
//! document a payment's line is its index + 1. Only the compact validated
//! payments leave the reader, never the raw text.

use crate::batch_file::{CSV_HEADER, csv_fields};
use crate::problem::FieldError;
use crate::transfer::TransferOrder;
use crate::transfer_body::{TransferBody, Wording, validate};

/// Payments per batch.
pub const LINES_MAX: usize = 100_000;
/// Bytes per upload (32 MiB).
pub const BYTES_MAX: usize = 32 * 1024 * 1024;
/// Payments of an atomic batch (one message, one database transaction).
pub const ATOMIC_MAX: usize = 1_000;
/// Errors reported before giving up on a file: enough to fix a systematic
/// mistake, few enough to read.
pub const ERRORS_MAX: usize = 20;

/// How a batch file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `from_account,to_account,amount,currency[,reference]`, with a header.
    Csv,
    /// One transfer request (JSON object) per line.
    Ndjson,
    /// One document `{"payments": [...]}`: read whole, not line by line.
    Json,
}

impl Format {
    /// The format a `Content-Type` names (parameters ignored).
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

    /// The `Content-Type` to send a file of this format with.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv",
            Self::Ndjson => "application/x-ndjson",
            Self::Json => "application/json",
        }
    }
}

/// One valid payment and its line.
#[derive(Debug, Clone)]
pub struct Payment {
    pub line: u32,
    pub order: TransferOrder,
}

/// The line-by-line check of one file. Feed it every physical line with
/// [`Lines::line`] (or every payment of a JSON document with
/// [`Lines::payment`]), stop when [`Lines::full`], end with [`Lines::finish`].
#[derive(Debug)]
pub struct Lines {
    format: Format,
    wording: Wording,
    /// Physical lines read so far.
    physical: u64,
    header_seen: bool,
    /// Valid payments so far.
    accepted: usize,
    errors: Vec<FieldError>,
}

impl Lines {
    pub fn new(format: Format, wording: Wording) -> Self {
        Self {
            format,
            wording,
            physical: 0,
            header_seen: false,
            accepted: 0,
            errors: Vec::new(),
        }
    }

    /// [`ERRORS_MAX`] errors are in: reading on would only add more.
    pub fn full(&self) -> bool {
        self.errors.len() >= ERRORS_MAX
    }

    /// Valid payments so far.
    pub fn accepted(&self) -> usize {
        self.accepted
    }

    /// The errors so far, as they are (a line may have pushed past
    /// [`ERRORS_MAX`]).
    pub fn into_errors(self) -> Vec<FieldError> {
        self.errors
    }

    fn error(&mut self, line: u64, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::on_line(line, field, message));
    }

    /// One physical line without its `\n`: the payment it holds, if valid.
    pub fn line(&mut self, raw: &[u8]) -> Option<Payment> {
        self.physical += 1;
        let line = self.physical;
        let Ok(text) = std::str::from_utf8(raw) else {
            self.error(line, "line", "is not valid UTF-8");
            return None;
        };
        let text = text.trim_end_matches('\r');
        if text.trim().is_empty() {
            return None;
        }
        match self.format {
            Format::Csv => self.csv_line(text),
            Format::Ndjson => match serde_json::from_str::<TransferBody>(text) {
                Ok(body) => self.payment(line, &body),
                Err(e) => {
                    self.error(line, "line", format!("not a JSON payment: {e}"));
                    None
                }
            },
            // One document, read by the caller and fed to `payment`.
            Format::Json => None,
        }
    }

    fn csv_line(&mut self, text: &str) -> Option<Payment> {
        let line = self.physical;
        let fields = match csv_fields(text) {
            Ok(f) => f,
            Err(e) => {
                self.error(line, "line", e);
                return None;
            }
        };
        if !self.header_seen {
            self.header_seen = true;
            let header: Vec<&str> = fields.iter().map(|f| f.trim()).collect();
            let expected: Vec<&str> = CSV_HEADER.split(',').collect();
            if header != expected && header != expected[..4] {
                let bom = if self.wording == Wording::Terminal && text.starts_with('\u{feff}') {
                    " (this one starts with a byte-order mark: save the file as UTF-8 without BOM)"
                } else {
                    ""
                };
                self.error(
                    line,
                    "header",
                    format!("the first line must be `{CSV_HEADER}`{bom}"),
                );
            }
            return None;
        }
        if !(4..=5).contains(&fields.len()) {
            self.error(
                line,
                "line",
                format!("expected 4 or 5 fields, found {}", fields.len()),
            );
            return None;
        }
        let body = TransferBody {
            from_account: Some(fields[0].trim().to_owned()),
            to_account: Some(fields[1].trim().to_owned()),
            amount: Some(serde_json::Value::String(fields[2].trim().to_owned())),
            currency: Some(fields[3].trim().to_owned()),
            reference: fields.get(4).filter(|r| !r.is_empty()).cloned(),
        };
        self.payment(line, &body)
    }

    /// The payment on `line`, if valid; its errors are kept otherwise.
    pub fn payment(&mut self, line: u64, body: &TransferBody) -> Option<Payment> {
        let mut errors = Vec::new();
        let Some(order) = validate(body, self.wording, &mut errors) else {
            self.errors.extend(errors.into_iter().map(|mut e| {
                e.line = Some(line);
                e
            }));
            return None;
        };
        if self.accepted >= LINES_MAX {
            let hint = match self.wording {
                Wording::Api => "",
                Wording::Terminal => ": split the file",
            };
            self.error(
                line,
                "line",
                format!("a batch holds at most {LINES_MAX} payments{hint}"),
            );
            return None;
        }
        self.accepted += 1;
        Some(Payment {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            order,
        })
    }

    /// After the last line: `Ok` with the number of valid payments, or the
    /// errors (at most [`ERRORS_MAX`]), a CSV without a header included.
    pub fn finish(mut self) -> Result<usize, Vec<FieldError>> {
        if self.format == Format::Csv && !self.header_seen {
            self.error(
                1,
                "header",
                format!("the first line must be `{CSV_HEADER}`"),
            );
        }
        if self.errors.is_empty() {
            Ok(self.accepted)
        } else {
            self.errors.truncate(ERRORS_MAX);
            Err(self.errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "a11ce000-0000-4000-8000-000000000001";
    const B: &str = "b0b00000-0000-4000-8000-000000000001";

    fn read(
        format: Format,
        wording: Wording,
        text: &str,
    ) -> (Vec<Payment>, Result<usize, Vec<FieldError>>) {
        let mut lines = Lines::new(format, wording);
        let payments = text
            .split('\n')
            .filter_map(|l| lines.line(l.as_bytes()))
            .collect();
        (payments, lines.finish())
    }

    #[test]
    fn formats_by_content_type() {
        let f = Format::from_content_type;
        assert_eq!(f(Some("text/csv; charset=utf-8")), Some(Format::Csv));
        assert_eq!(f(Some("application/x-ndjson")), Some(Format::Ndjson));
        assert_eq!(f(Some("application/json")), Some(Format::Json));
        assert_eq!(f(Some("text/plain")), None);
        assert_eq!(f(None), None);
        for format in [Format::Csv, Format::Ndjson, Format::Json] {
            assert_eq!(f(Some(format.content_type())), Some(format));
        }
    }

    #[test]
    fn csv_lines_are_physical() {
        let text = format!(
            "{CSV_HEADER}\n{A},{B},12.50,EUR,\"pay, #1\"\r\n\n{A},{B},1,EUR\n{A},{B},0,EUR\n"
        );
        let (payments, result) = read(Format::Csv, Wording::Api, &text);
        let lines: Vec<u32> = payments.iter().map(|p| p.line).collect();
        assert_eq!(lines, [2, 4]);
        let errors = result.expect_err("line 5 is invalid");
        assert_eq!(
            (errors[0].line, errors[0].field.as_str()),
            (Some(5), "amount")
        );
    }

    #[test]
    fn headers_are_checked() {
        let (_, result) = read(Format::Csv, Wording::Api, "");
        assert_eq!(result.expect_err("no header")[0].line, Some(1));
        let bom = format!("\u{feff}{CSV_HEADER}\n{A},{B},1,EUR");
        let (_, api) = read(Format::Csv, Wording::Api, &bom);
        let (_, terminal) = read(Format::Csv, Wording::Terminal, &bom);
        assert!(!api.expect_err("BOM")[0].message.contains("byte-order mark"));
        assert!(
            terminal.expect_err("BOM")[0]
                .message
                .contains("byte-order mark")
        );
    }

    #[test]
    fn ndjson_and_json_payments() {
        let ok = format!(
            r#"{{"from_account":"{A}","to_account":"{B}","amount":"1.00","currency":"EUR"}}"#
        );
        let (payments, result) = read(Format::Ndjson, Wording::Api, &format!("{ok}\nnot json"));
        assert_eq!(payments.len(), 1);
        assert_eq!(result.expect_err("line 2")[0].field, "line");
        let mut lines = Lines::new(Format::Json, Wording::Api);
        let body: TransferBody = serde_json::from_str(&ok).expect("a body");
        assert_eq!(lines.payment(7, &body).map(|p| p.line), Some(7));
        assert_eq!(lines.finish(), Ok(1));
    }

    #[test]
    fn a_full_reader_stops_and_finish_truncates() {
        let mut lines = Lines::new(Format::Csv, Wording::Api);
        lines.line(CSV_HEADER.as_bytes());
        let bad = format!("{A},{A},0,EURO");
        while !lines.full() {
            lines.line(bad.as_bytes());
        }
        assert!(lines.finish().expect_err("invalid").len() == ERRORS_MAX);
    }
}
