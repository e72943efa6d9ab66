//! Users: login lookup and creation.

use shared::auth::Role;
use sqlx::PgPool;
use uuid::Uuid;

use crate::LedgerError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Credentials {
    pub id: Uuid,
    pub role: String,
    pub password_hash: String,
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
    Ok(
        sqlx::query_as("SELECT id, role, password_hash FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(pool)
            .await?,
    )
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
