//! Administration of the ledger: migrations, demo data, users, accounts and
//! funding. Money enters the ledger only here, through per-currency funding
//! accounts, so per-currency totals stay zero. Every action (and every
//! failed attempt) is written to the audit trail.

pub mod db_roles;

use std::str::FromStr;

use anyhow::Context as _;
use rust_decimal::Decimal;
use shared::auth::hash_password;
use shared::money::{Amount, Currency};
use shared::transfer::IdempotencyKey;
use sqlx::PgPool;
use uuid::Uuid;

/// A demo user: name, password, role.
pub const DEMO_USERS: [(&str, &str, &str); 5] = [
    ("alice", "alice-dev-password", "customer"),
    ("bob", "bob-dev-password", "customer"),
    ("batch", "batch-dev-password", "batch"),
    ("ops", "ops-dev-password", "ops"),
    ("rita", "rita-dev-password", "reverser"),
];

/// Demo accounts with fixed, recognisable ids: owner, id, currency, funding.
pub const DEMO_ACCOUNTS: [(&str, &str, &str, &str); 5] = [
    (
        "alice",
        "a11ce000-0000-4000-8000-000000000001",
        "EUR",
        "10000.00",
    ),
    (
        "alice",
        "a11ce000-0000-4000-8000-000000000002",
        "USD",
        "5000.00",
    ),
    (
        "bob",
        "b0b00000-0000-4000-8000-000000000001",
        "EUR",
        "2500.00",
    ),
    (
        "bob",
        "b0b00000-0000-4000-8000-000000000002",
        "USD",
        "1000.00",
    ),
    (
        "batch",
        "ba7c0000-0000-4000-8000-000000000001",
        "EUR",
        "1000000.00",
    ),
];

async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await?
        .map_err(|e| anyhow::anyhow!(e))
}

/// Who runs bankadmin, for the audit trail: the OS account (the database
/// role is usually shared), e.g. `bankadmin:alice`.
pub fn operator() -> String {
    let user = ["BANKADMIN_OPERATOR", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| shared::config::var(v));
    match user {
        Some(u) => format!("bankadmin:{u}"),
        None => "bankadmin".into(),
    }
}

/// Records an admin action with its outcome. The action has already
/// happened (or failed): if the audit row cannot be written, the command
/// fails loudly so the operator knows the trail is missing it.
async fn audited<T>(
    pool: &PgPool,
    action: &str,
    target: String,
    detail: serde_json::Value,
    result: anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut record =
        ledger::audit::Record::new(action, if result.is_ok() { "ok" } else { "error" })
            .actor(operator())
            .role("admin")
            .target(target)
            .detail(detail);
    if let Err(e) = &result
        && let serde_json::Value::Object(map) = &mut record.detail
    {
        map.insert("error".into(), format!("{e:#}").into());
    }
    ledger::audit::append(pool, &[record])
        .await
        .context("write the audit record")?;
    result
}

/// Creates a user (or keeps the existing one) and returns its id.
pub async fn create_user(
    pool: &PgPool,
    name: &str,
    password: &str,
    role: &str,
) -> anyhow::Result<Uuid> {
    let result = async {
        if shared::auth::Role::parse(role).is_none() {
            anyhow::bail!("role must be customer, batch, ops or reverser, not {role:?}");
        }
        let hash = hash(password.to_owned()).await?;
        Ok(ledger::users::ensure(pool, name, &hash, role).await?)
    }
    .await;
    // Never the password, nor its hash.
    let detail = match &result {
        Ok(id) => serde_json::json!({"role": role, "user_id": id.to_string()}),
        Err(_) => serde_json::json!({"role": role}),
    };
    audited(pool, "admin.create_user", name.to_owned(), detail, result).await
}

/// Disables `name` (or enables it again): a disabled user can neither log
/// in nor refresh, and every session it has ends at once — its refresh
/// tokens in PostgreSQL, its access tokens through the deny-list in Redis
/// (`shared::revocation`), which the gateways and notifiers follow. If
/// Redis cannot be told, the command fails after disabling in PostgreSQL:
/// run it again (it is idempotent) once Redis is back.
pub async fn set_user_disabled(
    pool: &PgPool,
    name: &str,
    disabled: bool,
    redis_url: &str,
    redis_prefix: &str,
) -> anyhow::Result<Uuid> {
    let action = if disabled {
        "admin.disable_user"
    } else {
        "admin.enable_user"
    };
    let result = async {
        let id = ledger::users::set_disabled(pool, name, disabled)
            .await?
            .with_context(|| format!("no user {name:?}"))?;
        if disabled {
            let before_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            let mut conn = shared::tls::redis_client(redis_url)?
                .get_multiplexed_async_connection()
                .await
                .context("Redis (the user is disabled in PostgreSQL; run again to end its access tokens)")?;
            shared::revocation::publish(
                &mut conn,
                redis_prefix,
                shared::revocation::Revoked::User { id, before_ms },
            )
            .await
            .context("Redis (the user is disabled in PostgreSQL; run again to end its access tokens)")?;
        }
        Ok(id)
    }
    .await;
    let detail = match &result {
        Ok(id) => serde_json::json!({"user_id": id.to_string()}),
        Err(_) => serde_json::json!({}),
    };
    audited(pool, action, name.to_owned(), detail, result).await
}

