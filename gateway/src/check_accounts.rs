//! The account checks of a transfer, before it is published: the source is
//! the caller's, the destination exists, both hold the transfer's currency.
//!
//! One rule ([`check`]) for a single transfer and for every line of a batch;
//! only the way a failure is reported differs. A single transfer gets the
//! first failure as its own problem type (`403`, `unknown-account`,
//! `currency-mismatch`); a batch gets every failure as a line-numbered field
//! error. Lookups go through the immutable-account cache.

use ledger::accounts::AccountKey;
use shared::batch_line::{ERRORS_MAX, Payment};
use shared::problem::FieldError;
use shared::transfer::TransferOrder;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::Caller;
use crate::state::SharedState;

/// What is wrong with the source account.
enum Source {
    /// Someone else's or unknown: the two look the same (no probing).
    NotYours,
    /// It holds this other currency.
    Holds(String),
}

/// What is wrong with the destination account.
enum Destination {
    Unknown,
    /// It holds this other currency.
    Holds(String),
}

/// The failures of one order, by account.
struct Findings {
    source: Option<Source>,
    destination: Option<Destination>,
}

fn check(
    caller: Uuid,
    order: &TransferOrder,
    from: Option<&AccountKey>,
    to: Option<&AccountKey>,
) -> Findings {
    let currency = order.currency.code();
    let source = match from {
        Some(a) if a.owner_id != caller => Some(Source::NotYours),
        Some(a) if a.currency.as_str() != currency => {
            Some(Source::Holds(a.currency.as_str().to_owned()))
        }
        Some(_) => None,
        None => Some(Source::NotYours),
    };
    let destination = match to {
        None => Some(Destination::Unknown),
        Some(a) if a.currency.as_str() != currency => {
            Some(Destination::Holds(a.currency.as_str().to_owned()))
        }
        Some(_) => None,
    };
    Findings {
        source,
        destination,
    }
}

/// A single transfer's accounts: the first failure, as its own problem.
pub async fn transfer(
    state: &SharedState,
    caller: Caller,
    order: &TransferOrder,
) -> Result<(), ApiError> {
    let [from, to] = state
        .accounts
        .lookup(&state.pool, [order.from_account, order.to_account])
        .await?;
    let found = check(caller.id, order, from.as_ref(), to.as_ref());
    let currency = order.currency.code();
    let mismatch = |detail: String, field| ApiError::Unprocessable {
        slug: "currency-mismatch",
        title: "Currency mismatch",
        detail,
        field,
    };
    match found {
        Findings {
            source: Some(Source::NotYours),
            ..
        } => Err(ApiError::Forbidden(
            "from_account is not one of your accounts",
        )),
        Findings {
            destination: Some(Destination::Unknown),
            ..
        } => Err(ApiError::Unprocessable {
            slug: "unknown-account",
            title: "Unknown destination account",
            detail: "to_account does not exist".into(),
            field: "to_account",
        }),
        Findings {
            source: Some(Source::Holds(held)),
            ..
        } => Err(mismatch(
            format!("from_account holds {held}, not {currency}"),
            "currency",
        )),
        Findings {
            destination: Some(Destination::Holds(held)),
            ..
        } => Err(mismatch(
            format!("to_account holds {held}, not {currency}"),
            "to_account",
        )),
        Findings {
            source: None,
            destination: None,
        } => Ok(()),
    }
}

/// Every payment of a batch: all failures (up to [`ERRORS_MAX`]) as
/// line-numbered field errors.
pub async fn batch(
    state: &SharedState,
    caller: Caller,
    payments: &[Payment],
) -> Result<(), ApiError> {
    let mut ids: Vec<Uuid> = payments
        .iter()
        .flat_map(|p| [p.order.from_account, p.order.to_account])
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let known = state.accounts.lookup_many(&state.pool, &ids).await?;
    let mut errors: Vec<FieldError> = Vec::new();
    for p in payments {
        let line = u64::from(p.line);
        let found = check(
            caller.id,
            &p.order,
            known.get(&p.order.from_account),
            known.get(&p.order.to_account),
        );
        match found.source {
            Some(Source::NotYours) => errors.push(FieldError::on_line(
                line,
                "from_account",
                "is not one of your accounts",
            )),
            Some(Source::Holds(held)) => errors.push(FieldError::on_line(
                line,
                "currency",
                format!("from_account holds {held}"),
            )),
            None => {}
        }
        let currency = p.order.currency.code();
        match found.destination {
            Some(Destination::Unknown) => {
                errors.push(FieldError::on_line(line, "to_account", "does not exist"))
            }
            Some(Destination::Holds(held)) => errors.push(FieldError::on_line(
                line,
                "to_account",
                format!("holds {held}, not {currency}"),
            )),
            None => {}
        }
        if errors.len() >= ERRORS_MAX {
            break;
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        errors.truncate(ERRORS_MAX);
        Err(ApiError::Validation(errors))
    }
}
