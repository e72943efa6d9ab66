//! `bankctl statement`: an account's statement, as a table, JSON or CSV.

use std::io::Write as _;

use shared::statement::StatementView;

use crate::Ctx;
use crate::cli::StatementArgs;
use crate::error::{Failure, Outcome};

/// The start of `day` (`YYYY-MM-DD`) in UTC, or the moment as given.
fn start(text: &str) -> String {
    match is_day(text) {
        true => format!("{text}T00:00:00Z"),
        false => text.to_owned(),
    }
}

/// The last microsecond of `day` in UTC (the range includes its end), or
/// the moment as given.
fn end(text: &str) -> String {
    match is_day(text) {
        true => format!("{text}T23:59:59.999999Z"),
        false => text.to_owned(),
    }
}

/// `YYYY-MM-DD` in shape (the server checks that it is a real day).
fn is_day(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

pub async fn show(ctx: &Ctx, args: &StatementArgs) -> Result<Outcome, Failure> {
    let account = args.account.to_string();
    let (from, to) = (start(&args.from), end(&args.to));
    if args.csv {
        let csv = ctx.api.statement(&account, &from, &to, "csv").await?;
        std::io::stdout()
            .write_all(&csv)
            .map_err(|e| Failure::invalid(format!("cannot write the statement: {e}")))?;
        return Ok(Outcome::Ok);
    }
    let body = ctx.api.statement(&account, &from, &to, "json").await?;
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| Failure::invalid(format!("the statement is not JSON: {e}")))?;
    let statement: StatementView = serde_json::from_value(value.clone())
        .map_err(|e| Failure::invalid(format!("the statement is not what bankctl expects: {e}")))?;
    ctx.out.result(&value, || table(&statement));
    Ok(Outcome::Ok)
}

fn table(s: &StatementView) -> String {
    let mut text = format!(
        "statement of {} ({}) from {} to {}\n{:<27}  {:>16}  {:>18}  {:<36}  reference\n{:<27}  {:>16}  {:>18}",
        s.account_id,
        s.currency,
        s.from.to_rfc3339(),
        s.to.to_rfc3339(),
        "date",
        "amount",
        "balance",
        "counterparty",
        "opening balance",
        "",
        s.opening_balance,
    );
    for e in &s.entries {
        text.push_str(&format!(
            "\n{:<27}  {:>16}  {:>18}  {:<36}  {}",
            e.created_at.format("%Y-%m-%d %H:%M:%S%.6f"),
            e.amount,
            e.running_balance,
            e.counterparty_account
                .map(|a| a.to_string())
                .unwrap_or_default(),
            e.reference.as_deref().unwrap_or(""),
        ));
    }
    text.push_str(&format!(
        "\n{:<27}  {:>16}  {:>18}\n{} entries; debits {}, credits {}",
        "closing balance", "", s.closing_balance, s.entry_count, s.total_debits, s.total_credits
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_cover_whole_days_and_moments_pass_through() {
        assert_eq!(start("2026-11-30"), "2026-11-30T00:00:00Z");
        assert_eq!(end("2026-11-30"), "2026-11-30T23:59:59.999999Z");
        assert_eq!(start("2026-11-30T12:00:00Z"), "2026-11-30T12:00:00Z");
        assert!(!is_day("2026-1-300"));
    }
}