pub async fn create_account(
    pool: &PgPool,
    owner: &str,
    id: Uuid,
    currency: &str,
    overdraft_limit: Decimal,
) -> anyhow::Result<Uuid> {
    let result = create_account_unaudited(pool, owner, id, currency, overdraft_limit).await;
    let detail = serde_json::json!({
        "owner": owner,
        "currency": currency,
        "overdraft_limit": overdraft_limit.to_string(),
    });
    audited(pool, "admin.create_account", id.to_string(), detail, result).await
}

async fn create_account_unaudited(
    pool: &PgPool,
    owner: &str,
    id: Uuid,
    currency: &str,
    overdraft_limit: Decimal,
) -> anyhow::Result<Uuid> {
    let currency = Currency::parse(currency).map_err(|e| anyhow::anyhow!("currency: {e}"))?;
    let owner = ledger::users::id_by_name(pool, owner)
        .await?
        .with_context(|| format!("no user {owner:?}"))?;
    if overdraft_limit < Decimal::ZERO {
        anyhow::bail!("overdraft limit must be zero or more");
    }
    Ok(ledger::admin::create_account(pool, id, owner, currency, overdraft_limit).await?)
}

/// Moves `amount` from the funding account into `account`, once per `key`.
pub async fn fund(pool: &PgPool, account: Uuid, amount: &str, key: &str) -> anyhow::Result<()> {
    let result = fund_unaudited(pool, account, amount, key).await;
    let detail = match &result {
        Ok(outcome) => serde_json::json!({"amount": amount, "key": key, "result": outcome}),
        Err(_) => serde_json::json!({"amount": amount, "key": key}),
    };
    audited(
        pool,
        "admin.fund",
        account.to_string(),
        detail,
        result.map(|_| ()),
    )
    .await
}

/// What happened: `committed`, `rejected`, `duplicate` (the key was used
/// before: nothing moved) or `key_reused`.
async fn fund_unaudited(
    pool: &PgPool,
    account: Uuid,
    amount: &str,
    key: &str,
) -> anyhow::Result<&'static str> {
    let row = ledger::accounts::get(pool, account)
        .await?
        .with_context(|| format!("no account {account}"))?;
    let currency = Currency::parse(&row.currency).map_err(|e| anyhow::anyhow!("{e}"))?;
    let amount = Amount::parse(amount, currency).map_err(|e| anyhow::anyhow!("amount: {e}"))?;
    let key = IdempotencyKey::parse(key).map_err(|e| anyhow::anyhow!("key: {e}"))?;
    let outcome = ledger::admin::fund(pool, account, currency, amount.value(), &key).await?;
    tracing::info!(%account, ?outcome, "funded");
    Ok(match outcome {
        ledger::apply::Outcome::Committed => "committed",
        ledger::apply::Outcome::Rejected(_) => "rejected",
        ledger::apply::Outcome::Duplicate => "duplicate",
        ledger::apply::Outcome::KeyReused => "key_reused",
    })
}

/// Loads the demo users and accounts (re-runnable: nothing is duplicated).
pub async fn seed_demo(pool: &PgPool) -> anyhow::Result<()> {
    for (name, password, role) in DEMO_USERS {
        create_user(pool, name, password, role).await?;
    }
    for (owner, id, currency, funds) in DEMO_ACCOUNTS {
        let id = Uuid::from_str(id)?;
        create_account(pool, owner, id, currency, Decimal::ZERO).await?;
        fund(pool, id, funds, &format!("demo-seed-{id}")).await?;
    }
    Ok(())
}

/// Walks the audit chain: `Ok` with a summary (row count and head hash, to
/// record elsewhere) when intact, an error naming the first broken row.
pub async fn verify_audit(pool: &PgPool) -> anyhow::Result<String> {
    match ledger::audit::verify(pool).await? {
        ledger::audit::Verification::Intact { rows, head } => Ok(format!(
            "audit chain intact: {rows} rows, head {}",
            ledger::audit::hex(&head)
        )),
        ledger::audit::Verification::Broken { id, reason } => {
            anyhow::bail!("audit chain broken at row {id}: {reason}")
        }
    }
}
