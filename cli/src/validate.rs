//! The local check of a batch file, before anything is sent.
//!
//! It applies the gateway's rules line by line (the money, currency and
//! reference rules are the `shared` crate's, the very code the gateway
//! runs), streaming: memory stays flat whatever the file's size. Lines are
//! physical 1-based line numbers, the header being line 1, exactly as the
//! gateway numbers them, so a local error and a server error about the same
//! line agree. The same pass hashes the bytes: the default idempotency key.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use rust_decimal::Decimal;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use shared::money::{Amount, Currency};
use shared::transfer::Reference;
use uuid::Uuid;

use crate::error::{Failure, FieldError};

/// The gateway's limits (`gateway/src/batch_input.rs`, `routes/batches.rs`).
pub const LINES_MAX: u64 = 100_000;
pub const BYTES_MAX: u64 = 32 * 1024 * 1024;
pub const ATOMIC_MAX: u64 = 1_000;
/// Errors listed before giving up on a file (the gateway lists 20 too).
pub const ERRORS_MAX: usize = 20;
pub use shared::batch_file::{CSV_HEADER, csv_fields};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Ndjson,
}

impl Format {
    /// `.ndjson`/`.jsonl` files are NDJSON; anything else is read as CSV
    /// (whose header check catches a file of another kind).
    pub fn from_path(path: &Path) -> Self {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("ndjson" | "jsonl") => Self::Ndjson,
            _ => Self::Csv,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv",
            Self::Ndjson => "application/x-ndjson",
        }
    }
}

/// What the check learned about a valid file.
#[derive(Debug, Clone)]
pub struct Checked {
    pub payments: u64,
    pub bytes: u64,
    /// Hex SHA-256 of the file's bytes.
    pub sha256: String,
    /// Sum of the amounts per currency code.
    pub totals: BTreeMap<String, Decimal>,
}

/// One payment's fields as text, before validation.
#[derive(Default, Deserialize)]
struct Fields {
    from_account: Option<String>,
    to_account: Option<String>,
    amount: Option<serde_json::Value>,
    currency: Option<String>,
    reference: Option<String>,
}

struct Validator {
    format: Format,
    line: u64,
    header_seen: bool,
    payments: u64,
    totals: BTreeMap<String, Decimal>,
    errors: Vec<FieldError>,
}

/// A value as it is quoted in a message: short enough for one line.
fn quoted(value: &str) -> String {
    const SHOWN: usize = 40;
    if value.chars().count() > SHOWN {
        format!("{:?}…", value.chars().take(SHOWN).collect::<String>())
    } else {
        format!("{value:?}")
    }
}

impl Validator {
    fn new(format: Format) -> Self {
        Self {
            format,
            line: 0,
            header_seen: false,
            payments: 0,
            totals: BTreeMap::new(),
            errors: Vec::new(),
        }
    }

    fn full(&self) -> bool {
        self.errors.len() >= ERRORS_MAX
    }

    fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
            line: Some(self.line),
        });
    }

    /// One physical line, without its `\n`.
    fn line(&mut self, raw: &[u8]) {
        self.line += 1;
        let Ok(text) = std::str::from_utf8(raw) else {
            self.error("line", "is not valid UTF-8");
            return;
        };
        let text = text.trim_end_matches('\r');
        if text.trim().is_empty() {
            return; // blank lines are skipped, but still counted
        }
        match self.format {
            Format::Csv => self.csv_line(text),
            Format::Ndjson => match serde_json::from_str::<Fields>(text) {
                Ok(fields) => self.payment(&fields),
                Err(e) => self.error("line", format!("not a JSON payment: {e}")),
            },
        }
    }

    fn csv_line(&mut self, text: &str) {
        let fields = match csv_fields(text) {
            Ok(f) => f,
            Err(e) => return self.error("line", e),
        };
        if !self.header_seen {
            self.header_seen = true;
            let header: Vec<&str> = fields.iter().map(|f| f.trim()).collect();
            let expected: Vec<&str> = CSV_HEADER.split(',').collect();
            if header != expected && header != expected[..4] {
                let bom = if text.starts_with('\u{feff}') {
                    " (this one starts with a byte-order mark: save the file as UTF-8 without BOM)"
                } else {
                    ""
                };
                self.error(
                    "header",
                    format!("the first line must be `{CSV_HEADER}`{bom}"),
                );
            }
            return;
        }
        if !(4..=5).contains(&fields.len()) {
            return self.error(
                "line",
                format!("expected 4 or 5 fields, found {}", fields.len()),
            );
        }
        let text = |i: usize| Some(fields[i].trim().to_owned());
        let payment = Fields {
            from_account: text(0),
            to_account: text(1),
            amount: Some(serde_json::Value::String(fields[2].trim().to_owned())),
            currency: text(3),
            reference: fields.get(4).filter(|r| !r.is_empty()).cloned(),
        };
        self.payment(&payment);
    }

    /// The gateway's `validate`, field by field; every error of the line is
    /// reported, not just the first.
    fn payment(&mut self, p: &Fields) {
        let before = self.errors.len();
        let from = self.account("from_account", &p.from_account);
        let to = self.account("to_account", &p.to_account);
        let currency = match p.currency.as_deref() {
            None => {
                self.error("currency", "is required");
                None
            }
            Some(c) => match Currency::parse(c) {
                Ok(c) => Some(c),
                Err(e) => {
                    self.error("currency", format!("{}: {e}", quoted(c)));
                    None
                }
            },
        };
        let amount = match &p.amount {
            None => {
                self.error("amount", "is required");
                None
            }
            Some(serde_json::Value::String(text)) => currency.and_then(|c| {
                Amount::parse(text, c)
                    .map_err(|e| self.error("amount", format!("{}: {e}", quoted(text))))
                    .ok()
            }),
            Some(_) => {
                self.error(
                    "amount",
                    "must be a decimal string such as \"12.34\", not a JSON number",
                );
                None
            }
        };
        if let Some(r) = &p.reference
            && let Err(e) = Reference::parse(r)
        {
            self.error("reference", e.to_string());
        }
        if let (Some(f), Some(t)) = (from, to)
            && f == t
        {
            self.error("to_account", "must differ from from_account");
        }
        if self.errors.len() > before {
            return;
        }
        self.payments += 1;
        if self.payments > LINES_MAX {
            self.error(
                "line",
                format!("a batch holds at most {LINES_MAX} payments: split the file"),
            );
            return;
        }
        if let (Some(c), Some(a)) = (currency, amount) {
            *self.totals.entry(c.code().to_owned()).or_default() += a.value();
        }
    }

    fn account(&mut self, field: &str, value: &Option<String>) -> Option<Uuid> {
        match value.as_deref() {
            None | Some("") => {
                self.error(field, "is required");
                None
            }
            Some(text) => match Uuid::parse_str(text) {
                Ok(id) => Some(id),
                Err(_) => {
                    self.error(
                        field,
                        format!("{}: must be an account id (a UUID)", quoted(text)),
                    );
                    None
                }
            },
        }
    }
}

