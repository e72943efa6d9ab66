//! Token pairs: minting the access token, and the opaque refresh tokens
//! (256 random bits, stored only as their SHA-256) that are exchanged once
//! each (`refresh`) or revoked with their whole login (`logout`).
//!
//! Presenting a used refresh token again revokes every token of that login
//! (see `ledger::refresh`): a stolen token and its owner's race ends both.

use base64::Engine as _;
use ledger::audit::Record;
use ledger::refresh::Rotation;
use rand::Rng as _;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use shared::auth::{ACCESS_TOKEN_TTL, Role};
use shared::revocation::{self, Revoked};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::Caller;
use crate::guard::RequestMeta;
use crate::state::SharedState;

/// A refresh token is 43 base64url characters; anything much longer is not one.
const REFRESH_TOKEN_LEN_MAX: usize = 128;

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
pub fn new_refresh_token() -> (String, [u8; 32]) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = refresh_hash(&token);
    (token, hash)
}

pub fn refresh_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The refresh token of a request body, or a 422 naming the field.
fn presented_refresh_token(token: Option<String>) -> Result<String, ApiError> {
    match token {
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

/// Mints the access token of session `sid` (the login's refresh-token
/// family) and returns the response with `refresh_token`.
pub fn mint(
    state: &SharedState,
    user: Uuid,
    role: Role,
    sid: Uuid,
    refresh_token: String,
    refresh_expires_at: chrono::DateTime<chrono::Utc>,
) -> Result<(TokenResponse, shared::auth::Claims), ApiError> {
    let (token, claims) = state
        .keys
        .issue_in(user, role, sid)
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

/// Exchanges the presented refresh token for a new pair (audited as
/// `token.refresh`, whatever the outcome).
pub async fn refresh(
    state: &SharedState,
    meta: &RequestMeta,
    token: Option<String>,
) -> Result<TokenResponse, ApiError> {
    let presented = refresh_hash(&presented_refresh_token(token)?);
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
    let (response, claims) = mint(state, user_id, role, family, next_token, expires_at)?;
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
    Ok(response)
}

/// Ends `r` everywhere: here at once, in Redis for the other replicas and
/// the notifiers. `503` if Redis cannot be told (the caller retries: every
/// revocation is idempotent).
pub async fn revoke(state: &SharedState, r: Revoked) -> Result<(), ApiError> {
    state.revocations.note(r);
    let prefix = state.redis_prefix.clone();
    state
        .redis_link
        .run("revocation", |mut conn| async move {
            revocation::publish(&mut conn, &prefix, r).await
        })
        .await
        .ok_or_else(|| {
            ApiError::Unavailable("cannot record the revocation (Redis unavailable); retry".into())
        })
}

/// Revokes the login `token` belongs to, if it is one of the caller's
/// (audited as `logout`): its refresh tokens in PostgreSQL, its access
/// tokens through the deny-list.
pub async fn logout(
    state: &SharedState,
    caller: Caller,
    meta: &RequestMeta,
    token: Option<String>,
) -> Result<(), ApiError> {
    let presented = refresh_hash(&presented_refresh_token(token)?);
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
        Some(f) => record.detail(json!({"family": f.to_string(), "sid": f.to_string()})),
        None => record,
    };
    state.audit.record(meta.stamp(record));
    match family {
        Some(sid) => revoke(state, Revoked::Session(sid)).await,
        None => Ok(()),
    }
}
