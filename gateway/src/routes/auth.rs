//! `POST /v1/auth/login`, `/v1/auth/refresh`, `/v1/auth/logout` and `GET /v1/me`.
//!
//! A login returns a short-lived access JWT and an opaque refresh token
//! (256 random bits, stored only as its SHA-256). Refreshing exchanges the
//! refresh token for a new pair and marks the old one used; presenting a
//! used one again revokes every token of that login (see
//! `ledger::refresh`). Logout revokes them too.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::auth::{ACCESS_TOKEN_TTL, Role, verify_password};
use utoipa::ToSchema;
use uuid::Uuid;

use ledger::audit::Record;
use ledger::refresh::{NewToken, Rotation};
use serde_json::json;

use crate::error::ApiError;
use crate::extract::{Caller, JsonBody};
use crate::guard::RequestMeta;
use crate::responses as r;
use crate::state::SharedState;

const USERNAME_LEN_MAX: usize = 64;
/// Longer passwords are refused before hashing (hashing cost is per byte).
const PASSWORD_LEN_MAX: usize = 1024;
/// A refresh token is 43 base64url characters; anything much longer is not one.
const REFRESH_TOKEN_LEN_MAX: usize = 128;

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

/// A new access token and the refresh token to get the next one.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// HS256 JWT for `Authorization: Bearer`.
    access_token: String,
    #[schema(value_type = String, pattern = "^Bearer$", example = "Bearer")]
    token_type: &'static str,
    /// Seconds until `access_token` expires.
    #[schema(example = 900)]
    expires_in: u64,
    /// Opaque; valid once (each refresh returns a new one).
    refresh_token: String,
    /// Seconds until `refresh_token` expires (the login's remaining lifetime:
    /// refreshing does not extend it).
    #[schema(example = 28800)]
    refresh_expires_in: u64,
}

/// A new refresh token: 256 bits from the thread-local CSPRNG (ChaCha,
/// seeded by the OS), base64url. Returns the token and its SHA-256.
fn new_refresh_token() -> (String, [u8; 32]) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = refresh_hash(&token);
    (token, hash)
}

fn refresh_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The refresh token of a request body, or a 422 naming the field.
fn presented_refresh_token(body: RefreshBody) -> Result<String, ApiError> {
    match body.refresh_token {
        Some(t) if !t.is_empty() && t.len() <= REFRESH_TOKEN_LEN_MAX => Ok(t),
        _ => Err(ApiError::field(
            "refresh_token",
            format!("is required, at most {REFRESH_TOKEN_LEN_MAX} characters"),
        )),
    }
}

/// Whole seconds from now until `at` (0 if past).
fn seconds_until(at: chrono::DateTime<chrono::Utc>) -> u64 {
    u64::try_from((at - chrono::Utc::now()).num_seconds()).unwrap_or(0)
}

/// Mints the access token and returns the response with `refresh_token`.
fn tokens(
    state: &SharedState,
    user: Uuid,
    role: Role,
    refresh_token: String,
    refresh_expires_at: chrono::DateTime<chrono::Utc>,
) -> Result<(TokenResponse, shared::auth::Claims), ApiError> {
    let (token, claims) = state
        .keys
        .issue(user, role)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((
        TokenResponse {
            access_token: token,
            token_type: "Bearer",
            expires_in: ACCESS_TOKEN_TTL.as_secs(),
            refresh_token,
            refresh_expires_in: seconds_until(refresh_expires_at),
        },
        claims,
    ))
}

