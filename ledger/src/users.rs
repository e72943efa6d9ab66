//! Users: login lookup and creation.

use shared::auth::Role;
use sqlx::PgPool;
use uuid::Uuid;

use crate::LedgerError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Credentials {
    pub id: Uuid,
    pub username: String,
    pub role: String,
    pub password_hash: String,
    /// Disabled by an administrator: can neither log in nor refresh.
    pub disabled: bool,
}

impl Credentials {
    /// `None` for the internal `system` role, which cannot log in.
    pub fn role(&self) -> Option<Role> {
        Role::parse(&self.role)
    }
}

pub async fn credentials(
    pool: &PgPool,
    username: &str,
) -> Result<Option<Credentials>, LedgerError> {
    Ok(sqlx::query_as(
        "SELECT id, username, role, password_hash, disabled_at IS NOT NULL AS disabled
               FROM users WHERE username = $1",
    )
    .bind(username)
    .fetch_optional(pool)
    .await?)
}

pub async fn credentials_by_id(
    pool: &PgPool,
    id: Uuid,
) -> Result<Option<Credentials>, LedgerError> {
    Ok(sqlx::query_as(
        "SELECT id, username, role, password_hash, disabled_at IS NOT NULL AS disabled
           FROM users WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// Revokes every refresh token of `user` (every login session).
async fn revoke_all_in(tx: &mut sqlx::PgConnection, user: Uuid) -> Result<u64, LedgerError> {
    Ok(sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user)
    .execute(tx)
    .await?
    .rows_affected())
}

/// Stores a new password hash and revokes every login's refresh tokens,
/// in one transaction.
pub async fn set_password(pool: &PgPool, id: Uuid, hash: &str) -> Result<(), LedgerError> {
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE users SET password_hash = $2, password_changed_at = now() WHERE id = $1")
        .bind(id)
        .bind(hash)
        .execute(&mut *tx)
        .await?;
    revoke_all_in(&mut tx, id).await?;
    tx.commit().await?;
    Ok(())
}

/// Disables (or, with `disabled` false, enables) `username`; disabling
/// revokes every refresh token. Returns the user's id, `None` if unknown.
pub async fn set_disabled(
    pool: &PgPool,
    username: &str,
    disabled: bool,
) -> Result<Option<Uuid>, LedgerError> {
    let mut tx = pool.begin().await?;
    let id: Option<Uuid> = sqlx::query_scalar(
        "UPDATE users SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) END
          WHERE username = $1 RETURNING id",
    )
    .bind(username)
    .bind(disabled)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(id) = id
        && disabled
    {
        revoke_all_in(&mut tx, id).await?;
    }
    tx.commit().await?;
    Ok(id)
}

/// Creates a user, or returns the existing id if `username` is taken
/// (seeding is re-runnable).
pub async fn ensure(
    pool: &PgPool,
    username: &str,
    password_hash: &str,
    role: &str,
) -> Result<Uuid, LedgerError> {
    let id: Uuid = sqlx::query_scalar(
        "INSERT INTO users (id, username, password_hash, role) VALUES ($1, $2, $3, $4)
         ON CONFLICT (username) DO UPDATE SET username = EXCLUDED.username
         RETURNING id",
    )
    .bind(Uuid::now_v7())
    .bind(username)
    .bind(password_hash)
    .bind(role)
    .fetch_one(pool)
    .await?;
    Ok(id)
}

pub async fn id_by_name(pool: &PgPool, username: &str) -> Result<Option<Uuid>, LedgerError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(pool)
            .await?,
    )
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub username: String,
    pub role: String,
}

pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<UserRow>, LedgerError> {
    Ok(
        sqlx::query_as("SELECT id, username, role FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}
