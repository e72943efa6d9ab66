//! RFC 9457 problem details, the body of every error response.
//!
//! The data types are serde-only so a client (bankctl) reads the very type
//! the gateway writes, without pulling in a web framework; turning a problem
//! into an axum response is behind the `http` feature. Reading is lenient
//! (a missing member defaults) because a client must make sense of whatever
//! a proxy in between answered; the schema still says what the gateway sends.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Base of the `type` URIs; each problem kind has a stable slug under it.
pub const PROBLEM_TYPE_BASE: &str = "https://bank.example/problems/";

/// The media type of a problem body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    /// JSON field or header name, e.g. `amount` or `Idempotency-Key`.
    #[serde(default)]
    #[schema(required = true)]
    pub field: String,
    #[serde(default)]
    #[schema(required = true)]
    pub message: String,
    /// 1-based line of an uploaded file (batches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub line: Option<u64>,
}

impl FieldError {
    /// An error about `field` (no line).
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            line: None,
        }
    }

    /// An error about `field` on `line` of an uploaded file.
    pub fn on_line(line: u64, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            line: Some(line),
            ..Self::new(field, message)
        }
    }
}

/// An RFC 9457 problem: the body of every error response
/// (`application/problem+json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// `https://bank.example/problems/<slug>`: stable, machine-readable.
    #[serde(rename = "type", default)]
    #[schema(
        required = true,
        format = "uri",
        example = "https://bank.example/problems/validation"
    )]
    pub kind: String,
    #[serde(default)]
    #[schema(required = true)]
    pub title: String,
    /// The HTTP status, repeated.
    #[serde(default)]
    #[schema(required = true, minimum = 400, maximum = 599)]
    pub status: u16,
    #[serde(default)]
    #[schema(required = true)]
    pub detail: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The quota that ran out (`429` only), e.g. `customer.moves`,
    /// `batch.moves`, `ops.reads`, `user.requests` or `ip.requests`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "customer.moves")]
    pub quota: Option<String>,
    /// Seconds to wait before retrying (also sent as `Retry-After`).
    #[serde(skip)]
    pub retry_after_secs: Option<u64>,
}

impl Problem {
    /// `status` is an HTTP status code (`axum::http::StatusCode` converts).
    pub fn new(status: impl Into<u16>, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("{PROBLEM_TYPE_BASE}{slug}"),
            title: title.to_owned(),
            status: status.into(),
            detail: detail.into(),
            errors: Vec::new(),
            quota: None,
            retry_after_secs: None,
        }
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    pub fn quota(mut self, quota: impl Into<String>) -> Self {
        self.quota = Some(quota.into());
        self
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(401u16, "unauthorized", "Unauthorized", detail)
    }
}

/// `Title (status): detail`, the way a person reads it.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.title, self.status)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

#[cfg(feature = "http")]
mod response {
    use axum::http::{HeaderValue, StatusCode, header};
    use axum::response::{IntoResponse, Response};

    use super::{PROBLEM_JSON, Problem};

    impl IntoResponse for Problem {
        fn into_response(self) -> Response {
            let status =
                StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = serde_json::to_vec(&self).unwrap_or_default();
            let mut res = (status, body).into_response();
            let h = res.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
            if let Some(secs) = self.retry_after_secs {
                h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            if status == StatusCode::UNAUTHORIZED {
                h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            res
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_body_is_read_with_defaults() {
        let p: Problem =
            serde_json::from_str(r#"{"title":"Bad","errors":[{"field":"x"}]}"#).expect("lenient");
        assert_eq!((p.title.as_str(), p.status), ("Bad", 0));
        assert_eq!(p.errors[0].message, "");
        assert_eq!(p.to_string(), "Bad (0)");
    }

    #[test]
    fn written_as_rfc_9457() {
        let p = Problem::new(422u16, "validation", "Invalid", "see errors")
            .with_errors(vec![FieldError::on_line(3, "amount", "too small")])
            .retry_after(5);
        let v = serde_json::to_value(&p).expect("serializes");
        assert_eq!(v["type"], format!("{PROBLEM_TYPE_BASE}validation"));
        assert_eq!(v["errors"][0]["line"], 3);
        assert!(v.get("retry_after_secs").is_none());
        assert_eq!(p.to_string(), "Invalid (422): see errors");
    }
}