/// Whether `name` could be a stored username (the `users` table's CHECK).
/// Anything else is an unknown user without asking PostgreSQL, which would
/// refuse some of it (a NUL byte) with an error instead of "no such user".
fn plausible_username(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
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
    let mut errors = Vec::new();
    let username = body.username.unwrap_or_default();
    let password = body.password.unwrap_or_default();
    if username.is_empty() || username.len() > USERNAME_LEN_MAX {
        errors.push(shared::problem::FieldError {
            field: "username".into(),
            message: format!("is required, at most {USERNAME_LEN_MAX} characters"),
            line: None,
        });
    }
    if password.is_empty() || password.len() > PASSWORD_LEN_MAX {
        errors.push(shared::problem::FieldError {
            field: "password".into(),
            message: format!("is required, at most {PASSWORD_LEN_MAX} characters"),
            line: None,
        });
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let audit = |outcome: &str| meta.stamp(Record::new("login", outcome).actor(username.as_str()));

    let locked = || async {
        let lock = state
            .login_guard
            .locked(&state.redis_link, &username, &meta.ip)
            .await?;
        state.audit.record(audit("locked").detail(json!({
            "scope": lock.scope.as_str(),
            "retry_after_secs": lock.retry_after_secs,
        })));
        metrics::counter!("gateway_logins_total", "result" => "locked").increment(1);
        Some(ApiError::LoginLocked {
            retry_after_secs: lock.retry_after_secs,
        })
    };
    if let Some(refused) = locked().await {
        return Err(refused);
    }
    // argon2id takes 12 MiB and tens of milliseconds: bounded, off the
    // async threads. Unknown users are verified against a dummy hash so both
    // failures take the same time.
    let permit = state
        .login_permits
        .acquire()
        .await
        .map_err(|_| ApiError::Internal("login semaphore closed".into()))?;
    // Again: parallel guesses queue for the permit above, and failures
    // recorded meanwhile must stop them before they are checked.
    if let Some(refused) = locked().await {
        return Err(refused);
    }
    let user = if plausible_username(&username) {
        ledger::users::credentials(&state.pool, &username).await?
    } else {
        None
    };
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, hash.as_deref()))
        .await
        .map_err(|e| ApiError::Internal(format!("password check: {e}")))?;
    drop(permit);
    let verified = match user {
        Some(u) if ok => u.role().map(|role| (u, role)),
        _ => None,
    };
    let Some((user, role)) = verified else {
        metrics::counter!("gateway_logins_total", "result" => "failed").increment(1);
        state.audit.record(audit("failure"));
        let lock = state
            .login_guard
            .failed(&state.redis_link, &username, &meta.ip)
            .await;
        if let Some(lock) = lock {
            state.audit.record(
                meta.stamp(
                    Record::new("login.lockout", "locked")
                        .actor(username.as_str())
                        .detail(json!({
                            "scope": lock.scope.as_str(),
                            "retry_after_secs": lock.retry_after_secs,
                        })),
                ),
            );
        }
        return Err(ApiError::InvalidCredentials);
    };
    state
        .login_guard
        .succeeded(&state.redis_link, &username)
        .await;
    let (refresh_token, hash) = new_refresh_token();
    let family = Uuid::now_v7();
    let refresh_expires_at = chrono::Utc::now()
        + chrono::Duration::from_std(state.refresh_ttl)
            .map_err(|e| ApiError::Internal(format!("refresh lifetime: {e}")))?;
    ledger::refresh::issue(
        &state.pool,
        &NewToken {
            id: family,
            user_id: user.id,
            hash,
            family,
            expires_at: refresh_expires_at,
        },
    )
    .await?;
    let (response, claims) = tokens(&state, user.id, role, refresh_token, refresh_expires_at)?;
    state.audit.record(
        meta.stamp(
            Record::new("login", "success")
                .actor(user.id.to_string())
                .role(role.as_str())
                .target(user.id.to_string())
                // The token's id names it without revealing it; the family
                // names the session its refreshes will belong to.
                .detail(json!({
                    "username": username,
                    "jti": claims.jti.to_string(),
                    "family": family.to_string(),
                })),
        ),
    );
    metrics::counter!("gateway_logins_total", "result" => "ok").increment(1);
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
    let presented = refresh_hash(&presented_refresh_token(body)?);
    let (next_token, next_hash) = new_refresh_token();
    let rotation =
        ledger::refresh::rotate(&state.pool, &presented, Uuid::now_v7(), &next_hash).await?;
    let refused = |outcome: &str, user: Uuid, family: Uuid| {
        metrics::counter!("gateway_refreshes_total", "result" => outcome.to_owned()).increment(1);
        state.audit.record(
            meta.stamp(
                Record::new("token.refresh", outcome)
                    .actor(user.to_string())
                    .target(user.to_string())
                    .detail(json!({"family": family.to_string()})),
            ),
        );
        ApiError::InvalidRefreshToken
    };
    let (user_id, role, family, expires_at) = match rotation {
        Rotation::Rotated {
            user_id,
            role,
            family,
            expires_at,
        } => (user_id, role, family, expires_at),
        Rotation::Unknown => {
            metrics::counter!("gateway_refreshes_total", "result" => "unknown").increment(1);
            state
                .audit
                .record(meta.stamp(Record::new("token.refresh", "unknown")));
            return Err(ApiError::InvalidRefreshToken);
        }
        Rotation::Expired { user_id, family } => return Err(refused("expired", user_id, family)),
        Rotation::Revoked { user_id, family } => return Err(refused("revoked", user_id, family)),
        Rotation::Reused { user_id, family } => {
            tracing::warn!(user = %user_id, family = %family, "refresh token reused: login revoked");
            return Err(refused("reused", user_id, family));
        }
    };
    // A role that can no longer log in (the internal `system` one) cannot
    // refresh either.
    let Some(role) = Role::parse(&role) else {
        return Err(refused("refused", user_id, family));
    };
    let (response, claims) = tokens(&state, user_id, role, next_token, expires_at)?;
    metrics::counter!("gateway_refreshes_total", "result" => "ok").increment(1);
    state.audit.record(
        meta.stamp(
            Record::new("token.refresh", "success")
                .actor(user_id.to_string())
                .role(role.as_str())
                .target(user_id.to_string())
                .detail(json!({"family": family.to_string(), "jti": claims.jti.to_string()})),
        ),
    );
    Ok(Json(response))
}

/// Revokes the login the refresh token belongs to (every refresh token of
/// it). Like OAuth token revocation (RFC 7009) the answer is `204` whether
/// or not the token was valid: the caller can do nothing else about it. A
/// token of another user is left alone. The access token stays valid until
/// it expires (at most 15 minutes): it is not looked up per request.
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
    let presented = refresh_hash(&presented_refresh_token(body)?);
    let family = ledger::refresh::revoke(&state.pool, &presented, caller.id).await?;
    let record = Record::new(
        "logout",
        if family.is_some() {
            "success"
        } else {
            "unknown"
        },
    )
    .actor(caller.id.to_string())
    .role(caller.role.as_str())
    .target(caller.id.to_string());
    let record = match family {
        Some(f) => record.detail(json!({"family": f.to_string()})),
        None => record,
    };
    state.audit.record(meta.stamp(record));
    Ok(StatusCode::NO_CONTENT)
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
