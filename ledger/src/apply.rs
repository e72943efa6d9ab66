//! The batched double-entry apply: many transfers, one transaction.
//!
//! 1. Lock every account the batch touches, once, in id order
//!    (`ORDER BY id FOR UPDATE`): two batches can never wait on each other in
//!    a cycle, so there are no deadlocks however many run at once.
//! 2. Read which transfer ids already exist (redeliveries and retries). Any
//!    transaction that applied one of them held the same account locks, so
//!    after step 1 this read is settled.
//! 3. Decide each transfer in batch order in memory: a transfer that would
//!    overdraw is rejected on its own, the others commit.
//! 4. Write everything in one statement: transfers (`ON CONFLICT DO NOTHING`),
//!    entries, and each account's new balance once.
//! 5. Check the write counts against the decisions; on any mismatch roll back
//!    and report a conflict (the caller retries).
//!
//! Five round trips per batch, whatever its size.

use crate::micros;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use shared::messages::{AccountResult, AccountView, TransferResult, TransferView};
use shared::money::{Amount, Currency};
use shared::transfer::{RejectReason, TransferStatus, fingerprint};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::LedgerError;
use crate::transfers::{TRANSFER_COLUMNS, TransferRow};

/// A transfer to apply, as decoded from the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRequest {
    pub id: Uuid,
    pub owner: Uuid,
    pub idempotency_key: String,
    pub from_account: Uuid,
    pub to_account: Uuid,
    pub amount: Decimal,
    pub currency: String,
    pub reference: Option<String>,
    pub accepted_at: DateTime<Utc>,
}

impl TransferRequest {
    pub fn fingerprint(&self) -> [u8; 32] {
        fingerprint(
            self.from_account,
            self.to_account,
            self.amount,
            &self.currency,
            self.reference.as_deref(),
        )
    }
}

/// What happened to one request of the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Committed,
    Rejected(RejectReason),
    /// Already applied earlier (redelivery or retry): nothing moved now; the
    /// stored result is re-emitted.
    Duplicate,
    /// The id exists with a different request body: nothing moved now.
    KeyReused,
}

/// The result of a batch: one outcome and view per request (input order),
/// and the final state of every account a committed transfer touched.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub outcomes: Vec<Outcome>,
    pub transfers: Vec<TransferResult>,
    pub accounts: Vec<AccountResult>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct LockedAccount {
    id: Uuid,
    owner_id: Uuid,
    currency: String,
    balance: Decimal,
    overdraft_limit: Decimal,
    version: i64,
    created_at: DateTime<Utc>,
}

/// Mutable view of a locked account while the batch is decided.
#[derive(Debug, Clone)]
struct AccountState {
    row: LockedAccount,
    changed: bool,
    /// Included in the result (changed now, or touched by a re-emitted commit).
    report: bool,
}

/// Columns of the write, one vector per column (bound as arrays for `unnest`).
#[derive(Default)]
struct Writes {
    t_id: Vec<Uuid>,
    t_owner: Vec<Uuid>,
    t_key: Vec<String>,
    t_fp: Vec<Vec<u8>>,
    t_from: Vec<Uuid>,
    t_to: Vec<Uuid>,
    t_amount: Vec<Decimal>,
    t_currency: Vec<String>,
    t_reference: Vec<Option<String>>,
    t_status: Vec<&'static str>,
    t_reason: Vec<Option<&'static str>>,
    t_created: Vec<DateTime<Utc>>,
    t_published: Vec<Option<DateTime<Utc>>>,
    t_received: Vec<Option<DateTime<Utc>>>,
    t_trace: Vec<Option<String>>,
    t_batch: Vec<Option<Uuid>>,
    t_line: Vec<Option<i32>>,
    e_transfer: Vec<Uuid>,
    e_account: Vec<Uuid>,
    e_amount: Vec<Decimal>,
    e_balance: Vec<Decimal>,
}

