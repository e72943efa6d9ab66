//! Refresh tokens (`refresh_tokens`): issued at login, rotated on every
//! refresh, revoked as a family on reuse or logout.
//!
//! Only the SHA-256 of a token is stored; callers hash before calling. The
//! row of the presented token is locked (`FOR UPDATE`) for the whole
//! decision, so two concurrent refreshes with one token cannot both rotate
//! it: the second sees it used and revokes the family, exactly as a thief's
//! replay would.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::LedgerError;

/// Most expired rows one [`issue`] purges: bounded work per login.
const PURGE_MAX: i64 = 100;

/// A token to store.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub id: Uuid,
    pub user_id: Uuid,
    pub hash: [u8; 32],
    pub family: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// Stores a freshly issued token (a new family at login) and purges a few
/// long-expired ones.
pub async fn issue(pool: &PgPool, token: &NewToken) -> Result<(), LedgerError> {
    sqlx::query(
        "INSERT INTO refresh_tokens (id, user_id, hash, family, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token.id)
    .bind(token.user_id)
    .bind(token.hash.as_slice())
    .bind(token.family)
    .bind(token.expires_at)
    .execute(pool)
    .await?;
    // Expired rows are kept a day (to tell "expired" from "unknown" in the
    // audit trail for a while), then purged a few at a time.
    sqlx::query(
        "DELETE FROM refresh_tokens WHERE id IN (
             SELECT id FROM refresh_tokens
              WHERE expires_at < now() - interval '1 day' LIMIT $1)",
    )
    .bind(PURGE_MAX)
    .execute(pool)
    .await?;
    Ok(())
}

/// What presenting a refresh token led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was valid: it is now used, and `next` (same family, same
    /// expiry) replaces it. `role` is the user's role as stored now.
    Rotated {
        user_id: Uuid,
        role: String,
        family: Uuid,
        expires_at: DateTime<Utc>,
    },
    /// No such token (never issued, or purged).
    Unknown,
    /// Past its expiry.
    Expired { user_id: Uuid, family: Uuid },
    /// Its family was revoked earlier (logout or a detected reuse).
    Revoked { user_id: Uuid, family: Uuid },
    /// Already used once: the family has just been revoked.
    Reused { user_id: Uuid, family: Uuid },
}

#[derive(sqlx::FromRow)]
struct Presented {
    user_id: Uuid,
    family: Uuid,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    role: String,
    disabled: bool,
}

/// Rotates the token whose hash is `presented`: on success it is marked used
/// and `next` (whose `user_id`, `family` and `expires_at` are taken from the
/// presented token) is stored, in one transaction.
pub async fn rotate(
    pool: &PgPool,
    presented: &[u8; 32],
    next_id: Uuid,
    next_hash: &[u8; 32],
) -> Result<Rotation, LedgerError> {
    let mut tx = pool.begin().await?;
    let row: Option<Presented> = sqlx::query_as(
        "SELECT t.user_id, t.family, t.expires_at, t.used_at, t.revoked_at, u.role,
                u.disabled_at IS NOT NULL AS disabled
           FROM refresh_tokens t JOIN users u ON u.id = t.user_id
          WHERE t.hash = $1
            FOR UPDATE OF t",
    )
    .bind(presented.as_slice())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(Rotation::Unknown);
    };
    let (user_id, family) = (row.user_id, row.family);
    // A disabled user's tokens were revoked when it was disabled; this
    // also covers a token issued in a race with that.
    if row.revoked_at.is_some() || row.disabled {
        return Ok(Rotation::Revoked { user_id, family });
    }
    if row.used_at.is_some() {
        // Someone replays a token that was already exchanged: whoever holds
        // the newer one may be the thief. End the whole login.
        revoke_family_in(&mut tx, family).await?;
        tx.commit().await?;
        return Ok(Rotation::Reused { user_id, family });
    }
    if row.expires_at <= Utc::now() {
        return Ok(Rotation::Expired { user_id, family });
    }
    sqlx::query("UPDATE refresh_tokens SET used_at = now() WHERE hash = $1")
        .bind(presented.as_slice())
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO refresh_tokens (id, user_id, hash, family, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(next_id)
    .bind(user_id)
    .bind(next_hash.as_slice())
    .bind(family)
    .bind(row.expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Rotation::Rotated {
        user_id,
        role: row.role,
        family,
        expires_at: row.expires_at,
    })
}

async fn revoke_family_in(tx: &mut sqlx::PgConnection, family: Uuid) -> Result<u64, LedgerError> {
    Ok(sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now()
          WHERE family = $1 AND revoked_at IS NULL",
    )
    .bind(family)
    .execute(tx)
    .await?
    .rows_affected())
}

/// Logout: revokes the family of the token whose hash is `presented`, if
/// that token belongs to `user_id`. Returns the family, or `None` when the
/// token is unknown or someone else's (nothing is changed then). Revoking
/// an already revoked family is not an error: logging out twice is fine.
pub async fn revoke(
    pool: &PgPool,
    presented: &[u8; 32],
    user_id: Uuid,
) -> Result<Option<Uuid>, LedgerError> {
    let mut tx = pool.begin().await?;
    let family: Option<Uuid> = sqlx::query_scalar(
        "SELECT family FROM refresh_tokens WHERE hash = $1 AND user_id = $2 FOR UPDATE",
    )
    .bind(presented.as_slice())
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(family) = family else {
        return Ok(None);
    };
    revoke_family_in(&mut tx, family).await?;
    tx.commit().await?;
    Ok(Some(family))
}
