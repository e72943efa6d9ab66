//! What the clients were told against what the ledger holds: nothing lost,
//! nothing doubled, no flipped outcome, refusals that leave no trace.

use std::collections::{HashMap, HashSet};

use rust_decimal::Decimal;
use uuid::Uuid;

use super::{Row, Stored, row};
use crate::workload::{Kind, Load, Request};

/// What the clients were told against what the ledger holds.
/// `explained_elsewhere`: transfers the bank made itself (captures, reversals).
pub fn against_requests(
    load: &Load,
    stored: &[Stored],
    explained_elsewhere: &HashSet<Uuid>,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let by_key: HashMap<(Uuid, &str), &Stored> = stored
        .iter()
        .map(|s| ((s.owner, s.key.as_str()), s))
        .collect();
    let by_id: HashMap<Uuid, &Stored> = stored.iter().map(|s| (s.id, s)).collect();
    let mut doubled = Vec::new();
    if by_key.len() != stored.len() {
        doubled.push(format!(
            "{} (user, key) pairs stored more than once",
            stored.len() - by_key.len()
        ));
    }
    let (mut lost, mut flipped, mut unanswered, mut leaked, mut refused_valid, mut reuse_ok) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let mut explained: HashSet<Uuid> = HashSet::new();
    let (mut absorbed, mut reuse_refused, mut invalid_refused) = (0u64, 0u64, 0u64);
    let log = load
        .log
        .lock()
        .map_err(|_| anyhow::anyhow!("request log poisoned"))?;
    let originals: HashMap<(usize, &str), &Request> = log
        .iter()
        .filter(|r| r.kind == Kind::New)
        .map(|r| ((r.user, r.key.as_str()), r))
        .collect();
    for r in log.iter() {
        let owner = load.users[r.user].id;
        let db = by_key.get(&(owner, r.key.as_str()));
        if !r.answered {
            unanswered.push(r.key.clone());
            if let Some(s) = db {
                explained.insert(s.id);
            }
            continue;
        }
        match r.kind {
            Kind::New => {
                let ids: HashSet<Uuid> = r.ids.iter().copied().collect();
                absorbed += r.ids.len().saturating_sub(1) as u64;
                if ids.len() > 1 {
                    doubled.push(format!(
                        "key {} answered with {} different ids",
                        r.key,
                        ids.len()
                    ));
                }
                if !r.refusals.is_empty() {
                    refused_valid.push(format!("key {}: {:?}", r.key, r.refusals));
                }
                for id in &ids {
                    explained.insert(*id);
                    match by_id.get(id) {
                        None => lost.push(id.to_string()),
                        Some(s) => {
                            if r.statuses.iter().any(|st| *st != s.status) {
                                flipped.push(format!(
                                    "{id}: answered {:?}, ledger {}",
                                    r.statuses, s.status
                                ));
                            }
                        }
                    }
                }
            }
            Kind::Invalid => {
                if r.refusals.is_empty() {
                    leaked.push(format!("invalid request {} was accepted", r.key));
                } else {
                    invalid_refused += 1;
                }
                if let Some(s) = db {
                    leaked.push(format!("invalid request {} left transfer {}", r.key, s.id));
                }
            }
            Kind::Reused => {
                if r.refusals.is_empty() {
                    reuse_ok.push(format!(
                        "key {} reused with another body was accepted",
                        r.key
                    ));
                } else {
                    reuse_refused += 1;
                }
                let original = originals.get(&(r.user, r.key.as_str()));
                if let (Some(s), Some(o)) = (db, original) {
                    let want: Option<Decimal> =
                        o.body["amount"].as_str().and_then(|a| a.parse().ok());
                    if want != Some(s.amount) {
                        reuse_ok.push(format!(
                            "transfer {} has the reused body's amount {}",
                            s.id, s.amount
                        ));
                    }
                }
            }
        }
    }
    let sent = explained.len();
    for s in stored {
        if !explained.contains(&s.id) && !explained_elsewhere.contains(&s.id) {
            leaked.push(format!(
                "transfer {} (key {}) was never answered 202",
                s.id, s.key
            ));
        }
    }
    let mine = || {
        stored
            .iter()
            .filter(|s| !explained_elsewhere.contains(&s.id))
    };
    let committed = mine().filter(|s| s.status == "committed").count();
    let rejected = mine().count() - committed;
    row(
        rows,
        "lost: every 202 reached a final state",
        &lost,
        format!("{sent} accepted transfers all final ({committed} committed, {rejected} rejected)"),
    );
    row(
        rows,
        "doubled: one transfer per (user, key), one id per key",
        &doubled,
        format!("{absorbed} duplicate answers absorbed"),
    );
    row(
        rows,
        "a retry never flips an outcome",
        &flipped,
        "every answer's id and status match the ledger".into(),
    );
    row(
        rows,
        "refused requests leave no trace; nothing unexplained",
        &leaked,
        format!("{invalid_refused} invalid requests refused, none stored"),
    );
    row(
        rows,
        "same key with another body is refused",
        &reuse_ok,
        format!("{reuse_refused} refused, originals unchanged"),
    );
    row(
        rows,
        "valid requests are never refused",
        &refused_valid,
        "none".into(),
    );
    row(
        rows,
        "every request got a definitive answer",
        &unanswered,
        format!("{} requests answered", log.len()),
    );
    Ok(())
}
