//! Verifying the chain: every row recomputed in one consistent snapshot,
//! the first broken row named.

use sqlx::PgPool;

use super::chain::{GENESIS, row_hash};
use super::repository::{COLUMNS, RawRow, Row, row};
use crate::LedgerError;

/// Rows read per query while verifying.
const VERIFY_PAGE: i64 = 5_000;

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    Intact {
        rows: u64,
        /// Record it elsewhere: a later verify that ends on another head
        /// after the same number of rows means history was rewritten.
        head: [u8; 32],
    },
    Broken {
        /// The first row that does not fit the chain.
        id: i64,
        reason: String,
    },
}

/// Walks the whole chain in id order (in one consistent snapshot) and
/// recomputes every hash.
pub async fn verify(pool: &PgPool) -> Result<Verification, LedgerError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let (head_id, head_hash): (i64, Vec<u8>) =
        sqlx::query_as("SELECT last_id, hash FROM audit_head WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
    let mut prev = GENESIS.to_vec();
    let mut last = 0i64;
    loop {
        let rows: Vec<RawRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2"
        )))
        .bind(last)
        .bind(VERIFY_PAGE)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            break;
        }
        for raw in rows {
            let r = row(raw);
            if let Some(broken) = check(&r, last, &prev) {
                return Ok(broken);
            }
            last = r.id;
            prev = r.hash;
        }
    }
    tx.commit().await?;
    let broken = |id: i64, reason: String| Ok(Verification::Broken { id, reason });
    if head_id > last {
        return broken(
            last + 1,
            format!(
                "rows {}..={head_id} are missing (the head names row {head_id})",
                last + 1
            ),
        );
    }
    if head_id < last {
        return broken(
            head_id + 1,
            format!(
                "row {} was added outside the chain (the head names row {head_id})",
                head_id + 1
            ),
        );
    }
    if head_hash != prev {
        return broken(last, "the head's hash differs from the last row's".into());
    }
    Ok(Verification::Intact {
        rows: last as u64,
        head: prev.as_slice().try_into().unwrap_or(GENESIS),
    })
}

/// Why `r` (following row `last` with hash `prev`) breaks the chain, if it does.
fn check(r: &Row, last: i64, prev: &[u8]) -> Option<Verification> {
    let broken = |id: i64, reason: String| Some(Verification::Broken { id, reason });
    if r.id != last + 1 {
        return broken(last + 1, format!("row {} is missing (deleted)", last + 1));
    }
    if r.prev_hash != prev {
        return broken(r.id, format!("prev_hash does not match row {last}'s hash"));
    }
    if row_hash(prev, r.id, &r.record).as_slice() != r.hash.as_slice() {
        return broken(
            r.id,
            "its content does not match its hash (the row was changed)".into(),
        );
    }
    None
}