/// When a transfer passed each stage before the ledger, and its trace: kept
/// with the transfer for the operators' timeline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stages {
    /// When JetStream stored the command.
    pub published_at: Option<DateTime<Utc>>,
    /// When the processor received it.
    pub received_at: Option<DateTime<Utc>>,
    /// W3C trace id (32 hex digits) of the request that sent it.
    pub trace_id: Option<String>,
    /// The batch and line it came from, if any.
    pub batch: Option<(Uuid, i32)>,
}

/// Applies `requests` in one transaction on `pool` and commits.
pub async fn apply_batch(
    pool: &sqlx::PgPool,
    requests: &[TransferRequest],
) -> Result<Applied, LedgerError> {
    apply_batch_with_stages(pool, requests, &[]).await
}

/// [`apply_batch`], recording `stages[i]` with `requests[i]` (`stages` may be
/// empty).
pub async fn apply_batch_with_stages(
    pool: &sqlx::PgPool,
    requests: &[TransferRequest],
    stages: &[Stages],
) -> Result<Applied, LedgerError> {
    let mut tx = pool.begin().await?;
    let applied = apply_in_tx_with_stages(&mut tx, requests, stages).await?;
    tx.commit().await?;
    Ok(applied)
}

/// Applies `requests` inside the caller's transaction (it commits or rolls back).
pub async fn apply_in_tx(
    conn: &mut PgConnection,
    requests: &[TransferRequest],
) -> Result<Applied, LedgerError> {
    apply_in_tx_with_stages(conn, requests, &[]).await
}

