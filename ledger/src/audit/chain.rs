//! The hash chain: `hash = sha256(prev_hash || canonical(row))`, with a
//! canonical byte form that is unambiguous (length-prefixed fields) and
//! stable (JSON keys sorted), so a verifier recomputes exactly what the
//! writer hashed.

use sha2::{Digest, Sha256};

use super::Record;

/// `prev_hash` of the first row.
pub const GENESIS: [u8; 32] = [0; 32];

/// The bytes the hash covers: `record` at `id` (the chain position).
fn canonical(record: &Record, id: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&record.at.timestamp_micros().to_be_bytes());
    for field in [
        record.actor.as_deref(),
        record.role.as_deref(),
        Some(record.action.as_str()),
        record.target.as_deref(),
        Some(record.outcome.as_str()),
        record.ip.as_deref(),
        record.request_id.as_deref(),
    ] {
        text_field(&mut out, field);
    }
    let mut json = Vec::new();
    canonical_json(&record.detail, &mut json);
    text_field(&mut out, std::str::from_utf8(&json).ok());
    out
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
pub(super) fn canonical_json(value: &serde_json::Value, out: &mut Vec<u8>) {
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
    h.update(canonical(record, id));
    h.finalize().into()
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
}
