//! The append-only, hash-chained audit trail (`audit_log`, `audit_head`).
//!
//! Every row carries `hash = sha256(prev_hash || canonical(row))` with
//! `prev_hash` the previous row's hash, so changing, removing or reordering a
//! row breaks the chain from that row on; [`verify`] finds the first broken
//! row. The chain is as trustworthy as its head: someone able to rewrite
//! every row after the one they changed (and the head) goes unnoticed, so
//! operators should record the head hash `bankadmin audit verify` prints
//! somewhere else from time to time (an external anchor).
//!
//! [`append`] is the only writer. It locks the one-row `audit_head` in the
//! inserting transaction: concurrent writers extend the chain one after the
//! other, ids are gap-free and the chain order is the id order.

use crate::micros;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::LedgerError;

/// `prev_hash` of the first row.
pub const GENESIS: [u8; 32] = [0; 32];
/// Longest text kept in any field (longer input is cut, never refused: the
/// audit trail records what an attacker sent, within reason).
const TEXT_LEN_MAX: usize = 256;
/// Rows read per query while verifying.
const VERIFY_PAGE: i64 = 5_000;

/// One audited event, before it is chained.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Record {
    pub at: DateTime<Utc>,
    /// A user id, the username a failed login tried, or bankadmin's operator.
    pub actor: Option<String>,
    pub role: Option<String>,
    /// `login`, `login.lockout`, `token.refresh`, `logout`, `transfer.submit`,
    /// `batch.submit`, `admin.*`.
    pub action: String,
    pub target: Option<String>,
    /// `success`/`failure`/`locked` for logins; `success`/`unknown`/
    /// `expired`/`revoked`/`reused`/`refused` for refreshes; `success`/
    /// `unknown` for logouts; `accepted`/`replayed`/`refused`/`error` for
    /// submissions; `ok`/`error` for admin actions.
    pub outcome: String,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    /// Strings and integers only (see [`Record::sanitize`]).
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

impl Record {
    pub fn new(action: &str, outcome: &str) -> Self {
        Self {
            at: Utc::now(),
            actor: None,
            role: None,
            action: action.to_owned(),
            target: None,
            outcome: outcome.to_owned(),
            ip: None,
            request_id: None,
            detail: serde_json::Value::Object(Default::default()),
        }
    }

    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(role.into());
        self
    }

    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }

    /// Makes the record storable exactly as hashed: PostgreSQL keeps
    /// microseconds, refuses NUL in text and jsonb, and jsonb may print a
    /// fraction differently than it was sent (so fractions become strings).
    pub fn sanitize(&mut self) {
        self.at = micros(self.at);
        for field in [
            &mut self.actor,
            &mut self.role,
            &mut self.target,
            &mut self.ip,
            &mut self.request_id,
        ]
        .into_iter()
        .flatten()
        {
            clean(field);
        }
        clean(&mut self.action);
        clean(&mut self.outcome);
        clean_json(&mut self.detail);
    }

    /// The bytes the hash covers, with `id` (the chain position).
    fn canonical(&self, id: i64) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&self.at.timestamp_micros().to_be_bytes());
        for field in [
            self.actor.as_deref(),
            self.role.as_deref(),
            Some(self.action.as_str()),
            self.target.as_deref(),
            Some(self.outcome.as_str()),
            self.ip.as_deref(),
            self.request_id.as_deref(),
        ] {
            text_field(&mut out, field);
        }
        let mut json = Vec::new();
        canonical_json(&self.detail, &mut json);
        text_field(&mut out, std::str::from_utf8(&json).ok());
        out
    }
}

fn clean(text: &mut String) {
    if text.contains('\0') {
        *text = text.replace('\0', "\u{FFFD}");
    }
    if text.chars().count() > TEXT_LEN_MAX {
        *text = text.chars().take(TEXT_LEN_MAX).collect();
    }
}

fn clean_json(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(s) => clean(s),
        Value::Number(n) if !(n.is_i64() || n.is_u64()) => {
            *value = Value::String(n.to_string());
        }
        Value::Array(items) => items.iter_mut().for_each(clean_json),
        Value::Object(map) => map.values_mut().for_each(clean_json),
        _ => {}
    }
}

/// Present: 1, length (u32, big-endian), bytes. Absent: 0. Unambiguous.
fn text_field(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        None => out.push(0),
        Some(t) => {
            out.push(1);
            out.extend_from_slice(&(t.len() as u32).to_be_bytes());
            out.extend_from_slice(t.as_bytes());
        }
    }
}

/// Compact JSON with object keys sorted bytewise: the same bytes whatever
/// order jsonb (or serde_json's feature flags) gives the keys.
fn canonical_json(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match value {
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(&Value::String(key.clone()), out);
                out.push(b':');
                if let Some(v) = map.get(key) {
                    canonical_json(v, out);
                }
            }
            out.push(b'}');
        }
        // Scalars have one serde_json rendering.
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

/// `sha256(prev || canonical(record at id))`.
pub fn row_hash(prev: &[u8], id: i64, record: &Record) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(record.canonical(id));
    h.finalize().into()
}

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

type RawRow = (
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

const COLUMNS: &str = "id, at, actor, role, action, target, outcome, ip, request_id, \
                       detail::text, prev_hash, hash";

fn row(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_and_is_compact() {
        let v = serde_json::json!({"b": 1, "a": ["x", {"d": null, "c": true}], "aa": "q\""});
        let mut out = Vec::new();
        canonical_json(&v, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":["x",{"c":true,"d":null}],"aa":"q\"","b":1}"#
        );
    }

    #[test]
    fn every_field_changes_the_hash() {
        let base = Record::new("login", "success")
            .actor("alice")
            .role("customer")
            .target("t")
            .detail(serde_json::json!({"n": 1}));
        let h = row_hash(&GENESIS, 1, &base);
        assert_ne!(h, row_hash(&GENESIS, 2, &base), "id");
        assert_ne!(h, row_hash(&[1; 32], 1, &base), "prev");
        let mut changed = base.clone();
        changed.outcome = "failure".into();
        assert_ne!(h, row_hash(&GENESIS, 1, &changed), "outcome");
        let mut changed = base.clone();
        changed.role = None;
        assert_ne!(h, row_hash(&GENESIS, 1, &changed), "absent vs present");
        // Moving bytes between adjacent fields is not a collision.
        let a = Record::new("ab", "c");
        let b = Record::new("a", "bc");
        assert_ne!(row_hash(&GENESIS, 1, &a), row_hash(&GENESIS, 1, &b));
    }

    #[test]
    fn sanitize_makes_records_storable() {
        let mut r = Record::new("login", "failure")
            .actor(format!("a\0b{}", "x".repeat(400)))
            .detail(serde_json::json!({"f": 1.5, "i": 7, "s": "\0"}));
        r.sanitize();
        let actor = r.actor.clone().unwrap();
        assert!(!actor.contains('\0'));
        assert_eq!(actor.chars().count(), TEXT_LEN_MAX);
        assert_eq!(
            r.detail,
            serde_json::json!({"f": "1.5", "i": 7, "s": "\u{FFFD}"})
        );
        assert_eq!(r.at.timestamp_subsec_nanos() % 1000, 0);
    }
}
