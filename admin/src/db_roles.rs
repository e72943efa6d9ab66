//! The services' PostgreSQL roles (`bankadmin migrate --roles`): one login
//! role per service with only the grants it uses, applied after the
//! migrations by the deployment's migrate job. The SQL (and why each grant)
//! is in `db_roles.sql`.

use anyhow::Context as _;
use sqlx::PgPool;

const ROLES_SQL: &str = include_str!("db_roles.sql");

/// A service's login role.
pub struct ServiceRole {
    pub name: String,
    pub password: String,
}

impl ServiceRole {
    /// `<prefix>_<service>` with the password from `<SERVICE>_DB_PASSWORD`
    /// (or `<SERVICE>_DB_PASSWORD_FILE`).
    pub fn from_env(prefix: &str, service: &str) -> anyhow::Result<Self> {
        let var = format!("{}_DB_PASSWORD", service.to_ascii_uppercase());
        let password = shared::config::secret(&var)?
            .filter(|p| !p.is_empty())
            .with_context(|| format!("--roles needs {var} (or {var}_FILE)"))?;
        Ok(Self {
            name: format!("{prefix}_{service}"),
            password,
        })
    }
}

/// Creates or updates the gateway's and the processor's roles and sets
/// their grants, in one transaction (idempotent).
pub async fn apply(
    pool: &PgPool,
    gateway: &ServiceRole,
    processor: &ServiceRole,
) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    // Passed as settings local to the transaction: a DO block takes no
    // parameters, and this keeps the passwords out of the SQL text.
    sqlx::query(
        "SELECT set_config('bank.gateway_role', $1, true),
                set_config('bank.gateway_password', $2, true),
                set_config('bank.processor_role', $3, true),
                set_config('bank.processor_password', $4, true)",
    )
    .bind(&gateway.name)
    .bind(&gateway.password)
    .bind(&processor.name)
    .bind(&processor.password)
    .execute(&mut *tx)
    .await?;
    sqlx::raw_sql(ROLES_SQL)
        .execute(&mut *tx)
        .await
        .context("db_roles.sql")?;
    tx.commit().await?;
    Ok(())
}