/// Quotes a CSV field when it needs it.
pub fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// Checks a whole file (streamed) for upload in `mode`.
pub fn check_file(path: &Path, format: Format, atomic: bool) -> Result<Checked, Failure> {
    let name = path.display().to_string();
    let file =
        File::open(path).map_err(|e| Failure::invalid(format!("cannot read {name}: {e}")))?;
    let bytes = file
        .metadata()
        .map_err(|e| Failure::invalid(format!("cannot read {name}: {e}")))?
        .len();
    if bytes > BYTES_MAX {
        return Err(Failure::invalid(format!(
            "{name} is {bytes} bytes; an upload is at most {BYTES_MAX} bytes (32 MiB): split the file"
        )));
    }
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut validator = Validator::new(format);
    let mut hash = Sha256::new();
    let mut buf = Vec::with_capacity(256);
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| Failure::invalid(format!("cannot read {name}: {e}")))?;
        if n == 0 {
            break;
        }
        hash.update(&buf);
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        validator.line(line);
        if validator.full() {
            return Err(Failure::InvalidFile {
                file: name,
                errors: validator.errors,
                truncated: true,
            });
        }
    }
    if format == Format::Csv && !validator.header_seen {
        validator.line = 1;
        validator.error("header", format!("the first line must be `{CSV_HEADER}`"));
    }
    if !validator.errors.is_empty() {
        return Err(Failure::InvalidFile {
            file: name,
            errors: validator.errors,
            truncated: false,
        });
    }
    if validator.payments == 0 {
        return Err(Failure::invalid(format!("{name} has no payments")));
    }
    if atomic && validator.payments > ATOMIC_MAX {
        return Err(Failure::invalid(format!(
            "{name} has {} payments; an atomic batch holds at most {ATOMIC_MAX}",
            validator.payments
        )));
    }
    Ok(Checked {
        payments: validator.payments,
        bytes,
        sha256: hex::encode(hash.finalize()),
        totals: validator.totals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "a11ce000-0000-4000-8000-000000000001";
    const B: &str = "b0b00000-0000-4000-8000-000000000001";

    fn check(name: &str, text: &str) -> Result<Checked, Failure> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        check_file(&path, Format::from_path(&path), false)
    }

    fn errors(r: Result<Checked, Failure>) -> Vec<(u64, String, String)> {
        match r {
            Err(Failure::InvalidFile { errors, .. }) => errors
                .into_iter()
                .map(|e| (e.line.unwrap_or(0), e.field, e.message))
                .collect(),
            Err(other) => panic!("{other}"),
            Ok(c) => panic!("accepted: {c:?}"),
        }
    }

    #[test]
    fn a_valid_file_is_counted_totalled_and_hashed() {
        let text = format!(
            "{CSV_HEADER}\n{A},{B},12.50,EUR,\"pay, #1\"\r\n\n{A},{B},1,EUR\n{A},{B},3,JPY,x"
        );
        let c = check("p.csv", &text).unwrap();
        assert_eq!(c.payments, 3);
        assert_eq!(c.totals["EUR"], Decimal::new(1350, 2));
        assert_eq!(c.totals["JPY"], Decimal::from(3));
        assert_eq!(c.sha256, hex::encode(Sha256::digest(text.as_bytes())));
    }

    #[test]
    fn errors_name_the_physical_line_and_the_field() {
        let mut text = format!("{CSV_HEADER}\n");
        for _ in 0..3 {
            text.push_str(&format!("{A},{B},1.00,EUR,ok\n"));
        }
        text.push_str(&format!("{A},{B},12.345,EUR,too precise\n"));
        text.push_str(&format!("{A},nope,0,EUR\n"));
        text.push_str(&format!("{A},{A},1.00,EURO\n"));
        let e = errors(check("p.csv", &text));
        assert_eq!(e[0].0, 5);
        assert_eq!(e[0].1, "amount");
        assert!(e[0].2.contains("\"12.345\""), "{}", e[0].2);
        assert!(e[0].2.contains("at most 2 decimal"), "{}", e[0].2);
        assert_eq!((e[1].0, e[1].1.as_str()), (6, "to_account"));
        assert_eq!((e[2].0, e[2].1.as_str()), (6, "amount"));
        assert_eq!((e[3].0, e[3].1.as_str()), (7, "currency"));
    }

    #[test]
    fn headers_and_records_are_checked() {
        let e = errors(check("p.csv", "wrong,header\n"));
        assert_eq!((e[0].0, e[0].1.as_str()), (1, "header"));
        let e = errors(check(
            "p.csv",
            &format!("\u{feff}{CSV_HEADER}\n{A},{B},1,EUR\n"),
        ));
        assert!(e[0].2.contains("byte-order mark"));
        let e = errors(check("p.csv", &format!("{CSV_HEADER}\n{A},{B}\n")));
        assert_eq!((e[0].0, e[0].1.as_str()), (2, "line"));
        let e = errors(check("p.csv", &format!("{CSV_HEADER}\n{A},{B},\"1,EUR\n")));
        assert!(e[0].2.contains("unterminated"));
        assert!(matches!(
            check("p.csv", &format!("{CSV_HEADER}\n")),
            Err(Failure::Invalid(_))
        ));
        assert!(matches!(
            check("p.csv", ""),
            Err(Failure::InvalidFile { .. })
        ));
    }

    #[test]
    fn ndjson_lines() {
        let ok = format!(
            "{{\"from_account\":\"{A}\",\"to_account\":\"{B}\",\"amount\":\"1.00\",\"currency\":\"EUR\"}}\n"
        );
        assert_eq!(check("p.ndjson", &ok).unwrap().payments, 1);
        let bad = format!(
            "{ok}{{\"from_account\":\"{A}\",\"to_account\":\"{B}\",\"amount\":1,\"currency\":\"EUR\"}}\nnot json\n"
        );
        let e = errors(check("p.jsonl", &bad));
        assert_eq!((e[0].0, e[0].1.as_str()), (2, "amount"));
        assert_eq!((e[1].0, e[1].1.as_str()), (3, "line"));
    }

    #[test]
    fn at_most_twenty_errors_are_listed() {
        let mut text = format!("{CSV_HEADER}\n");
        for _ in 0..100 {
            text.push_str(&format!("{A},{B},0,EUR\n"));
        }
        match check("p.csv", &text) {
            Err(Failure::InvalidFile {
                errors, truncated, ..
            }) => {
                assert_eq!(errors.len(), ERRORS_MAX);
                assert!(truncated);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn csv_quoting_round_trips() {
        for v in ["plain", "a, b", "say \"hi\"", ""] {
            let line = format!("x,{},y", csv_field(v));
            assert_eq!(csv_fields(&line).unwrap()[1], v);
        }
    }
}