pub async fn apply_in_tx_with_stages(
    conn: &mut PgConnection,
    requests: &[TransferRequest],
    stages: &[Stages],
) -> Result<Applied, LedgerError> {
    if requests.is_empty() {
        return Ok(Applied::default());
    }
    let mut account_ids: Vec<Uuid> = requests
        .iter()
        .flat_map(|r| [r.from_account, r.to_account])
        .collect();
    account_ids.sort_unstable();
    account_ids.dedup();
    let locked: Vec<LockedAccount> = sqlx::query_as(
        "SELECT id, owner_id, currency, balance, overdraft_limit, version, created_at \
         FROM accounts WHERE id = ANY($1) ORDER BY id FOR UPDATE",
    )
    .bind(&account_ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut accounts: HashMap<Uuid, AccountState> = locked
        .into_iter()
        .map(|row| {
            (
                row.id,
                AccountState {
                    row,
                    changed: false,
                    report: false,
                },
            )
        })
        .collect();

    let ids: Vec<Uuid> = requests.iter().map(|r| r.id).collect();
    let existing: Vec<TransferRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id = ANY($1)"
    )))
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut known: HashMap<Uuid, TransferRow> = existing.into_iter().map(|t| (t.id, t)).collect();

    // PostgreSQL keeps microseconds: round now so the views we return equal
    // what a later read returns.
    let processed_at = micros(Utc::now());
    let mut writes = Writes::default();
    let mut applied = Applied::default();
    let mut committed_new = 0usize;

    let no_stages = Stages::default();
    for (i, r) in requests.iter().enumerate() {
        let fp = r.fingerprint();
        if let Some(prior) = known.get(&r.id) {
            let outcome = if prior.fingerprint == fp {
                Outcome::Duplicate
            } else {
                Outcome::KeyReused
            };
            let view = prior.view();
            if view.status == TransferStatus::Committed {
                for acc in [view.from_account, view.to_account] {
                    if let Some(a) = accounts.get_mut(&acc) {
                        a.report = true;
                    }
                }
            }
            applied.transfers.push(TransferResult {
                notify: notify_list(prior.owner_id, &view, &accounts),
                transfer: view,
                traceparent: None,
            });
            applied.outcomes.push(outcome);
            continue;
        }

        let decision = decide(r, &mut accounts);
        let (status, reason) = match decision {
            Ok(()) => (TransferStatus::Committed, None),
            Err(reason) => (TransferStatus::Rejected, Some(reason)),
        };
        if let Ok(()) = decision {
            committed_new += 1;
            for (account, amount) in [(r.from_account, -r.amount), (r.to_account, r.amount)] {
                // `decide` only commits when both accounts are locked.
                if let Some(a) = accounts.get(&account) {
                    writes.e_transfer.push(r.id);
                    writes.e_account.push(account);
                    writes.e_amount.push(amount);
                    writes.e_balance.push(a.row.balance);
                }
            }
        }
        let row = TransferRow {
            id: r.id,
            owner_id: r.owner,
            fingerprint: fp.to_vec(),
            from_account: r.from_account,
            to_account: r.to_account,
            amount: r.amount,
            currency: r.currency.clone(),
            reference: r.reference.clone(),
            status: status.as_str().to_owned(),
            reason: reason.map(|x| x.as_str().to_owned()),
            created_at: micros(r.accepted_at),
            processed_at,
        };
        writes.push_transfer(r, fp, status, reason, stages.get(i).unwrap_or(&no_stages));
        let view = row.view();
        applied.transfers.push(TransferResult {
            notify: notify_list(r.owner, &view, &accounts),
            transfer: view,
            traceparent: None,
        });
        applied.outcomes.push(match reason {
            None => Outcome::Committed,
            Some(x) => Outcome::Rejected(x),
        });
        // A second copy of this id later in the same batch is a duplicate.
        known.insert(r.id, row);
    }

    let changed: Vec<&AccountState> = accounts.values().filter(|a| a.changed).collect();
    let a_id: Vec<Uuid> = changed.iter().map(|a| a.row.id).collect();
    let a_balance: Vec<Decimal> = changed.iter().map(|a| a.row.balance).collect();
    let a_version: Vec<i64> = changed.iter().map(|a| a.row.version).collect();

    if !writes.t_id.is_empty() {
        let (t, e, a): (i64, i64, i64) = sqlx::query_as(WRITE_SQL)
            .bind(&writes.t_id)
            .bind(&writes.t_owner)
            .bind(&writes.t_key)
            .bind(&writes.t_fp)
            .bind(&writes.t_from)
            .bind(&writes.t_to)
            .bind(&writes.t_amount)
            .bind(&writes.t_currency)
            .bind(&writes.t_reference)
            .bind(&writes.t_status)
            .bind(&writes.t_reason)
            .bind(&writes.t_created)
            .bind(processed_at)
            .bind(&writes.e_transfer)
            .bind(&writes.e_account)
            .bind(&writes.e_amount)
            .bind(&writes.e_balance)
            .bind(&a_id)
            .bind(&a_balance)
            .bind(&a_version)
            .bind(&writes.t_published)
            .bind(&writes.t_received)
            .bind(&writes.t_trace)
            .bind(&writes.t_batch)
            .bind(&writes.t_line)
            .fetch_one(&mut *conn)
            .await?;
        let expected = (writes.t_id.len(), 2 * committed_new, a_id.len());
        if (t as usize, e as usize, a as usize) != expected {
            // Someone inserted one of our ids after we looked (possible only for
            // transfers that touch no locked account). Roll back and retry.
            return Err(LedgerError::Conflict(format!(
                "wrote (transfers, entries, accounts) = ({t}, {e}, {a}), expected {expected:?}"
            )));
        }
    }

    applied.accounts = accounts
        .into_values()
        .filter(|a| a.changed || a.report)
        .map(|a| AccountResult {
            owner: a.row.owner_id,
            account: AccountView {
                id: a.row.id,
                balance: shared::messages::format_money(a.row.balance, &a.row.currency),
                overdraft_limit: shared::messages::format_money(
                    a.row.overdraft_limit,
                    &a.row.currency,
                ),
                currency: a.row.currency,
                created_at: a.row.created_at,
                version: a.row.version,
            },
        })
        .collect();
    Ok(applied)
}

