//! The audit record: one audited event as the application describes it,
//! and how it is made storable exactly as it will be hashed.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::micros;

/// Longest text kept in any field (longer input is cut, never refused: the
/// audit trail records what an attacker sent, within reason).
pub(super) const TEXT_LEN_MAX: usize = 256;

/// One audited event, before it is chained.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Record {
    pub at: DateTime<Utc>,
    /// A user id, the username a failed login tried, or bankadmin's operator.
    pub actor: Option<String>,
    pub role: Option<String>,
    /// `login`, `login.lockout`, `token.refresh`, `logout`, `transfer.submit`,
    /// `batch.submit`, `admin.*`.
    pub action: String,
    pub target: Option<String>,
    /// `success`/`failure`/`locked` for logins; `success`/`unknown`/
    /// `expired`/`revoked`/`reused`/`refused` for refreshes; `success`/
    /// `unknown` for logouts; `accepted`/`replayed`/`refused`/`error` for
    /// submissions; `ok`/`error` for admin actions.
    pub outcome: String,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    /// Strings and integers only (see [`Record::sanitize`]).
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

impl Record {
    pub fn new(action: &str, outcome: &str) -> Self {
        Self {
            at: Utc::now(),
            actor: None,
            role: None,
            action: action.to_owned(),
            target: None,
            outcome: outcome.to_owned(),
            ip: None,
            request_id: None,
            detail: serde_json::Value::Object(Default::default()),
        }
    }

    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(role.into());
        self
    }

    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }

    /// Makes the record storable exactly as hashed: PostgreSQL keeps
    /// microseconds, refuses NUL in text and jsonb, and jsonb may print a
    /// fraction differently than it was sent (so fractions become strings).
    pub fn sanitize(&mut self) {
        self.at = micros(self.at);
        for field in [
            &mut self.actor,
            &mut self.role,
            &mut self.target,
            &mut self.ip,
            &mut self.request_id,
        ]
        .into_iter()
        .flatten()
        {
            clean(field);
        }
        clean(&mut self.action);
        clean(&mut self.outcome);
        clean_json(&mut self.detail);
    }
}

fn clean(text: &mut String) {
    if text.contains('\0') {
        *text = text.replace('\0', "\u{FFFD}");
    }
    if text.chars().count() > TEXT_LEN_MAX {
        *text = text.chars().take(TEXT_LEN_MAX).collect();
    }
}

fn clean_json(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(s) => clean(s),
        Value::Number(n) if !(n.is_i64() || n.is_u64()) => {
            *value = Value::String(n.to_string());
        }
        Value::Array(items) => items.iter_mut().for_each(clean_json),
        Value::Object(map) => map.values_mut().for_each(clean_json),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_makes_records_storable() {
        let mut r = Record::new("login", "failure")
            .actor(format!("a\0b{}", "x".repeat(400)))
            .detail(serde_json::json!({"f": 1.5, "i": 7, "s": "\0"}));
        r.sanitize();
        let actor = r.actor.clone().unwrap();
        assert!(!actor.contains('\0'));
        assert_eq!(actor.chars().count(), TEXT_LEN_MAX);
        assert_eq!(
            r.detail,
            serde_json::json!({"f": "1.5", "i": 7, "s": "\u{FFFD}"})
        );
        assert_eq!(r.at.timestamp_subsec_nanos() % 1000, 0);
    }
}
