//! The one way transfers are written: rows gathered column by column and
//! inserted set-based (`unnest` of one array per column), whatever the
//! path — a decided batch, an aborted atomic batch, a dead-lettered
//! transfer. One statement per batch, however many rows.
//!
//! Why one builder: the INSERT used to be written three times with the
//! columns in three orders, one of them 25 positional binds added out of
//! order; the atomic abort inserted its rows one round trip at a time.
//! Here the column list, the array types and the bind order are written
//! once, in the table's column order.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use shared::transfer::{RejectReason, TransferStatus};
use sqlx::PgConnection;
use sqlx::postgres::PgArguments;
use uuid::Uuid;

use shared::hold::Op;

use super::{Stages, TransferRequest};
use crate::{LedgerError, micros};

/// `INSERT INTO transfers … SELECT * FROM unnest($1 … $21) <conflict>
/// RETURNING 1`: binds $1..$21 are [`TransferRows`]' columns in order. A
/// macro so the statement can be composed into others at compile time
/// (`concat!`).
macro_rules! insert_transfers {
    ($on_conflict:literal) => {
        concat!(
            "INSERT INTO transfers (id, owner_id, idempotency_key, fingerprint, from_account,
                       to_account, amount, currency, reference, status, reason,
                       created_at, processed_at, published_at, received_at, trace_id,
                       batch_id, batch_line, hold_id, reverses, reversal_reason)
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bytea[], $5::uuid[],
                         $6::uuid[], $7::numeric[], $8::text[], $9::text[], $10::text[],
                         $11::text[], $12::timestamptz[], $13::timestamptz[],
                         $14::timestamptz[], $15::timestamptz[], $16::text[], $17::uuid[],
                         $18::int4[], $19::uuid[], $20::uuid[], $21::text[])",
            $on_conflict,
            "
    RETURNING 1"
        )
    };
}

/// Transfers only (the atomic abort, dead letters): how many were new;
/// an id stored already is left as it is.
const INSERT_TRANSFERS_SQL: &str = concat!(
    "WITH t AS (",
    insert_transfers!(
        "
    ON CONFLICT (id) DO NOTHING"
    ),
    ") SELECT count(*) FROM t"
);

/// A decided batch in one statement: transfers ($1..$21), entries
/// ($22..$26), new balances and holds ($27..$30). Data-modifying CTEs always run to
/// completion; the counts let the caller verify every row landed.
///
/// No `ON CONFLICT` here: the batch's ids were looked up under its account
/// locks, so an id stored meanwhile is a race (see `lock_accounts`), and a
/// unique violation ends the statement as a conflict to retry
/// ([`write_batch`]). Speculative insertion would cost every row an extra
/// look into the primary key for a case that aborts the batch anyway.
const WRITE_BATCH_SQL: &str = concat!(
    "WITH t AS (",
    insert_transfers!(""),
    "), e AS (
    INSERT INTO entries (transfer_id, account_id, amount, balance_after, created_at)
    SELECT * FROM unnest($22::uuid[], $23::uuid[], $24::numeric[], $25::numeric[],
                         $26::timestamptz[])
    RETURNING 1
), a AS (
    UPDATE accounts SET balance = u.balance, version = u.version, held = u.held
    FROM unnest($27::uuid[], $28::numeric[], $29::bigint[], $30::numeric[])
         AS u(id, balance, version, held)
    WHERE accounts.id = u.id
    RETURNING 1
)
SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM e), (SELECT count(*) FROM a)"
);

type PgQueryAs<'q, O> = sqlx::query::QueryAs<'q, sqlx::Postgres, O, PgArguments>;

/// Transfer rows to insert, one vector per column, in the table's order.
#[derive(Debug, Default)]
pub(super) struct TransferRows {
    id: Vec<Uuid>,
    owner_id: Vec<Uuid>,
    idempotency_key: Vec<String>,
    fingerprint: Vec<Vec<u8>>,
    from_account: Vec<Uuid>,
    to_account: Vec<Uuid>,
    amount: Vec<Decimal>,
    currency: Vec<String>,
    reference: Vec<Option<String>>,
    status: Vec<&'static str>,
    reason: Vec<Option<&'static str>>,
    created_at: Vec<DateTime<Utc>>,
    processed_at: Vec<DateTime<Utc>>,
    published_at: Vec<Option<DateTime<Utc>>>,
    received_at: Vec<Option<DateTime<Utc>>>,
    trace_id: Vec<Option<String>>,
    batch_id: Vec<Option<Uuid>>,
    batch_line: Vec<Option<i32>>,
    hold_id: Vec<Option<Uuid>>,
    reverses: Vec<Option<Uuid>>,
    reversal_reason: Vec<Option<String>>,
}

impl TransferRows {
    /// Adds `r` (whose fingerprint is `fingerprint`) as decided: `reason`
    /// is `None` for a committed transfer.
    pub(super) fn push(
        &mut self,
        r: &TransferRequest,
        fingerprint: Vec<u8>,
        reason: Option<RejectReason>,
        processed_at: DateTime<Utc>,
        stages: &Stages,
    ) {
        let status = match reason {
            None => TransferStatus::Committed,
            Some(_) => TransferStatus::Rejected,
        };
        self.id.push(r.id);
        self.owner_id.push(r.owner);
        self.idempotency_key.push(r.idempotency_key.clone());
        self.fingerprint.push(fingerprint);
        self.from_account.push(r.from_account);
        self.to_account.push(r.to_account);
        self.amount.push(r.amount);
        self.currency.push(r.currency.clone());
        self.reference.push(r.reference.clone());
        self.status.push(status.as_str());
        self.reason.push(reason.map(|x| x.as_str()));
        self.created_at.push(micros(r.accepted_at));
        self.processed_at.push(processed_at);
        self.published_at.push(stages.published_at.map(micros));
        self.received_at.push(stages.received_at.map(micros));
        self.trace_id.push(stages.trace_id.clone());
        self.batch_id.push(stages.batch.map(|b| b.0));
        self.batch_line.push(stages.batch.map(|b| b.1));
        self.hold_id
            .push(r.hold_id.filter(|_| r.op == Op::HoldCapture));
        self.reverses.push(r.reverses);
        self.reversal_reason.push(r.reversal_reason.clone());
    }

