//! Administration of the ledger: migrations, demo data, users, accounts and
//! funding. Money enters the ledger only here, through per-currency funding
//! accounts, so per-currency totals stay zero.

use std::str::FromStr;

use anyhow::Context as _;
use rust_decimal::Decimal;
use shared::auth::hash_password;
use shared::money::{Amount, Currency};
use shared::transfer::IdempotencyKey;
use sqlx::PgPool;
use uuid::Uuid;

/// A demo user: name, password, role.
pub const DEMO_USERS: [(&str, &str, &str); 4] = [
    ("alice", "alice-dev-password", "customer"),
    ("bob", "bob-dev-password", "customer"),
    ("batch", "batch-dev-password", "batch"),
    ("ops", "ops-dev-password", "ops"),
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

/// Creates a user (or keeps the existing one) and returns its id.
pub async fn create_user(
    pool: &PgPool,
    name: &str,
    password: &str,
    role: &str,
) -> anyhow::Result<Uuid> {
    if shared::auth::Role::parse(role).is_none() {
        anyhow::bail!("role must be customer, batch or ops, not {role:?}");
    }
    let hash = hash(password.to_owned()).await?;
    Ok(ledger::users::ensure(pool, name, &hash, role).await?)
}

pub async fn create_account(
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
    let row = ledger::accounts::get(pool, account)
        .await?
        .with_context(|| format!("no account {account}"))?;
    let currency = Currency::parse(&row.currency).map_err(|e| anyhow::anyhow!("{e}"))?;
    let amount = Amount::parse(amount, currency).map_err(|e| anyhow::anyhow!("amount: {e}"))?;
    let key = IdempotencyKey::parse(key).map_err(|e| anyhow::anyhow!("key: {e}"))?;
    let outcome = ledger::admin::fund(pool, account, currency, amount.value(), &key).await?;
    tracing::info!(%account, ?outcome, "funded");
    Ok(())
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
