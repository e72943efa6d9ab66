//! Request extractors: the authenticated caller, JSON bodies and the
//! Idempotency-Key header, each failing with a problem+json response.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use shared::auth::{JwtKeys, Role};
use shared::transfer::IdempotencyKey;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::SharedState;

/// The user behind a valid bearer token.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub id: Uuid,
    pub role: Role,
}

impl Caller {
    /// Only roles that move money may call money-moving endpoints.
    pub fn require_mover(&self) -> Result<(), ApiError> {
        match self.role {
            Role::Customer | Role::Batch => Ok(()),
            Role::Ops => Err(ApiError::Forbidden(
                "the ops role reads and never moves money",
            )),
            Role::Reverser => Err(ApiError::Forbidden(
                "the reverser role reverses transfers and sends none",
            )),
        }
    }

    /// Only the reverser role may reverse a transfer.
    pub fn require_reverser(&self) -> Result<(), ApiError> {
        match self.role {
            Role::Reverser => Ok(()),
            _ => Err(ApiError::Forbidden(
                "only the reverser role may reverse transfers",
            )),
        }
    }

    /// Whether the caller reads everyone's data (ops, reversers).
    pub fn reads_all(&self) -> bool {
        matches!(self.role, Role::Ops | Role::Reverser)
    }

    /// Whether the caller may read data owned by `owner`.
    pub fn may_read(&self, owner: Uuid) -> bool {
        self.reads_all() || self.id == owner
    }
}

impl Caller {
    /// The caller named by a valid `Authorization: Bearer` token. Tokens are
    /// read from that header only: never from the query string or cookies.
    pub fn from_headers(headers: &HeaderMap, keys: &JwtKeys) -> Result<Self, ApiError> {
        let header =
            headers
                .get(axum::http::header::AUTHORIZATION)
                .ok_or(ApiError::Unauthenticated(
                    "missing Authorization: Bearer token",
                ))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthenticated(
                "Authorization must be `Bearer <token>`",
            ))?;
        let claims = keys
            .verify(token.trim())
            .map_err(|_| ApiError::Unauthenticated("the token is invalid or expired"))?;
        Ok(Self {
            id: claims.sub,
            role: claims.role,
        })
    }
}

impl FromRequestParts<SharedState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        // Already verified by the guard middleware.
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(*caller);
        }
        Self::from_headers(&parts.headers, &state.keys)
    }
}

/// The `{id}` segment of a path, as text (handlers decide what an unknown
/// id means). A segment axum cannot decode (invalid UTF-8 once
/// percent-decoded) names nothing that exists: `404` like any unknown id,
/// as problem+json (axum's own rejection would be a plain-text `400`).
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(id)| Self(id))
            .map_err(|e| ApiError::NotFound(format!("no such resource: {}", e.body_text())))
    }
}

/// A JSON body; any parse failure is a 400 problem naming what was wrong.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<SharedState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &SharedState) -> Result<Self, Self::Rejection> {
        if let Some(ct) = req.headers().get(axum::http::header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("");
            if !ct.starts_with("application/json") && !ct.ends_with("+json") {
                return Err(ApiError::MalformedBody(
                    "Content-Type must be application/json".into(),
                ));
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            // Over the body limit is 413, whatever else went wrong is 400.
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge(e.body_text())
            } else {
                ApiError::MalformedBody(e.body_text())
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::MalformedBody(e.to_string()))
    }
}

/// The required `Idempotency-Key` header.
pub fn idempotency_key(headers: &HeaderMap) -> Result<IdempotencyKey, ApiError> {
    let raw = headers
        .get("idempotency-key")
        .ok_or_else(|| ApiError::field("Idempotency-Key", "the header is required"))?;
    let text = raw
        .to_str()
        .map_err(|_| ApiError::field("Idempotency-Key", "must be visible ASCII"))?;
    IdempotencyKey::parse(text).map_err(|e| ApiError::field("Idempotency-Key", e.to_string()))
}

/// A transfer id from a path: one that is not a UUID names no transfer.
pub fn parse_transfer_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| ApiError::NotFound(format!("no transfer with id {text:?}")))
}
