//! The bench's own ledger: a fresh database, a few customers each owning many
//! accounts, and every account funded generously in a few set-based
//! statements (as correct double-entry transfers: the invariants hold).

use std::time::Instant;

use anyhow::Context as _;
use rust_decimal::Decimal;
use shared::money::Currency;
use shared::transfer::{IdempotencyKey, fingerprint, transfer_id};
use sqlx::PgPool;
use uuid::Uuid;

/// Every account starts with this much (EUR): enough that uniform and hot
/// transfers of 1.00 never overdraw.
pub const FUNDS: i64 = 1_000_000;
const CHUNK: usize = 20_000;

pub struct User {
    pub name: String,
    pub id: Uuid,
}

pub struct World {
    pub users: Vec<User>,
    pub password: String,
    pub accounts: Vec<Uuid>,
    /// Index into `users` of each account's owner.
    pub owner_of: Vec<usize>,
}

pub async fn seed(
    pool: &PgPool,
    run: &str,
    users: usize,
    accounts: usize,
) -> anyhow::Result<World> {
    let started = Instant::now();
    let password = format!("bench-password-{run}");
    let created = futures::future::try_join_all((0..users).map(|i| {
        let password = password.clone();
        async move {
            let name = format!("bench{i}");
            let id = admin::create_user(pool, &name, &password, "customer").await?;
            anyhow::Ok(User { name, id })
        }
    }))
    .await
    .context("create bench users")?;
    let eur = Currency::parse("EUR").map_err(|e| anyhow::anyhow!("{e}"))?;
    let ids: Vec<Uuid> = (0..accounts).map(|_| Uuid::new_v4()).collect();
    let owner_of: Vec<usize> = (0..accounts).map(|i| i % users).collect();
    for (chunk, owners) in ids.chunks(CHUNK).zip(owner_of.chunks(CHUNK)) {
        let owners: Vec<Uuid> = owners.iter().map(|&o| created[o].id).collect();
        ledger::admin::create_accounts_bulk(pool, chunk, &owners, eur, Decimal::ZERO)
            .await
            .context("create accounts")?;
    }
    let system = ledger::admin::system_user(pool).await?;
    let funding = ledger::admin::funding_account(pool, eur).await?;
    for chunk in ids.chunks(CHUNK) {
        fund_bulk(pool, system, funding, chunk)
            .await
            .context("fund accounts")?;
    }
    eprintln!(
        "[bench] seeded {users} users, {accounts} accounts funded with {FUNDS} EUR each in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(World {
        users: created,
        password,
        accounts: ids,
        owner_of,
    })
}

/// Funds fresh (zero-balance) accounts from the funding account in one
/// transaction: the same rows `ledger::apply::apply` would write (transfers, a debit
/// and a credit entry each with its running balance, account balances and
/// versions), computed set-wise. Entry ids are assigned explicitly so the
/// funding account's running balance follows id order exactly.
async fn fund_bulk(
    pool: &PgPool,
    system: Uuid,
    funding: Uuid,
    accounts: &[Uuid],
) -> anyhow::Result<()> {
    let amount = Decimal::from(FUNDS);
    let n = accounts.len() as i64;
    let mut t_id = Vec::with_capacity(accounts.len());
    let mut t_key = Vec::with_capacity(accounts.len());
    let mut t_fp = Vec::with_capacity(accounts.len());
    for a in accounts {
        let key = format!("bench-fund-{a}");
        let k = IdempotencyKey::parse(&key).map_err(|e| anyhow::anyhow!("{e}"))?;
        t_id.push(transfer_id(system, &k));
        t_fp.push(fingerprint(funding, *a, amount, "EUR", Some("funding")).to_vec());
        t_key.push(key);
    }
    let mut tx = pool.begin().await?;
    let (f_balance, f_version): (Decimal, i64) =
        sqlx::query_as("SELECT balance, version FROM accounts WHERE id = $1 FOR UPDATE")
            .bind(funding)
            .fetch_one(&mut *tx)
            .await?;
    let seq: String = sqlx::query_scalar("SELECT pg_get_serial_sequence('entries', 'id')")
        .fetch_one(&mut *tx)
        .await?;
    // Reserve 2n ids: [base, base + 2n).
    let base: i64 = sqlx::query_scalar("SELECT nextval($1::regclass)")
        .bind(&seq)
        .fetch_one(&mut *tx)
        .await?;
    sqlx::query("SELECT setval($1::regclass, $2)")
        .bind(&seq)
        .bind(base + 2 * n - 1)
        .execute(&mut *tx)
        .await?;
    let inserted: i64 = sqlx::query_scalar(
        "WITH t AS (
            INSERT INTO transfers (id, owner_id, idempotency_key, fingerprint, from_account, to_account,
                                   amount, currency, reference, status, created_at, processed_at)
            SELECT u.id, $4, u.key, u.fp, $5, u.acc, $6, 'EUR', 'funding', 'committed', now(), now()
              FROM unnest($1::uuid[], $2::text[], $3::bytea[], $7::uuid[]) AS u(id, key, fp, acc)
            RETURNING 1
        ) SELECT count(*) FROM t",
    )
    .bind(&t_id)
    .bind(&t_key)
    .bind(&t_fp)
    .bind(system)
    .bind(funding)
    .bind(amount)
    .bind(accounts)
    .fetch_one(&mut *tx)
    .await?;
    anyhow::ensure!(
        inserted == n,
        "funding: inserted {inserted} transfers, expected {n}"
    );
    let entries: i64 = sqlx::query_scalar(
        "WITH e AS (
            INSERT INTO entries (id, transfer_id, account_id, amount, balance_after, created_at)
            OVERRIDING SYSTEM VALUE
            SELECT $3 + 2 * (u.k - 1), u.t, $4, -$5::numeric, $6::numeric - $5::numeric * u.k, now()
              FROM unnest($1::uuid[]) WITH ORDINALITY AS u(t, k)
            UNION ALL
            SELECT $3 + 2 * (u.k - 1) + 1, u.t, u.a, $5::numeric, $5::numeric, now()
              FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS u(t, a, k)
            RETURNING 1
        ) SELECT count(*) FROM e",
    )
    .bind(&t_id)
    .bind(accounts)
    .bind(base)
    .bind(funding)
    .bind(amount)
    .bind(f_balance)
    .fetch_one(&mut *tx)
    .await?;
    anyhow::ensure!(
        entries == 2 * n,
        "funding: inserted {entries} entries, expected {}",
        2 * n
    );
    let updated = sqlx::query(
        "UPDATE accounts SET balance = balance + $2, version = version + 1
          WHERE id = ANY($1) AND balance = 0",
    )
    .bind(accounts)
    .bind(amount)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    anyhow::ensure!(
        updated as i64 == n,
        "funding: {updated} accounts updated, expected {n}"
    );
    sqlx::query("UPDATE accounts SET balance = $2, version = $3 WHERE id = $1")
        .bind(funding)
        .bind(f_balance - amount * Decimal::from(n))
        .bind(f_version + n)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