/// One statement writes the whole batch. Data-modifying CTEs always run to
/// completion; the counts let the caller verify every row landed.
const WRITE_SQL: &str = "\
WITH t AS (
    INSERT INTO transfers (id, owner_id, idempotency_key, fingerprint, from_account, to_account,
                           amount, currency, reference, status, reason, created_at,
                           published_at, received_at, trace_id, batch_id, batch_line,
                           processed_at)
    SELECT u.*, $13 FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bytea[], $5::uuid[],
                                $6::uuid[], $7::numeric[], $8::text[], $9::text[], $10::text[],
                                $11::text[], $12::timestamptz[], $21::timestamptz[],
                                $22::timestamptz[], $23::text[], $24::uuid[],
                                $25::int4[]) AS u
    ON CONFLICT (id) DO NOTHING
    RETURNING 1
), e AS (
    INSERT INTO entries (transfer_id, account_id, amount, balance_after, created_at)
    SELECT u.*, $13 FROM unnest($14::uuid[], $15::uuid[], $16::numeric[], $17::numeric[]) AS u
    RETURNING 1
), a AS (
    UPDATE accounts SET balance = u.balance, version = u.version
    FROM unnest($18::uuid[], $19::numeric[], $20::bigint[]) AS u(id, balance, version)
    WHERE accounts.id = u.id
    RETURNING 1
)
SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM e), (SELECT count(*) FROM a)";

impl Writes {
    fn push_transfer(
        &mut self,
        r: &TransferRequest,
        fp: [u8; 32],
        status: TransferStatus,
        reason: Option<RejectReason>,
        stages: &Stages,
    ) {
        self.t_published.push(stages.published_at.map(micros));
        self.t_received.push(stages.received_at.map(micros));
        self.t_trace.push(stages.trace_id.clone());
        self.t_batch.push(stages.batch.map(|b| b.0));
        self.t_line.push(stages.batch.map(|b| b.1));
        self.t_id.push(r.id);
        self.t_owner.push(r.owner);
        self.t_key.push(r.idempotency_key.clone());
        self.t_fp.push(fp.to_vec());
        self.t_from.push(r.from_account);
        self.t_to.push(r.to_account);
        self.t_amount.push(r.amount);
        self.t_currency.push(r.currency.clone());
        self.t_reference.push(r.reference.clone());
        self.t_status.push(status.as_str());
        self.t_reason.push(reason.map(|x| x.as_str()));
        self.t_created.push(micros(r.accepted_at));
    }
}

/// Decides one transfer against the in-memory account states and, when it
/// commits, moves the money there. Checks run in a fixed order so the same
/// request always gets the same reason.
fn decide(
    r: &TransferRequest,
    accounts: &mut HashMap<Uuid, AccountState>,
) -> Result<(), RejectReason> {
    if r.from_account == r.to_account {
        return Err(RejectReason::SameAccount);
    }
    let currency = Currency::parse(&r.currency).map_err(|_| RejectReason::InvalidAmount)?;
    Amount::from_decimal(r.amount, currency).map_err(|_| RejectReason::InvalidAmount)?;
    let from = accounts
        .get(&r.from_account)
        .ok_or(RejectReason::SourceAccountNotFound)?;
    if from.row.owner_id != r.owner {
        return Err(RejectReason::SourceAccountNotOwned);
    }
    let to = accounts
        .get(&r.to_account)
        .ok_or(RejectReason::DestinationAccountNotFound)?;
    if from.row.currency != r.currency || to.row.currency != r.currency {
        return Err(RejectReason::CurrencyMismatch);
    }
    if from.row.balance - r.amount < -from.row.overdraft_limit {
        return Err(RejectReason::InsufficientFunds);
    }
    for (id, delta) in [(r.from_account, -r.amount), (r.to_account, r.amount)] {
        if let Some(a) = accounts.get_mut(&id) {
            a.row.balance += delta;
            a.row.version += 1;
            a.changed = true;
        }
    }
    Ok(())
}

/// The requester always hears about its transfer; the payee's owner hears
/// about committed ones (never about a rejected attempt on their account).
fn notify_list(
    requester: Uuid,
    view: &TransferView,
    accounts: &HashMap<Uuid, AccountState>,
) -> Vec<Uuid> {
    let mut users = vec![requester];
    if view.status == TransferStatus::Committed
        && let Some(payee) = accounts.get(&view.to_account)
        && payee.row.owner_id != requester
    {
        users.push(payee.row.owner_id);
    }
    users
}

