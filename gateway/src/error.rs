//! Every way a request can fail, mapped to an RFC 9457 response in one place.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ledger::LedgerError;
use shared::problem::{FieldError, PROBLEM_TYPE_BASE, Problem};

/// Whose quota ran out (named in the 429's detail and in metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
    /// An authenticated user's requests.
    User,
    /// A client address's requests (or failed logins).
    Ip,
    /// Failed logins for one username.
    Username,
}

impl LimitScope {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Ip => "ip",
            Self::Username => "username",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    #[error("the body is not valid JSON for this endpoint: {0}")]
    MalformedBody(String),
    #[error("{0}")]
    Unauthenticated(&'static str),
    #[error("unknown user or wrong password")]
    InvalidCredentials,
    /// Unknown, expired, revoked or already used: one answer for all, so a
    /// caller learns nothing about other people's tokens.
    #[error("the refresh token is invalid, expired or revoked; log in again")]
    InvalidRefreshToken,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(String),
    /// A query parameter that cannot be used: 400, naming it.
    #[error("query parameter `{param}` {message}")]
    BadParameter {
        param: &'static str,
        message: String,
    },
    #[error("{detail}")]
    Unprocessable {
        slug: &'static str,
        title: &'static str,
        detail: String,
        field: &'static str,
    },
    #[error("this Idempotency-Key was already used with a different request")]
    KeyReused,
    #[error("a request with this Idempotency-Key is still being processed")]
    InProgress,
    #[error("{0}")]
    Unavailable(String),
    /// Back-pressure: more work is queued than the processors clear within
    /// the budget (or the queue is full); nothing was accepted.
    #[error(
        "more transfers are queued than can be applied promptly; nothing was accepted, retry in {retry_after_secs} s"
    )]
    Backlog { retry_after_secs: u64 },
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    TooMany(String),
    #[error("too many requests from this {}; retry in {retry_after_secs} s", if *scope == LimitScope::Ip { "address" } else { "user" })]
    RateLimited {
        scope: LimitScope,
        retry_after_secs: u64,
    },
    /// A role's budget (`customer.moves`, `batch.moves`, `ops.reads`…).
    #[error("the {quota} quota is spent; retry in {retry_after_secs} s")]
    QuotaExceeded {
        quota: String,
        retry_after_secs: u64,
    },
    /// The session of the token was revoked (logout, password change, user
    /// disabled).
    #[error("the session was ended (logout, password change or account disabled); log in again")]
    Revoked,
    /// Login throttling. The same answer whether or not the username exists.
    #[error("too many failed logins; retry in {retry_after_secs} s")]
    LoginLocked { retry_after_secs: u64 },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError {
            field: field.to_owned(),
            message: message.into(),
            line: None,
        }])
    }

    /// Status and problem slug, for the audit trail.
    pub fn summary(&self) -> (u16, String) {
        let p = self.problem();
        let slug = p.kind.strip_prefix(PROBLEM_TYPE_BASE).unwrap_or(&p.kind);
        (p.status, slug.to_owned())
    }

    fn problem(&self) -> Problem {
        use StatusCode as S;
        let detail = self.to_string();
        match self {
            Self::Validation(errors) => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "validation",
                "Invalid request",
                "One or more fields are invalid; see `errors`.",
            )
            .with_errors(errors.clone()),
            Self::MalformedBody(_) => Problem::new(
                S::BAD_REQUEST,
                "malformed-body",
                "Malformed request body",
                detail,
            ),
            Self::Unauthenticated(_) => Problem::unauthorized(detail),
            Self::InvalidCredentials => Problem::unauthorized(detail),
            Self::InvalidRefreshToken => Problem::unauthorized(detail),
            Self::Forbidden(_) => Problem::new(S::FORBIDDEN, "forbidden", "Forbidden", detail),
            Self::NotFound(_) => Problem::new(S::NOT_FOUND, "not-found", "Not found", detail),
            Self::BadParameter { param, message } => Problem::new(
                S::BAD_REQUEST,
                "bad-parameter",
                "Bad query parameter",
                detail.clone(),
            )
            .with_errors(vec![FieldError {
                field: (*param).to_owned(),
                message: message.clone(),
                line: None,
            }]),
            Self::Unprocessable {
                slug,
                title,
                detail,
                field,
            } => Problem::new(S::UNPROCESSABLE_ENTITY, slug, title, detail.clone()).with_errors(
                vec![FieldError {
                    field: (*field).to_owned(),
                    message: detail.clone(),
                    line: None,
                }],
            ),
            Self::KeyReused => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                detail,
            ),
            Self::InProgress => Problem::new(
                S::CONFLICT,
                "request-in-progress",
                "Request in progress",
                format!("{detail}; retry shortly"),
            )
            .retry_after(1),
            Self::Unavailable(_) => Problem::new(
                S::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
                detail,
            )
            .retry_after(1),
            Self::Backlog { retry_after_secs } => Problem::new(
                S::SERVICE_UNAVAILABLE,
                "backlog",
                "Too much work queued",
                detail,
            )
            .retry_after(*retry_after_secs),
            Self::TooLarge(_) => Problem::new(
                S::PAYLOAD_TOO_LARGE,
                "too-large",
                "Request too large",
                detail,
            ),
            Self::Unsupported(_) => Problem::new(
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                detail,
            ),
            Self::TooMany(_) => Problem::new(
                S::TOO_MANY_REQUESTS,
                "too-many-requests",
                "Too many requests",
                detail,
            )
            .retry_after(5),
            Self::RateLimited {
                scope,
                retry_after_secs,
            } => Problem::new(
                S::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
                detail,
            )
            .quota(format!("{}.requests", scope.as_str()))
            .retry_after(*retry_after_secs),
            Self::QuotaExceeded {
                quota,
                retry_after_secs,
            } => Problem::new(
                S::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
                detail,
            )
            .quota(quota.clone())
            .retry_after(*retry_after_secs),
            Self::Revoked => Problem::unauthorized(detail),
            Self::LoginLocked { retry_after_secs } => Problem::new(
                S::TOO_MANY_REQUESTS,
                "login-locked",
                "Too many failed logins",
                detail,
            )
            .retry_after(*retry_after_secs),
            Self::Ledger(e) if e.is_transient() => Problem::new(
                S::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
                "the ledger database is unavailable; retry shortly",
            )
            .retry_after(1),
            Self::Ledger(_) | Self::Internal(_) => Problem::new(
                S::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                "an unexpected error occurred; it has been logged",
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        // A shed answer is the overload protection working, not a failure:
        // under overload there are thousands a second, and an ERROR line
        // each cost CPU the processors needed and buried real errors.
        // `gateway_shed_total{reason}` counts them.
        if problem.status >= 500 && !matches!(self, Self::Backlog { .. }) {
            tracing::error!(error = %self, status = problem.status, "request failed");
        } else {
            tracing::debug!(error = %self, status = problem.status, "request refused");
        }
        problem.into_response()
    }
}
