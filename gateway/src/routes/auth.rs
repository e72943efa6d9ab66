//! `POST /v1/auth/login` and `GET /v1/me`.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use shared::auth::{ACCESS_TOKEN_TTL, verify_password};
use uuid::Uuid;

use ledger::audit::Record;
use serde_json::json;

use crate::error::ApiError;
use crate::extract::{Caller, JsonBody};
use crate::guard::RequestMeta;
use crate::state::SharedState;

const USERNAME_LEN_MAX: usize = 64;
/// Longer passwords are refused before hashing (hashing cost is per byte).
const PASSWORD_LEN_MAX: usize = 1024;

#[derive(Deserialize)]
pub struct LoginBody {
    username: Option<String>,
    password: Option<String>,
}

// Deliberately no Debug: the password must never be printed.

#[derive(Serialize)]
pub struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
}

/// Checks order, cheapest first: field validation, then the lockout (before
/// the user lookup and argon2, so a locked account costs no CPU), then the
/// password. Every attempt past validation is audited, with the username
/// tried and never the password.
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
    // argon2id takes ~19 MiB and tens of milliseconds: bounded, off the
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
    let user = ledger::users::credentials(&state.pool, &username).await?;
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
    let (token, claims) = state
        .keys
        .issue(user.id, role)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    state.audit.record(
        meta.stamp(
            Record::new("login", "success")
                .actor(user.id.to_string())
                .role(role.as_str())
                .target(user.id.to_string())
                // The token's id names it without revealing it.
                .detail(json!({"username": username, "jti": claims.jti.to_string()})),
        ),
    );
    metrics::counter!("gateway_logins_total", "result" => "ok").increment(1);
    Ok(Json(TokenResponse {
        access_token: token,
        token_type: "Bearer",
        expires_in: ACCESS_TOKEN_TTL.as_secs(),
    }))
}

#[derive(Serialize)]
pub struct Me {
    id: Uuid,
    username: String,
    role: &'static str,
}

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
