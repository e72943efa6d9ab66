//! Writing a batch's holds and hold actions: new holds inserted, stored
//! holds finished (`pending` only: the table's trigger refuses any other
//! change), captures and voids recorded, in one statement whose counts the
//! caller checks. A hold created and finished in the same batch is
//! inserted in its final state (a statement cannot insert and update one row).

use sqlx::PgConnection;
use uuid::Uuid;

use super::special::Special;
use crate::LedgerError;
use crate::holds::{HoldActionRow, HoldRow};

const WRITE_HOLDS_SQL: &str = "WITH ins AS (
    INSERT INTO holds (id, owner_id, idempotency_key, fingerprint, from_account, to_account,
                       amount, captured_amount, currency, reference, status, reason,
                       created_at, expires_at, processed_at, finished_at, capture_transfer_id)
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bytea[], $5::uuid[],
                         $6::uuid[], $7::numeric[], $8::numeric[], $9::text[], $10::text[],
                         $11::text[], $12::text[], $13::timestamptz[], $14::timestamptz[],
                         $15::timestamptz[], $16::timestamptz[], $17::uuid[])
    ON CONFLICT (id) DO NOTHING
    RETURNING 1
), upd AS (
    UPDATE holds SET status = u.status, finished_at = u.finished_at,
                     captured_amount = u.captured_amount,
                     capture_transfer_id = u.capture_transfer_id
    FROM unnest($18::uuid[], $19::text[], $20::timestamptz[], $21::numeric[], $22::uuid[])
         AS u(id, status, finished_at, captured_amount, capture_transfer_id)
    WHERE holds.id = u.id AND holds.status = 'pending'
    RETURNING 1
), act AS (
    INSERT INTO hold_actions (id, hold_id, kind, owner_id, idempotency_key, fingerprint,
                              amount, status, reason, created_at)
    SELECT * FROM unnest($23::uuid[], $24::uuid[], $25::text[], $26::uuid[], $27::text[],
                         $28::bytea[], $29::numeric[], $30::text[], $31::text[],
                         $32::timestamptz[])
    ON CONFLICT (id) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM upd), (SELECT count(*) FROM act)";

fn col<T, U>(rows: &[&T], f: impl Fn(&T) -> U) -> Vec<U> {
    rows.iter().map(|r| f(r)).collect()
}

/// Writes what `special` changed; fails with a conflict if any row did not land.
pub(super) async fn write(conn: &mut PgConnection, special: &Special) -> Result<(), LedgerError> {
    let pick = |ids: &[Uuid]| -> Vec<&HoldRow> {
        ids.iter().filter_map(|id| special.holds.get(id)).collect()
    };
    let new = pick(&special.created);
    let done = pick(&special.finished);
    let acts: Vec<&HoldActionRow> = special
        .new_actions
        .iter()
        .filter_map(|id| special.actions.get(id))
        .collect();
    if new.is_empty() && done.is_empty() && acts.is_empty() {
        return Ok(());
    }
    let (i, u, a): (i64, i64, i64) = sqlx::query_as(WRITE_HOLDS_SQL)
        .bind(col(&new, |h| h.id))
        .bind(col(&new, |h| h.owner_id))
        .bind(col(&new, |h| h.idempotency_key.clone()))
        .bind(col(&new, |h| h.fingerprint.clone()))
        .bind(col(&new, |h| h.from_account))
        .bind(col(&new, |h| h.to_account))
        .bind(col(&new, |h| h.amount))
        .bind(col(&new, |h| h.captured_amount))
        .bind(col(&new, |h| h.currency.clone()))
        .bind(col(&new, |h| h.reference.clone()))
        .bind(col(&new, |h| h.status.clone()))
        .bind(col(&new, |h| h.reason.clone()))
        .bind(col(&new, |h| h.created_at))
        .bind(col(&new, |h| h.expires_at))
        .bind(col(&new, |h| h.processed_at))
        .bind(col(&new, |h| h.finished_at))
        .bind(col(&new, |h| h.capture_transfer_id))
        .bind(col(&done, |h| h.id))
        .bind(col(&done, |h| h.status.clone()))
        .bind(col(&done, |h| h.finished_at))
        .bind(col(&done, |h| h.captured_amount))
        .bind(col(&done, |h| h.capture_transfer_id))
        .bind(col(&acts, |x| x.id))
        .bind(col(&acts, |x| x.hold_id))
        .bind(col(&acts, |x| x.kind.clone()))
        .bind(col(&acts, |x| x.owner_id))
        .bind(col(&acts, |x| x.idempotency_key.clone()))
        .bind(col(&acts, |x| x.fingerprint.clone()))
        .bind(col(&acts, |x| x.amount))
        .bind(col(&acts, |x| x.status.clone()))
        .bind(col(&acts, |x| x.reason.clone()))
        .bind(col(&acts, |x| x.created_at))
        .fetch_one(conn)
        .await?;
    let expected = (new.len(), done.len(), acts.len());
    let count = |n: i64| usize::try_from(n).unwrap_or(usize::MAX);
    if (count(i), count(u), count(a)) != expected {
        return Err(LedgerError::Conflict(format!(
            "wrote (holds, finished, actions) = {:?}, expected {expected:?}",
            (i, u, a)
        )));
    }
    Ok(())
}
