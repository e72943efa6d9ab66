//! Audit rows in PostgreSQL: the one writer ([`append`]) and the reads.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use super::Record;
use super::chain::{canonical_json, row_hash};
use crate::LedgerError;

/// Appends `records` in order, chained after the current head, in one
/// transaction. Returns the id of the last row (the head's).
pub async fn append(pool: &PgPool, records: &[Record]) -> Result<i64, LedgerError> {
    let mut tx = pool.begin().await?;
    // The lock that serialises writers: held until COMMIT.
    let (mut last_id, mut prev): (i64, Vec<u8>) =
        sqlx::query_as("SELECT last_id, hash FROM audit_head WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut *tx)
            .await?;
    if records.is_empty() {
        return Ok(last_id);
    }
    let n = records.len();
    let mut ids = Vec::with_capacity(n);
    let mut at = Vec::with_capacity(n);
    let (mut actor, mut role, mut action, mut target) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut outcome, mut ip, mut request_id, mut detail) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut prev_hashes, mut hashes) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for record in records {
        let mut r = record.clone();
        r.sanitize();
        last_id += 1;
        let hash = row_hash(&prev, last_id, &r);
        let mut json = Vec::new();
        canonical_json(&r.detail, &mut json);
        ids.push(last_id);
        at.push(r.at);
        actor.push(r.actor);
        role.push(r.role);
        action.push(r.action);
        target.push(r.target);
        outcome.push(r.outcome);
        ip.push(r.ip);
        request_id.push(r.request_id);
        detail.push(String::from_utf8_lossy(&json).into_owned());
        prev_hashes.push(std::mem::replace(&mut prev, hash.to_vec()));
        hashes.push(hash.to_vec());
    }
    sqlx::query(
        "INSERT INTO audit_log (id, at, actor, role, action, target, outcome, ip, request_id,
                                detail, prev_hash, hash)
         OVERRIDING SYSTEM VALUE
         SELECT u.id, u.at, u.actor, u.role, u.action, u.target, u.outcome, u.ip, u.request_id,
                u.detail::jsonb, u.prev_hash, u.hash
           FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[],
                       $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                       $11::bytea[], $12::bytea[])
             AS u(id, at, actor, role, action, target, outcome, ip, request_id, detail,
                  prev_hash, hash)",
    )
    .bind(&ids)
    .bind(&at)
    .bind(&actor)
    .bind(&role)
    .bind(&action)
    .bind(&target)
    .bind(&outcome)
    .bind(&ip)
    .bind(&request_id)
    .bind(&detail)
    .bind(&prev_hashes)
    .bind(&hashes)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE audit_head SET last_id = $1, hash = $2 WHERE id = 1")
        .bind(last_id)
        .bind(&prev)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(last_id)
}

/// A stored row, as the ops API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = AuditRow)]
pub struct Row {
    pub id: i64,
    #[serde(flatten)]
    pub record: Record,
    /// SHA-256, lower-case hex.
    #[serde(serialize_with = "as_hex")]
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub prev_hash: Vec<u8>,
    #[serde(serialize_with = "as_hex")]
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub hash: Vec<u8>,
}

fn as_hex<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(bytes))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) type RawRow = (
    i64,
    DateTime<Utc>,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    String,
    Vec<u8>,
    Vec<u8>,
);

pub(super) const COLUMNS: &str = "id, at, actor, role, action, target, outcome, ip, request_id, \
                       detail::text, prev_hash, hash";

pub(super) fn row(
    (id, at, actor, role, action, target, outcome, ip, request_id, detail, prev, hash): RawRow,
) -> Row {
    Row {
        id,
        record: Record {
            at,
            actor,
            role,
            action,
            target,
            outcome,
            ip,
            request_id,
            // A detail that is not JSON cannot come from jsonb; keep it visible.
            detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
        },
        prev_hash: prev,
        hash,
    }
}

/// Newest first, before id `before` (exclusive) when given.
pub async fn page(pool: &PgPool, before: Option<i64>, limit: i64) -> Result<Vec<Row>, LedgerError> {
    let rows: Vec<RawRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT $2"
    )))
    .bind(before.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(row).collect())
}

/// The rows with `action`, oldest first (tests and investigations).
pub async fn by_action(pool: &PgPool, action: &str) -> Result<Vec<Row>, LedgerError> {
    let rows: Vec<RawRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM audit_log WHERE action = $1 ORDER BY id"
    )))
    .bind(action)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(row).collect())
}
