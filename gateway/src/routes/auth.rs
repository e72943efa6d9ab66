//! `POST /v1/auth/login` and `GET /v1/me`.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use shared::auth::{ACCESS_TOKEN_TTL, verify_password};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{Caller, JsonBody};
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

pub async fn login(
    State(state): State<SharedState>,
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

    let user = ledger::users::credentials(&state.pool, &username).await?;
    // argon2id takes ~19 MiB and tens of milliseconds: bounded, off the
    // async threads. Unknown users are verified against a dummy hash so both
    // failures take the same time.
    let permit = state
        .login_permits
        .acquire()
        .await
        .map_err(|_| ApiError::Internal("login semaphore closed".into()))?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, hash.as_deref()))
        .await
        .map_err(|e| ApiError::Internal(format!("password check: {e}")))?;
    drop(permit);
    let (user, role) = match user {
        Some(u) if ok => match u.role() {
            Some(role) => (u, role),
            None => return Err(ApiError::InvalidCredentials),
        },
        _ => {
            metrics::counter!("gateway_logins_total", "result" => "failed").increment(1);
            return Err(ApiError::InvalidCredentials);
        }
    };
    let (token, _) = state
        .keys
        .issue(user.id, role)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
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
