//! The local check of a batch file, before anything is sent.
//!
//! It runs the gateway's own line reader (`shared::batch_line`, the very
//! code and limits the gateway applies to an upload), streaming: memory
//! stays flat whatever the file's size. Lines are physical 1-based line
//! numbers, the header being line 1, exactly as the gateway numbers them, so
//! a local error and a server error about the same line agree (worded for a
//! terminal: the offending value is quoted). The same pass hashes the bytes:
//! the default idempotency key.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
pub use shared::batch_file::CSV_HEADER;
use shared::batch_line::Lines;
pub use shared::batch_line::{ATOMIC_MAX, BYTES_MAX, Format, LINES_MAX};
use shared::transfer_body::Wording;

use crate::error::Failure;

/// Read buffer: large enough that a file is read in few system calls.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// The format of a file, by its name: `.ndjson`/`.jsonl` files are NDJSON;
/// anything else is read as CSV (whose header check catches a file of
/// another kind).
pub fn format_of(path: &Path) -> Format {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("ndjson" | "jsonl") => Format::Ndjson,
        _ => Format::Csv,
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
    let unreadable = |e: std::io::Error| Failure::invalid(format!("cannot read {name}: {e}"));
    let file = File::open(path).map_err(unreadable)?;
    let bytes = file.metadata().map_err(unreadable)?.len();
    if bytes > BYTES_MAX as u64 {
        return Err(Failure::invalid(format!(
            "{name} is {bytes} bytes; an upload is at most {BYTES_MAX} bytes (32 MiB): split the file"
        )));
    }
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, file);
    let mut lines = Lines::new(format, Wording::Terminal);
    let mut totals: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut hash = Sha256::new();
    let mut buf = Vec::with_capacity(256);
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(unreadable)?;
        if n == 0 {
            break;
        }
        hash.update(&buf);
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        if let Some(p) = lines.line(line) {
            *totals
                .entry(p.order.currency.code().to_owned())
                .or_default() += p.order.amount.value();
        }
        if lines.full() {
            return Err(Failure::InvalidFile {
                file: name,
                errors: lines.into_errors(),
                truncated: true,
            });
        }
    }
    let payments = lines.finish().map_err(|errors| Failure::InvalidFile {
        file: name.clone(),
        errors,
        truncated: false,
    })?;
    if payments == 0 {
        return Err(Failure::invalid(format!("{name} has no payments")));
    }
    if atomic && payments > ATOMIC_MAX {
        return Err(Failure::invalid(format!(
            "{name} has {payments} payments; an atomic batch holds at most {ATOMIC_MAX}"
        )));
    }
    Ok(Checked {
        payments: payments as u64,
        bytes,
        sha256: hex::encode(hash.finalize()),
        totals,
    })
}

#[cfg(test)]
mod tests {
    use shared::batch_file::csv_fields;
    use shared::batch_line::ERRORS_MAX;

    use super::*;

    const A: &str = "a11ce000-0000-4000-8000-000000000001";
    const B: &str = "b0b00000-0000-4000-8000-000000000001";

    fn check(name: &str, text: &str) -> Result<Checked, Failure> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        check_file(&path, format_of(&path), false)
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
