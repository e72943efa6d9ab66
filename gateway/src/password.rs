//! `POST /v1/auth/password`: the caller changes their password, which ends
//! every session they have (other devices, a thief's copy of a token) and
//! starts a new one for the caller.
//!
//! Order matters: the revocation is recorded in Redis first, so that when
//! Redis is away nothing changes (`503`, retry) rather than a new password
//! with the old sessions still alive. Then the hash is stored and every
//! refresh token revoked (one transaction), then a new session is opened
//! strictly after the cut-off (sessions are told apart by the millisecond
//! of their UUIDv7 id). A wrong current password counts as a failed login
//! for the lockout. Every attempt is audited (`password.change`).

use std::time::Duration;

use ledger::audit::Record;
use serde_json::json;
use shared::auth::{PASSWORD_LEN_MAX, check_new_password, hash_password, verify_password};
use shared::problem::FieldError;
use shared::revocation::Revoked;

use crate::error::ApiError;
use crate::extract::Caller;
use crate::guard::RequestMeta;
use crate::login::start_session;
use crate::redis_link::now_ms;
use crate::state::SharedState;
use crate::tokens::{self, TokenResponse};

pub async fn change(
    state: &SharedState,
    caller: Caller,
    meta: &RequestMeta,
    current: Option<String>,
    new: Option<String>,
) -> Result<TokenResponse, ApiError> {
    let current = current.unwrap_or_default();
    let new = new.unwrap_or_default();
    let user = ledger::users::credentials_by_id(&state.pool, caller.id)
        .await?
        .ok_or(ApiError::Unauthenticated(
            "the token's user no longer exists",
        ))?;
    let mut errors = Vec::new();
    if current.is_empty() || current.len() > PASSWORD_LEN_MAX {
        errors.push(FieldError::new(
            "current_password",
            format!("is required, at most {PASSWORD_LEN_MAX} bytes"),
        ));
    }
    if let Err(e) = check_new_password(&new, &user.username) {
        errors.push(FieldError::new("new_password", e));
    } else if new == current {
        errors.push(FieldError::new(
            "new_password",
            "must differ from the current password",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let audit = |outcome: &str| {
        meta.stamp(
            Record::new("password.change", outcome)
                .actor(caller.id.to_string())
                .role(caller.role.as_str())
                .target(caller.id.to_string()),
        )
    };
    if let Some(lock) = state
        .login_guard
        .locked(&state.redis_link, &user.username, &meta.ip)
        .await
    {
        state.audit.record(audit("locked"));
        return Err(ApiError::LoginLocked {
            retry_after_secs: lock.retry_after_secs,
        });
    }
    let permit = state
        .login_permits
        .acquire()
        .await
        .map_err(|_| ApiError::Internal("login semaphore closed".into()))?;
    let stored = user.password_hash.clone();
    let hashed = tokio::task::spawn_blocking(move || {
        verify_password(&current, Some(&stored)).then(|| hash_password(&new))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("password check: {e}")))?;
    drop(permit);
    let Some(hashed) = hashed else {
        state.audit.record(audit("failure"));
        let _ = state
            .login_guard
            .failed(&state.redis_link, &user.username, &meta.ip)
            .await;
        return Err(ApiError::Unauthenticated("current_password is wrong"));
    };
    let hash = hashed.map_err(|e| ApiError::Internal(e.to_string()))?;
    let cutoff = now_ms();
    tokens::revoke(
        state,
        Revoked::User {
            id: caller.id,
            before_ms: cutoff,
        },
    )
    .await?;
    ledger::users::set_password(&state.pool, caller.id, &hash).await?;
    // The new session must start after the cut-off to survive it.
    while now_ms() <= cutoff {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let (response, claims, sid) = start_session(state, caller.id, caller.role).await?;
    state.audit.record(audit("success").detail(json!({
        "revoked_before_ms": cutoff,
        "sid": sid.to_string(),
        "jti": claims.jti.to_string(),
    })));
    Ok(response)
}
