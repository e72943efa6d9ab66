//! Logging in: field checks, the lockout, the password, then a new login
//! (a refresh-token family) and its first token pair.
//!
//! Checks run cheapest first: field validation, then the lockout (before
//! the user lookup and argon2, so a locked account costs no CPU), then the
//! password. Every attempt past validation is audited, with the username
//! tried and never the password.

use ledger::audit::Record;
use ledger::refresh::NewToken;
use serde_json::json;
use shared::auth::verify_password;
use shared::problem::FieldError;
use uuid::Uuid;

use crate::error::ApiError;
use crate::guard::RequestMeta;
use crate::state::SharedState;
use crate::tokens::{self, TokenResponse};

/// Longest username (the `users` table's limit).
const USERNAME_LEN_MAX: usize = 64;
/// Longer passwords are refused before hashing (hashing cost is per byte).
const PASSWORD_LEN_MAX: usize = 1024;
/// Whether `name` could be a stored username (the `users` table's CHECK).
/// Anything else is an unknown user without asking PostgreSQL, which would
/// refuse some of it (a NUL byte) with an error instead of "no such user".
fn plausible_username(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
}

/// Logs `username` in with `password`.
pub async fn login(
    state: &SharedState,
    meta: &RequestMeta,
    username: Option<String>,
    password: Option<String>,
) -> Result<TokenResponse, ApiError> {
    let mut errors = Vec::new();
    let username = username.unwrap_or_default();
    let password = password.unwrap_or_default();
    if username.is_empty() || username.len() > USERNAME_LEN_MAX {
        errors.push(FieldError {
            field: "username".into(),
            message: format!("is required, at most {USERNAME_LEN_MAX} characters"),
            line: None,
        });
    }
    if password.is_empty() || password.len() > PASSWORD_LEN_MAX {
        errors.push(FieldError {
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
    // A disabled user gets the same answer as a wrong password (audited
    // apart), after the same work.
    if ok && user.as_ref().is_some_and(|u| u.disabled) {
        metrics::counter!("gateway_logins_total", "result" => "disabled").increment(1);
        state.audit.record(audit("disabled"));
        return Err(ApiError::InvalidCredentials);
    }
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
    let (response, claims, family) = start_session(state, user.id, role).await?;
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
                    "sid": family.to_string(),
                })),
        ),
    );
    metrics::counter!("gateway_logins_total", "result" => "ok").increment(1);
    Ok(response)
}

/// A new login session (a refresh-token family, whose id is the session id
/// of its access tokens) and its first token pair.
pub async fn start_session(
    state: &SharedState,
    user: Uuid,
    role: shared::auth::Role,
) -> Result<(TokenResponse, shared::auth::Claims, Uuid), ApiError> {
    let (refresh_token, hash) = tokens::new_refresh_token();
    let family = Uuid::now_v7();
    let refresh_expires_at = chrono::Utc::now()
        + chrono::Duration::from_std(state.refresh_ttl)
            .map_err(|e| ApiError::Internal(format!("refresh lifetime: {e}")))?;
    ledger::refresh::issue(
        &state.pool,
        &NewToken {
            id: family,
            user_id: user,
            hash,
            family,
            expires_at: refresh_expires_at,
        },
    )
    .await?;
    let (response, claims) =
        tokens::mint(state, user, role, family, refresh_token, refresh_expires_at)?;
    Ok((response, claims, family))
}
