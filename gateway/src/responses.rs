//! The responses the operations share: the `202 Accepted` of a
//! money-moving request, and the problem+json error responses as reusable
//! OpenAPI components (`#/components/responses/<Name>`).
//!
//! Apart from `openapi.rs` so that a route can name its error responses
//! without importing the document that imports every route.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use utoipa::ToResponse;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr, ResponseBuilder};

pub use shared::problem::PROBLEM_JSON;

/// The header saying a response answers an earlier request with the same
/// Idempotency-Key (value `true`).
pub const REPLAYED: &str = "idempotent-replayed";

/// `202 Accepted` with `body`, `Location: location` and, when `replayed`,
/// `Idempotent-Replayed: true`.
pub fn accepted(body: &impl Serialize, location: &str, replayed: bool) -> Response {
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, location);
    }
    if replayed {
        headers.insert(REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

/// A problem+json response; `retry_after` adds the `Retry-After` header.
fn problem(description: &str, retry_after: bool) -> RefOr<utoipa::openapi::Response> {
    let mut response = ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    );
    if retry_after {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(0)),
                ))
                .description(Some("Seconds to wait before retrying"))
                .build(),
        );
    }
    RefOr::T(response.build())
}

macro_rules! problem_response {
    ($name:ident, $description:expr, $retry_after:expr) => {
        pub struct $name;
        impl<'r> ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<utoipa::openapi::Response>) {
                (stringify!($name), problem($description, $retry_after))
            }
        }
    };
}

problem_response!(
    BadRequest,
    "Malformed request: a body that is not JSON for this endpoint, a wrong Content-Type, or a query string that cannot be read",
    false
);
problem_response!(
    Unauthorized,
    "No valid credentials: a missing, malformed, forged or expired bearer token (or, for login and refresh, wrong credentials); `WWW-Authenticate: Bearer`",
    false
);
problem_response!(
    Forbidden,
    "Authenticated, but this role or account may not do this",
    false
);
problem_response!(
    NotFound,
    "No such resource visible to the caller (other people's resources look the same as missing ones)",
    false
);
problem_response!(
    Conflict,
    "A request with the same Idempotency-Key is still being processed; retry",
    true
);
problem_response!(
    TooLarge,
    "The body is over the size limit (64 KiB; batch uploads 32 MiB)",
    false
);
problem_response!(
    UnsupportedMediaType,
    "The Content-Type is not one this endpoint reads",
    false
);
problem_response!(
    Unprocessable,
    "Invalid fields (listed in `errors`), or a well-formed request the bank refuses (unknown destination, currency mismatch, Idempotency-Key reused with another body)",
    false
);
problem_response!(
    TooManyRequests,
    "A rate limit (per user, per address), the login lockout, or too many uploads at once",
    true
);
problem_response!(
    Internal,
    "An unexpected error (logged; the detail says nothing more)",
    false
);
problem_response!(
    Unavailable,
    "A dependency (PostgreSQL, JetStream) is unavailable, the request timed out, or (type `backlog`) more transfers are queued than the processors clear within the budget; nothing was done, retry after `Retry-After` with the same Idempotency-Key",
    true
);