impl From<shared::messages::TransferCommand> for TransferRequest {
    fn from(c: shared::messages::TransferCommand) -> Self {
        Self {
            id: c.id,
            owner: c.owner,
            idempotency_key: c.idempotency_key,
            from_account: c.from_account,
            to_account: c.to_account,
            amount: c.amount,
            currency: c.currency,
            reference: c.reference,
            accepted_at: c.accepted_at,
        }
    }
}

/// Records a transfer the processor gave up on as `rejected` /
/// `processing_failed` (nothing moves), unless the id already exists. Returns
/// the transfer as stored.
pub async fn record_failure(
    pool: &sqlx::PgPool,
    r: &TransferRequest,
) -> Result<TransferResult, LedgerError> {
    let reason = RejectReason::ProcessingFailed;
    sqlx::query(
        "INSERT INTO transfers (id, owner_id, idempotency_key, fingerprint, from_account, to_account,
                                amount, currency, reference, status, reason, created_at, processed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, left($8, 3), $9, 'rejected', $10, $11, now())
         ON CONFLICT DO NOTHING",
    )
    .bind(r.id)
    .bind(r.owner)
    .bind(&r.idempotency_key)
    .bind(r.fingerprint().to_vec())
    .bind(r.from_account)
    .bind(r.to_account)
    .bind(r.amount)
    .bind(&r.currency)
    .bind(&r.reference)
    .bind(reason.as_str())
    .bind(micros(r.accepted_at))
    .execute(pool)
    .await?;
    let (row, _) = crate::transfers::get(pool, r.id)
        .await?
        .ok_or_else(|| LedgerError::Conflict("failed transfer vanished".into()))?;
    Ok(TransferResult {
        notify: vec![row.owner_id],
        transfer: row.view(),
        traceparent: None,
    })
}

