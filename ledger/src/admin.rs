//! Administration: the system user, funding accounts, customer accounts and
//! funding them. Money enters the ledger only here, and only as an ordinary
//! double-entry transfer from a per-currency funding account.

use chrono::Utc;
use rust_decimal::Decimal;
use shared::money::Currency;
use shared::transfer::{IdempotencyKey, transfer_id};
use sqlx::PgPool;
use uuid::Uuid;

use crate::LedgerError;
use crate::apply::{Mode, Outcome, TransferRequest, apply};

/// Owner of the funding accounts. Its role `system` cannot log in.
pub const SYSTEM_USERNAME: &str = "bank";
/// A funding account may go this far negative: 10^19, far beyond any
/// realistic issuance yet inside NUMERIC(24,4).
const FUNDING_OVERDRAFT: Decimal = Decimal::from_parts(0x89E8_0000, 0x8AC7_2304, 0, false, 0);

const FUNDING_NAMESPACE: Uuid = Uuid::from_u128(0x0f0e_5a1d_7c3b_4e2a_8d11_2b9c_6a4f_f002);

/// The system user's id (created on first use).
pub async fn system_user(pool: &PgPool) -> Result<Uuid, LedgerError> {
    // "!" is not a PHC string: no password can ever match it.
    crate::users::ensure(pool, SYSTEM_USERNAME, "!", "system").await
}

/// The funding account for `currency` (deterministic id, created on first use).
pub async fn funding_account(pool: &PgPool, currency: Currency) -> Result<Uuid, LedgerError> {
    let owner = system_user(pool).await?;
    let id = Uuid::new_v5(&FUNDING_NAMESPACE, currency.code().as_bytes());
    sqlx::query(
        "INSERT INTO accounts (id, owner_id, currency, overdraft_limit, kind)
         VALUES ($1, $2, $3, $4, 'funding') ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(owner)
    .bind(currency.code())
    .bind(FUNDING_OVERDRAFT)
    .execute(pool)
    .await?;
    Ok(id)
}

/// Creates a customer account with a chosen id (idempotent on the id).
pub async fn create_account(
    pool: &PgPool,
    id: Uuid,
    owner: Uuid,
    currency: Currency,
    overdraft_limit: Decimal,
) -> Result<Uuid, LedgerError> {
    sqlx::query(
        "INSERT INTO accounts (id, owner_id, currency, overdraft_limit) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(owner)
    .bind(currency.code())
    .bind(overdraft_limit)
    .execute(pool)
    .await?;
    Ok(id)
}

/// Creates many accounts in one statement (benchmarks and the checker seed
/// hundreds of thousands).
pub async fn create_accounts_bulk(
    pool: &PgPool,
    ids: &[Uuid],
    owners: &[Uuid],
    currency: Currency,
    overdraft_limit: Decimal,
) -> Result<u64, LedgerError> {
    let done = sqlx::query(
        "INSERT INTO accounts (id, owner_id, currency, overdraft_limit)
         SELECT u.id, u.owner, $3, $4 FROM unnest($1::uuid[], $2::uuid[]) AS u(id, owner)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(ids)
    .bind(owners)
    .bind(currency.code())
    .bind(overdraft_limit)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// A funding transfer request: from the currency's funding account to
/// `account`, idempotent on `key`.
pub fn funding_request(
    system: Uuid,
    funding: Uuid,
    account: Uuid,
    currency: Currency,
    amount: Decimal,
    key: &IdempotencyKey,
) -> TransferRequest {
    TransferRequest::transfer(
        transfer_id(system, key),
        system,
        key.as_str().to_owned(),
        funding,
        account,
        amount,
        currency.code().to_owned(),
        Some("funding".into()),
        Utc::now(),
    )
}

/// Funds `account` with `amount`; running it again with the same `key`
/// changes nothing.
pub async fn fund(
    pool: &PgPool,
    account: Uuid,
    currency: Currency,
    amount: Decimal,
    key: &IdempotencyKey,
) -> Result<Outcome, LedgerError> {
    let system = system_user(pool).await?;
    let funding = funding_account(pool, currency).await?;
    let request = funding_request(system, funding, account, currency, amount, key);
    let applied = apply(pool, &[request], &[], Mode::Independent).await?;
    Ok(applied
        .outcomes
        .first()
        .copied()
        .unwrap_or(Outcome::Duplicate))
}
