//! Balance as of a moment and account statements, computed from the
//! entries alone (never from `accounts.balance`, which only knows now).
//!
//! An entry's moment is its `created_at` (when the gateway accepted the
//! transfer). A statement lists the entries with `from <= created_at <= to`
//! ordered by (`created_at`, `id`), and each row's running balance (the
//! opening balance plus the amounts so far, added up while streaming) is
//! the balance as of that row; when transfers are applied in the order
//! they were accepted (the usual case) it equals the entry's
//! `balance_after`.
//!
//! The summary and the rows are read in one REPEATABLE READ snapshot, so
//! the totals sent first (as CSV headers) always agree with the rows
//! streamed after, even while transfers keep arriving. Rows are streamed
//! from the database through a bounded channel: a year of entries is never
//! held in memory, and a slow client slows the read instead of growing a
//! buffer.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use rust_decimal::Decimal;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::LedgerError;

/// Rows read ahead of the client: enough to keep the socket busy, small
/// enough that a stalled client holds only this many in memory.
pub const ROWS_AHEAD_MAX: usize = 256;

/// The balance of `account` as of `as_of`: the sum of its entries created
/// at or before that moment (zero before the first).
pub async fn balance_as_of(
    pool: &PgPool,
    account: Uuid,
    as_of: DateTime<Utc>,
) -> Result<Decimal, LedgerError> {
    Ok(sqlx::query_scalar(
        "SELECT COALESCE(sum(amount), 0) FROM entries WHERE account_id = $1 AND created_at <= $2",
    )
    .bind(account)
    .bind(as_of)
    .fetch_one(pool)
    .await?)
}

/// The figures around a statement's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Summary {
    /// The balance just before `from`.
    pub opening: Decimal,
    /// The debits' sum as a positive amount.
    pub debits: Decimal,
    pub credits: Decimal,
    pub entry_count: i64,
}

impl Summary {
    /// The balance at `to`.
    pub fn closing(&self) -> Decimal {
        self.opening - self.debits + self.credits
    }
}

/// One row of a statement.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StatementRow {
    pub entry_id: i64,
    pub transfer_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub amount: Decimal,
    pub running_balance: Decimal,
    pub counterparty_account: Option<Uuid>,
    pub reference: Option<String>,
}

/// A statement being read: its summary, then its rows in order. The rows
/// end early with an error if the database fails half-way (the caller
/// must not present a cut statement as complete).
#[derive(Debug)]
pub struct Statement {
    pub summary: Summary,
    pub rows: mpsc::Receiver<Result<StatementRow, LedgerError>>,
}

const SUMMARY_SQL: &str = "
SELECT COALESCE(sum(amount) FILTER (WHERE created_at < $2), 0)                 AS opening,
       COALESCE(-sum(amount) FILTER (WHERE created_at >= $2 AND amount < 0), 0) AS debits,
       COALESCE(sum(amount) FILTER (WHERE created_at >= $2 AND amount > 0), 0)  AS credits,
       count(*) FILTER (WHERE created_at >= $2)                                 AS entry_count
  FROM entries
 WHERE account_id = $1 AND created_at <= $3";

// One page of rows after (created_at, id) = ($2, $3), in index order
// (account_id, created_at, id). Pages, not one query for the whole range:
// with a LIMIT the planner always walks the index in order (measured on a
// 100k-entry account: 12 ms a page), where one big query gets a bitmap
// scan and a sort that spills to disk before the first row is sent.
const PAGE_SQL: &str = "
SELECT e.id AS entry_id, e.transfer_id, e.created_at, e.amount,
       CASE WHEN t.from_account = e.account_id THEN t.to_account ELSE t.from_account END
           AS counterparty_account,
       t.reference
  FROM entries e
  LEFT JOIN transfers t ON t.id = e.transfer_id
 WHERE e.account_id = $1 AND (e.created_at, e.id) > ($2, $3) AND e.created_at <= $4
 ORDER BY e.created_at, e.id
 LIMIT $5";

/// Rows per page read from the database.
const PAGE_ROWS: i64 = 1000;

/// A row as read, before its running balance is known.
#[derive(sqlx::FromRow)]
struct EntryRow {
    entry_id: i64,
    transfer_id: Uuid,
    created_at: DateTime<Utc>,
    amount: Decimal,
    counterparty_account: Option<Uuid>,
    reference: Option<String>,
}

/// Starts reading the statement of `account` from `from` to `to` (both
/// included); returns once the summary is known, while the rows follow.
pub async fn open(
    pool: &PgPool,
    account: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Statement, LedgerError> {
    let (summary_tx, summary_rx) = oneshot::channel();
    let (rows_tx, rows) = mpsc::channel(ROWS_AHEAD_MAX);
    let pool = pool.clone();
    tokio::spawn(async move {
        if let Err(e) = read(&pool, account, from, to, summary_tx, &rows_tx).await {
            // Whoever is waiting hears it: the summary's waiter through the
            // dropped sender, the rows' reader here.
            let _ = rows_tx.send(Err(e)).await;
        }
    });
    let summary = summary_rx.await.map_err(|_| {
        LedgerError::Permanent(sqlx::Error::Protocol("statement reader stopped".into()))
    })??;
    Ok(Statement { summary, rows })
}

async fn read(
    pool: &PgPool,
    account: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    summary_tx: oneshot::Sender<Result<Summary, LedgerError>>,
    rows_tx: &mpsc::Sender<Result<StatementRow, LedgerError>>,
) -> Result<(), LedgerError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let summary: Summary = match sqlx::query_as(SUMMARY_SQL)
        .bind(account)
        .bind(from)
        .bind(to)
        .fetch_one(&mut *tx)
        .await
    {
        Ok(s) => s,
        Err(e) => {
            let _ = summary_tx.send(Err(e.into()));
            return Ok(());
        }
    };
    if summary_tx.send(Ok(summary)).is_err() {
        return Ok(()); // nobody is waiting any more
    }
    // Just before `from`: every entry at `from` is after it (ids are > 0).
    let mut after = (from, 0_i64);
    let mut running = summary.opening;
    loop {
        let mut page = sqlx::query_as::<_, EntryRow>(PAGE_SQL)
            .bind(account)
            .bind(after.0)
            .bind(after.1)
            .bind(to)
            .bind(PAGE_ROWS)
            .fetch(&mut *tx);
        let mut read = 0;
        while let Some(e) = page.try_next().await? {
            read += 1;
            running += e.amount;
            after = (e.created_at, e.entry_id);
            let row = StatementRow {
                entry_id: e.entry_id,
                transfer_id: e.transfer_id,
                created_at: e.created_at,
                amount: e.amount,
                running_balance: running,
                counterparty_account: e.counterparty_account,
                reference: e.reference,
            };
            if rows_tx.send(Ok(row)).await.is_err() {
                return Ok(()); // the client went away: stop reading
            }
        }
        if read < PAGE_ROWS {
            break;
        }
    }
    Ok(())
}
