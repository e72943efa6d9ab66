//! The CSV format of batch files, shared by the gateway (which reads
//! uploads) and `bankctl` (which checks files before sending them), so both
//! agree on every record.

/// The header line of a batch CSV (`reference` may be omitted).
pub const CSV_HEADER: &str = "from_account,to_account,amount,currency,reference";

/// Splits one CSV record: commas, with `"…"` quoting and `""` escapes.
pub fn csv_fields(line: &str) -> Result<Vec<String>, &'static str> {
    let mut fields = Vec::with_capacity(5);
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', false) if field.is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
            }
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) => return Err("stray quote in an unquoted field"),
            (',', false) => {
                fields.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            (c, _) => {
                if was_quoted && !quoted {
                    return Err("text after a closing quote");
                }
                field.push(c);
            }
        }
    }
    if quoted {
        return Err("unterminated quote");
    }
    fields.push(field);
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_records() {
        assert_eq!(csv_fields("a,b,,d").unwrap(), vec!["a", "b", "", "d"]);
        assert_eq!(
            csv_fields(r#"a,"b, c","say ""hi""""#).unwrap(),
            vec!["a", "b, c", r#"say "hi""#]
        );
        assert!(csv_fields(r#"a,"b"#).is_err());
        assert!(csv_fields(r#"a,b"c"#).is_err());
        assert!(csv_fields(r#"a,"b"c"#).is_err());
    }
}