    /// Adds `r` rejected without being decided (aborted or given up on):
    /// the request is stored as sent, its currency cut to the column's
    /// three characters so an odd request still gets a final answer.
    pub(super) fn push_refused(
        &mut self,
        r: &TransferRequest,
        reason: RejectReason,
        processed_at: DateTime<Utc>,
        stages: &Stages,
    ) {
        self.push(
            r,
            r.fingerprint().to_vec(),
            Some(reason),
            processed_at,
            stages,
        );
        if let Some(last) = self.currency.last_mut() {
            *last = last.chars().take(3).collect();
        }
    }

    pub(super) fn len(&self) -> usize {
        self.id.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.id.is_empty()
    }

    /// Binds $1..$21.
    fn bind<'q, O>(&'q self, q: PgQueryAs<'q, O>) -> PgQueryAs<'q, O> {
        q.bind(&self.id)
            .bind(&self.owner_id)
            .bind(&self.idempotency_key)
            .bind(&self.fingerprint)
            .bind(&self.from_account)
            .bind(&self.to_account)
            .bind(&self.amount)
            .bind(&self.currency)
            .bind(&self.reference)
            .bind(&self.status)
            .bind(&self.reason)
            .bind(&self.created_at)
            .bind(&self.processed_at)
            .bind(&self.published_at)
            .bind(&self.received_at)
            .bind(&self.trace_id)
            .bind(&self.batch_id)
            .bind(&self.batch_line)
            .bind(&self.hold_id)
            .bind(&self.reverses)
            .bind(&self.reversal_reason)
    }

    /// Inserts the rows (existing ids are left alone); returns how many
    /// were new.
    pub(super) async fn insert(&self, conn: &mut PgConnection) -> Result<u64, LedgerError> {
        if self.is_empty() {
            return Ok(0);
        }
        let (inserted,): (i64,) = self
            .bind(sqlx::query_as(INSERT_TRANSFERS_SQL))
            .fetch_one(conn)
            .await?;
        Ok(u64::try_from(inserted).unwrap_or(0))
    }
}

/// Ledger entries of the committed transfers, one vector per column.
#[derive(Debug, Default)]
pub(super) struct EntryRows {
    transfer_id: Vec<Uuid>,
    account_id: Vec<Uuid>,
    amount: Vec<Decimal>,
    balance_after: Vec<Decimal>,
    created_at: Vec<DateTime<Utc>>,
}

impl EntryRows {
    /// The debit and the credit of one committed transfer, with the
    /// balances they leave.
    pub(super) fn push_pair(
        &mut self,
        transfer: Uuid,
        debit: (Uuid, Decimal, Decimal),
        credit: (Uuid, Decimal, Decimal),
        at: DateTime<Utc>,
    ) {
        // Double entry: what leaves one account arrives in the other.
        debug_assert_eq!(debit.1 + credit.1, Decimal::ZERO, "entries sum to zero");
        debug_assert!(debit.1 < Decimal::ZERO, "the debit is negative");
        for (account, amount, balance_after) in [debit, credit] {
            self.transfer_id.push(transfer);
            self.account_id.push(account);
            self.amount.push(amount);
            self.balance_after.push(balance_after);
            self.created_at.push(at);
        }
    }

    pub(super) fn len(&self) -> usize {
        self.transfer_id.len()
    }

    /// The sum of every entry: zero when each transfer's pair balances.
    pub(super) fn sum(&self) -> Decimal {
        self.amount.iter().sum()
    }
}

/// New balance and version of each changed account.
#[derive(Debug, Default)]
pub(super) struct BalanceUpdates {
    pub(super) id: Vec<Uuid>,
    pub(super) balance: Vec<Decimal>,
    pub(super) version: Vec<i64>,
    pub(super) held: Vec<Decimal>,
}

/// What [`write_batch`] wrote: (transfers, entries, accounts).
pub(super) type Written = (usize, usize, usize);

/// Writes a decided batch in one statement; returns the row counts.
pub(super) async fn write_batch(
    conn: &mut PgConnection,
    transfers: &TransferRows,
    entries: &EntryRows,
    balances: &BalanceUpdates,
) -> Result<Written, LedgerError> {
    let (t, e, a): (i64, i64, i64) = transfers
        .bind(sqlx::query_as(WRITE_BATCH_SQL))
        .bind(&entries.transfer_id)
        .bind(&entries.account_id)
        .bind(&entries.amount)
        .bind(&entries.balance_after)
        .bind(&entries.created_at)
        .bind(&balances.id)
        .bind(&balances.balance)
        .bind(&balances.version)
        .bind(&balances.held)
        .fetch_one(conn)
        .await
        .map_err(|e| match e.as_database_error() {
            Some(db) if db.constraint() == Some("transfers_pkey") => {
                LedgerError::Conflict("a transfer id of the batch was stored concurrently".into())
            }
            _ => LedgerError::from(e),
        })?;
    let count = |n: i64| usize::try_from(n).unwrap_or(usize::MAX);
    Ok((count(t), count(e), count(a)))
}