/// Applies an atomic batch: every payment commits, or none does. If any
/// would be rejected, nothing moves and every payment is recorded `rejected`:
/// the failing ones with their own reason, the others `batch_aborted`.
pub async fn apply_atomic(
    pool: &sqlx::PgPool,
    requests: &[TransferRequest],
    stages: &[Stages],
) -> Result<Applied, LedgerError> {
    let mut tx = pool.begin().await?;
    let applied = apply_in_tx_with_stages(&mut tx, requests, stages).await?;
    if !applied
        .outcomes
        .iter()
        .any(|o| matches!(o, Outcome::Rejected(_)))
    {
        tx.commit().await?;
        return Ok(applied);
    }
    tx.rollback().await?;
    let reasons: Vec<RejectReason> = applied
        .outcomes
        .iter()
        .map(|o| match o {
            Outcome::Rejected(r) => *r,
            _ => RejectReason::BatchAborted,
        })
        .collect();
    let mut tx = pool.begin().await?;
    let no_stages = Stages::default();
    for (i, r) in requests.iter().enumerate() {
        let st = stages.get(i).unwrap_or(&no_stages);
        sqlx::query(
            "INSERT INTO transfers (id, owner_id, idempotency_key, fingerprint, from_account,
                    to_account, amount, currency, reference, status, reason, created_at,
                    published_at, received_at, trace_id, batch_id, batch_line, processed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, left($8, 3), $9, 'rejected', $10, $11,
                     $12, $13, $14, $15, $16, now())
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(r.id)
        .bind(r.owner)
        .bind(&r.idempotency_key)
        .bind(r.fingerprint().to_vec())
        .bind(r.from_account)
        .bind(r.to_account)
        .bind(r.amount)
        .bind(&r.currency)
        .bind(&r.reference)
        .bind(reasons[i].as_str())
        .bind(micros(r.accepted_at))
        .bind(st.published_at.map(micros))
        .bind(st.received_at.map(micros))
        .bind(&st.trace_id)
        .bind(st.batch.map(|b| b.0))
        .bind(st.batch.map(|b| b.1))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    let ids: Vec<Uuid> = requests.iter().map(|r| r.id).collect();
    let rows = crate::transfers::get_many(pool, &ids).await?;
    let mut by_id: HashMap<Uuid, TransferRow> = rows.into_iter().map(|r| (r.id, r)).collect();
    let mut out = Applied::default();
    for (i, r) in requests.iter().enumerate() {
        if let Some(row) = by_id.remove(&r.id) {
            out.transfers.push(TransferResult {
                notify: vec![row.owner_id],
                transfer: row.view(),
                traceparent: None,
            });
        }
        out.outcomes.push(Outcome::Rejected(reasons[i]));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn account(id: u128, owner: u128, balance: &str, overdraft: &str) -> (Uuid, AccountState) {
        let id = Uuid::from_u128(id);
        (
            id,
            AccountState {
                row: LockedAccount {
                    id,
                    owner_id: Uuid::from_u128(owner),
                    currency: "EUR".into(),
                    balance: Decimal::from_str(balance).unwrap(),
                    overdraft_limit: Decimal::from_str(overdraft).unwrap(),
                    version: 0,
                    created_at: Utc::now(),
                },
                changed: false,
                report: false,
            },
        )
    }

    fn req(from: u128, to: u128, owner: u128, amount: &str) -> TransferRequest {
        TransferRequest {
            id: Uuid::new_v4(),
            owner: Uuid::from_u128(owner),
            idempotency_key: "k".into(),
            from_account: Uuid::from_u128(from),
            to_account: Uuid::from_u128(to),
            amount: Decimal::from_str(amount).unwrap(),
            currency: "EUR".into(),
            reference: None,
            accepted_at: Utc::now(),
        }
    }

    #[test]
    fn decisions_in_order_within_a_batch() {
        let mut acc: HashMap<_, _> = [account(1, 10, "100", "0"), account(2, 20, "0", "50")]
            .into_iter()
            .collect();
        assert_eq!(decide(&req(1, 2, 10, "60"), &mut acc), Ok(()));
        // 40 left: the second 60 overdraws and is rejected alone.
        assert_eq!(
            decide(&req(1, 2, 10, "60"), &mut acc),
            Err(RejectReason::InsufficientFunds)
        );
        assert_eq!(decide(&req(1, 2, 10, "40"), &mut acc), Ok(()));
        // Account 2 may go to -50 but not below.
        assert_eq!(decide(&req(2, 1, 20, "150"), &mut acc), Ok(()));
        assert_eq!(
            decide(&req(2, 1, 20, "0.01"), &mut acc),
            Err(RejectReason::InsufficientFunds)
        );
        assert_eq!(acc[&Uuid::from_u128(2)].row.balance, Decimal::from(-50));
        assert_eq!(acc[&Uuid::from_u128(1)].row.balance, Decimal::from(150));
    }

    #[test]
    fn rejections() {
        let mut acc: HashMap<_, _> = [account(1, 10, "100", "0"), account(2, 20, "0", "0")]
            .into_iter()
            .collect();
        let e = |r: TransferRequest, acc: &mut HashMap<_, _>| decide(&r, acc).unwrap_err();
        assert_eq!(e(req(1, 1, 10, "1"), &mut acc), RejectReason::SameAccount);
        assert_eq!(
            e(req(3, 2, 10, "1"), &mut acc),
            RejectReason::SourceAccountNotFound
        );
        assert_eq!(
            e(req(1, 3, 10, "1"), &mut acc),
            RejectReason::DestinationAccountNotFound
        );
        assert_eq!(
            e(req(1, 2, 20, "1"), &mut acc),
            RejectReason::SourceAccountNotOwned
        );
        assert_eq!(
            e(req(1, 2, 10, "0.001"), &mut acc),
            RejectReason::InvalidAmount
        );
        let mut usd = req(1, 2, 10, "1");
        usd.currency = "USD".into();
        assert_eq!(e(usd, &mut acc), RejectReason::CurrencyMismatch);
        assert!(acc.values().all(|a| !a.changed));
    }
}
