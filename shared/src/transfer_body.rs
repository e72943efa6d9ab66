//! The wire form of one transfer request and everything checkable about it
//! without looking anything up.
//!
//! One copy for every place a transfer arrives: `POST /v1/transfers`, each
//! line of a batch upload (the gateway) and each line of a batch file
//! checked locally (bankctl), so a local error and a server error about the
//! same line say the same thing.

use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::money::{Amount, Currency};
use crate::problem::FieldError;
use crate::transfer::{Reference, TransferOrder};

/// The wire form of a transfer request. Every field is optional here so that
/// a missing one is reported by name, with the others, in one response; the
/// schema says what a valid request holds.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = TransferRequest, example = json!({
    "from_account": "a11ce000-0000-4000-8000-000000000001",
    "to_account": "b0b00000-0000-4000-8000-000000000001",
    "amount": "12.50",
    "currency": "EUR",
    "reference": "lunch"
}))]
pub struct TransferBody {
    /// One of the caller's accounts.
    #[schema(required = true, value_type = String, format = Uuid)]
    pub from_account: Option<String>,
    /// Any existing account in the same currency, other than `from_account`.
    #[schema(required = true, value_type = String, format = Uuid)]
    pub to_account: Option<String>,
    /// A positive decimal string with at most the currency's minor-unit
    /// decimals (EUR 2, JPY 0, KWD 3), at most 1,000,000,000. Never a JSON number.
    #[schema(required = true, value_type = String, pattern = r"^[0-9]+(\.[0-9]+)?$", example = "12.50")]
    pub amount: Option<serde_json::Value>,
    /// An ISO 4217 code.
    #[schema(required = true, value_type = String, pattern = "^[A-Z]{3}$", example = "EUR")]
    pub currency: Option<String>,
    /// Free text shown to both parties: at most 140 characters, no control characters.
    #[schema(value_type = String, max_length = 140, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub reference: Option<String>,
}

/// Who reads the error messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Wording {
    /// An API client: the rule only (it sent the value, it has it).
    #[default]
    Api,
    /// A person checking a file at a terminal: the offending value is
    /// quoted before the rule, and hints say what to do about the file.
    Terminal,
}

/// Longest value quoted in a [`Wording::Terminal`] message (one screen line).
const QUOTED_CHARS_MAX: usize = 40;

impl Wording {
    /// `message` about `value`, as this audience reads it.
    pub fn about(self, value: &str, message: impl std::fmt::Display) -> String {
        match self {
            Self::Api => message.to_string(),
            Self::Terminal if value.chars().count() > QUOTED_CHARS_MAX => {
                let shown: String = value.chars().take(QUOTED_CHARS_MAX).collect();
                format!("{shown:?}…: {message}")
            }
            Self::Terminal => format!("{value:?}: {message}"),
        }
    }
}

fn push(errors: &mut Vec<FieldError>, field: &str, message: impl Into<String>) {
    errors.push(FieldError::new(field, message));
}

fn required<'a>(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: &'a Option<String>,
) -> Option<&'a str> {
    let text = value.as_deref();
    if text.is_none() {
        push(errors, field, "is required");
    }
    text
}

fn account_id(
    errors: &mut Vec<FieldError>,
    wording: Wording,
    field: &str,
    value: &Option<String>,
) -> Option<Uuid> {
    let text = required(errors, field, value)?;
    match Uuid::parse_str(text) {
        Ok(id) => Some(id),
        Err(_) => {
            push(
                errors,
                field,
                wording.about(text, "must be an account id (a UUID)"),
            );
            None
        }
    }
}

/// Everything checkable without a lookup; every error of the request is
/// appended to `errors` (field order), not just the first.
pub fn validate(
    body: &TransferBody,
    wording: Wording,
    errors: &mut Vec<FieldError>,
) -> Option<TransferOrder> {
    let from = account_id(errors, wording, "from_account", &body.from_account);
    let to = account_id(errors, wording, "to_account", &body.to_account);
    let currency = required(errors, "currency", &body.currency).and_then(|c| {
        Currency::parse(c)
            .map_err(|e| push(errors, "currency", wording.about(c, e)))
            .ok()
    });
    let amount = match &body.amount {
        None => {
            push(errors, "amount", "is required");
            None
        }
        Some(serde_json::Value::String(text)) => currency.and_then(|c| {
            Amount::parse(text, c)
                .map_err(|e| push(errors, "amount", wording.about(text, e)))
                .ok()
        }),
        Some(_) => {
            push(
                errors,
                "amount",
                "must be a decimal string such as \"12.34\", not a JSON number",
            );
            None
        }
    };
    let reference = match &body.reference {
        None => None,
        Some(text) => match Reference::parse(text) {
            Ok(r) => Some(r),
            Err(e) => {
                push(errors, "reference", e.to_string());
                return None;
            }
        },
    };
    if let (Some(f), Some(t)) = (from, to)
        && f == t
    {
        push(errors, "to_account", "must differ from from_account");
    }
    if !errors.is_empty() {
        return None;
    }
    Some(TransferOrder {
        from_account: from?,
        to_account: to?,
        amount: amount?,
        currency: currency?,
        reference,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "a11ce000-0000-4000-8000-000000000001";
    const B: &str = "b0b00000-0000-4000-8000-000000000001";

    fn body(from: &str, to: &str, amount: &str, currency: &str) -> TransferBody {
        TransferBody {
            from_account: Some(from.into()),
            to_account: Some(to.into()),
            amount: Some(serde_json::Value::String(amount.into())),
            currency: Some(currency.into()),
            reference: None,
        }
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn a_valid_request_is_an_order() {
        let mut errors = Vec::new();
        let order = validate(&body(A, B, "12.50", "EUR"), Wording::Api, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            order.map(|o| o.amount.value()),
            Some(rust_decimal::Decimal::new(1250, 2))
        );
    }

    #[test]
    fn every_error_is_listed_in_field_order() {
        let mut errors = Vec::new();
        let none = validate(&TransferBody::default(), Wording::Api, &mut errors);
        assert!(none.is_none());
        assert_eq!(
            fields(&errors),
            ["from_account", "to_account", "currency", "amount"]
        );
        assert!(errors.iter().all(|e| e.message == "is required"));
        let mut errors = Vec::new();
        validate(&body(A, A, "1", "EUR"), Wording::Api, &mut errors);
        assert_eq!(errors[0].message, "must differ from from_account");
    }

    #[test]
    fn a_terminal_reads_the_value_quoted() {
        let mut api = Vec::new();
        validate(&body(A, "nope", "12.345", "EUR"), Wording::Api, &mut api);
        let mut terminal = Vec::new();
        validate(
            &body(A, "nope", "12.345", "EUR"),
            Wording::Terminal,
            &mut terminal,
        );
        assert_eq!(api[0].message, "must be an account id (a UUID)");
        assert_eq!(
            terminal[0].message,
            "\"nope\": must be an account id (a UUID)"
        );
        assert!(terminal[1].message.starts_with("\"12.345\": "));
        assert!(terminal[1].message.ends_with(&api[1].message));
        let long = "x".repeat(50);
        assert!(Wording::Terminal.about(&long, "m").ends_with("\"…: m"));
    }
}
