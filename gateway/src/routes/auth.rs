//! `POST /v1/auth/login`, `/v1/auth/refresh`, `/v1/auth/logout`,
//! `/v1/auth/password` and `GET /v1/me`.
//!
//! A login returns a short-lived access JWT and an opaque refresh token
//! (256 random bits, stored only as its SHA-256). Refreshing exchanges the
//! refresh token for a new pair and marks the old one used; presenting a
//! used one again revokes every token of that login (see
//! `ledger::refresh`). Logout revokes them too.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use shared::auth::Role;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{Caller, JsonBody};
use crate::guard::RequestMeta;
use crate::responses as r;
use crate::state::SharedState;
use crate::tokens::TokenResponse;
use crate::{login, tokens};

/// Credentials. Deliberately no Debug: the password must never be printed.
#[derive(Deserialize, ToSchema)]
pub struct LoginBody {
    #[schema(required = true, value_type = String, min_length = 1, max_length = 64, example = "alice")]
    username: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, max_length = 1024, format = Password, example = "alice-dev-password")]
    password: Option<String>,
}

/// A refresh token, to exchange (`/v1/auth/refresh`) or revoke (`/v1/auth/logout`).
/// No Debug either: the token is a credential.
#[derive(Deserialize, ToSchema)]
pub struct RefreshBody {
    #[schema(required = true, value_type = String, min_length = 1, max_length = 128)]
    refresh_token: Option<String>,
}

/// Checks order, cheapest first: field validation, then the lockout (before
/// the user lookup and argon2, so a locked account costs no CPU), then the
/// password. Every attempt past validation is audited, with the username
/// tried and never the password.
#[utoipa::path(
    post,
    path = "/v1/auth/login",
    operation_id = "login",
    tag = "auth",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 413, response = r::TooLarge),
        (status = 422, response = r::Unprocessable),
        (status = 500, response = r::Internal),
    )
)]
pub async fn login(
    State(state): State<SharedState>,
    meta: RequestMeta,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Json<TokenResponse>, ApiError> {
    let response = login::login(&state, &meta, body.username, body.password).await?;
    Ok(Json(response))
}

/// Exchanges a refresh token for a new access token and refresh token. The
/// presented token becomes used; presenting it again revokes the whole
/// login (both the thief's and the owner's tokens) and is answered `401`
/// like any invalid token. Every attempt is audited (`token.refresh`).
#[utoipa::path(
    post,
    path = "/v1/auth/refresh",
    operation_id = "refreshToken",
    tag = "auth",
    request_body = RefreshBody,
    responses(
        (status = 200, description = "A new token pair; the presented refresh token is used up", body = TokenResponse),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 413, response = r::TooLarge),
        (status = 422, response = r::Unprocessable),
        (status = 500, response = r::Internal),
    )
)]
pub async fn refresh(
    State(state): State<SharedState>,
    meta: RequestMeta,
    JsonBody(body): JsonBody<RefreshBody>,
) -> Result<Json<TokenResponse>, ApiError> {
    let response = tokens::refresh(&state, &meta, body.refresh_token).await?;
    Ok(Json(response))
}

/// Revokes the login the refresh token belongs to: every refresh token of
/// it, and every access token of that session (the deny-list every gateway
/// and notifier checks; open WebSockets of the session are closed). Like
/// OAuth token revocation (RFC 7009) the answer is `204` whether or not the
/// token was valid: the caller can do nothing else about it. A token of
/// another user is left alone. `503` when the revocation cannot be shared
/// (Redis unavailable): retry.
#[utoipa::path(
    post,
    path = "/v1/auth/logout",
    operation_id = "logout",
    tag = "auth",
    request_body = RefreshBody,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The refresh token's login is revoked (or there was nothing to revoke)"),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 413, response = r::TooLarge),
        (status = 422, response = r::Unprocessable),
        (status = 500, response = r::Internal),
    )
)]
pub async fn logout(
    State(state): State<SharedState>,
    caller: Caller,
    meta: RequestMeta,
    JsonBody(body): JsonBody<RefreshBody>,
) -> Result<StatusCode, ApiError> {
    tokens::logout(&state, caller, &meta, body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A password change. No Debug: both are secrets.
#[derive(Deserialize, ToSchema)]
pub struct PasswordBody {
    #[schema(required = true, value_type = String, min_length = 1, max_length = 1024, format = Password)]
    current_password: Option<String>,
    /// At least 12 characters, at most 1024 bytes, not containing the
    /// username, not one character repeated, not the current one.
    #[schema(required = true, value_type = String, min_length = 12, max_length = 1024, format = Password)]
    new_password: Option<String>,
}

/// Changes the caller's password (argon2id) and ends every session of the
/// caller at once: all refresh tokens are revoked and every access token
/// issued before is refused by the gateway and the notifier (open
/// WebSockets are closed). Answers a new token pair, the caller's new
/// session. A wrong current password is `401` and counts as a failed login
/// (lockout); `503` when the revocation cannot be recorded (nothing changed).
#[utoipa::path(
    post,
    path = "/v1/auth/password",
    operation_id = "changePassword",
    tag = "auth",
    request_body = PasswordBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Password changed, every other session ended; a new session", body = TokenResponse),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 413, response = r::TooLarge),
        (status = 422, response = r::Unprocessable),
        (status = 500, response = r::Internal),
    )
)]
pub async fn change_password(
    State(state): State<SharedState>,
    caller: Caller,
    meta: RequestMeta,
    JsonBody(body): JsonBody<PasswordBody>,
) -> Result<Json<TokenResponse>, ApiError> {
    let response = crate::password::change(
        &state,
        caller,
        &meta,
        body.current_password,
        body.new_password,
    )
    .await?;
    Ok(Json(response))
}

/// The caller.
#[derive(Serialize, ToSchema)]
pub struct Me {
    id: Uuid,
    #[schema(example = "alice")]
    username: String,
    #[schema(value_type = Role)]
    role: &'static str,
}

#[utoipa::path(
    get,
    path = "/v1/me",
    operation_id = "getMe",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = Me),
        (status = 401, response = r::Unauthorized),
        (status = 500, response = r::Internal),
    )
)]
pub async fn me(State(state): State<SharedState>, caller: Caller) -> Result<Json<Me>, ApiError> {
    let user =
        ledger::users::get(&state.pool, caller.id)
            .await?
            .ok_or(ApiError::Unauthenticated(
                "the token's user no longer exists",
            ))?;
    Ok(Json(Me {
        id: user.id,
        username: user.username,
        role: caller.role.as_str(),
    }))
}
