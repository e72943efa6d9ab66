//! Reversals against what the reverser was told: every accepted reversal
//! is final and linked to its original, one per key, and the committed
//! ones never add up to more than the original.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use uuid::Uuid;

use super::{Row, read, row};
use crate::bank::Bank;
use crate::workload::{Kind, Load};

/// Why the ledger may refuse a reversal it accepted (contract #17).
const REASONS: [&str; 3] = [
    "reversal_exceeds_original",
    "original_not_committed",
    "insufficient_funds",
];

/// A committed reversal: who must be told (payer and payee of the original).
pub struct Committed {
    pub id: Uuid,
    pub accounts: [Uuid; 2],
    pub processed_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Stored {
    id: Uuid,
    status: String,
    reason: Option<String>,
    amount: Decimal,
    processed_at: DateTime<Utc>,
    reverses: Option<Uuid>,
}

fn dec(v: &Value, f: &str) -> Option<Decimal> {
    v[f].as_str().and_then(|s| s.parse().ok())
}

/// The reversal ids the reverser got `202`s for (for the drain).
pub fn accepted(load: &Load) -> Vec<Uuid> {
    let revs = load.reversals.lock().unwrap_or_else(|e| e.into_inner());
    let set: HashSet<Uuid> = revs
        .iter()
        .filter(|r| r.kind == Kind::New)
        .flat_map(|r| r.ids.iter().copied())
        .collect();
    set.into_iter().collect()
}

/// Appends the reversal rows; returns the committed reversals.
pub async fn check(
    bank: &Bank,
    load: &Load,
    rows: &mut Vec<Row>,
) -> anyhow::Result<Vec<Committed>> {
    let me = load.reverser_index();
    let (mut lost, mut doubled, mut over, mut requests) = (vec![], vec![], vec![], vec![]);
    // original -> reversal ids accepted for it
    let mut by_original: BTreeMap<Uuid, HashSet<Uuid>> = BTreeMap::new();
    {
        let revs = load.reversals.lock().unwrap_or_else(|e| e.into_inner());
        for r in revs.iter() {
            if !r.answered {
                lost.push(format!("reversal {} never answered", r.key));
                continue;
            }
            if r.kind == Kind::Invalid {
                if r.refusals.is_empty() {
                    requests.push(format!("a customer's reversal {} was accepted", r.key));
                }
                continue;
            }
            let ids: HashSet<Uuid> = r.ids.iter().copied().collect();
            if ids.len() > 1 {
                doubled.push(format!("reversal key {} got {} ids", r.key, ids.len()));
            }
            for w in &r.wrong_link {
                lost.push(format!("reversal {} answered with reverses {w}", r.key));
            }
            by_original
                .entry(r.original)
                .or_default()
                .extend(ids.iter().copied());
        }
    }
    let all: Vec<Uuid> = by_original.values().flatten().copied().collect();
    let stored: HashMap<Uuid, Stored> = sqlx::query_as::<_, Stored>(
        "SELECT id, status, reason, amount, processed_at, reverses FROM transfers WHERE id = ANY($1)",
    )
    .bind(&all)
    .fetch_all(&bank.pool)
    .await?
    .into_iter()
    .map(|s| (s.id, s))
    .collect();
    let mut committed = Vec::new();
    let (mut n_committed, mut n_rejected, mut sum_reversed) = (0u64, 0u64, Decimal::ZERO);
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for (orig, ids) in &by_original {
        let Some(o) = read(load, me, &format!("/v1/transfers/{orig}")).await else {
            lost.push(format!("original {orig} unreadable"));
            continue;
        };
        let amount = dec(&o, "amount").unwrap_or_default();
        // Only a committed original lists its reversals; any other gets
        // none committed (`original_not_committed`).
        let committed_original = o["status"] == "committed";
        let listed: HashMap<Uuid, &Value> = o["reversals"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| {
                        x["id"]
                            .as_str()
                            .and_then(|s| s.parse().ok())
                            .map(|id| (id, x))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut total = Decimal::ZERO;
        for (id, x) in &listed {
            if !ids.contains(id) {
                lost.push(format!(
                    "original {orig} lists reversal {id} nobody was answered 202 for"
                ));
            }
            if x["status"] == "committed" {
                total += dec(x, "amount").unwrap_or_default();
            }
        }
        for id in ids {
            match stored.get(id) {
                None => lost.push(format!("reversal {id} of {orig} not in the ledger")),
                Some(s) => {
                    if s.reverses != Some(*orig) {
                        lost.push(format!(
                            "reversal {id} of {orig} stored reversing {:?}",
                            s.reverses
                        ));
                    }
                    if committed_original && !listed.contains_key(id) {
                        lost.push(format!("original {orig} does not list reversal {id}"));
                    }
                    if !committed_original && s.status == "committed" {
                        over.push(format!("{} original {orig} reversed by {id}", o["status"]));
                    }
                    if s.status == "committed" {
                        n_committed += 1;
                        sum_reversed += s.amount;
                        committed.push(Committed {
                            id: *id,
                            accounts: [
                                o["from_account"]
                                    .as_str()
                                    .and_then(|s| s.parse().ok())
                                    .unwrap_or_default(),
                                o["to_account"]
                                    .as_str()
                                    .and_then(|s| s.parse().ok())
                                    .unwrap_or_default(),
                            ],
                            processed_at: s.processed_at,
                        });
                    } else {
                        n_rejected += 1;
                        let why = s.reason.clone().unwrap_or_default();
                        *reasons.entry(why).or_default() += 1;
                        let r = s.reason.as_deref().unwrap_or("");
                        if !REASONS.contains(&r) {
                            requests.push(format!("reversal {id} rejected for {r:?}"));
                        }
                    }
                }
            }
        }
        let ledger_total: Decimal = ids
            .iter()
            .filter_map(|id| stored.get(id))
            .filter(|s| s.status == "committed")
            .map(|s| s.amount)
            .sum();
        if total > amount || ledger_total > amount {
            over.push(format!(
                "original {orig} of {amount} reversed {total} (ledger {ledger_total})"
            ));
        }
        if dec(&o, "reversed_amount").unwrap_or_default() != ledger_total {
            over.push(format!(
                "original {orig}: reversed_amount {} but committed reversals sum to {ledger_total}",
                o["reversed_amount"]
            ));
        }
    }
    // Every original in the ledger, whoever reversed it.
    let beyond: Vec<(Uuid, Decimal, Decimal)> = sqlx::query_as(
        "SELECT o.id, o.amount, sum(r.amount) FROM transfers r JOIN transfers o ON o.id = r.reverses
          WHERE r.status = 'committed' GROUP BY o.id, o.amount HAVING sum(r.amount) > o.amount",
    )
    .fetch_all(&bank.pool)
    .await?;
    over.extend(
        beyond
            .iter()
            .map(|(id, a, r)| format!("ledger: original {id} of {a} reversed {r}")),
    );
    row(
        rows,
        "lost: every 202'd reversal final, linked to its original",
        &lost,
        format!(
            "{} reversals of {} originals ({n_committed} committed, {n_rejected} rejected: {})",
            all.len(),
            by_original.len(),
            reasons
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    row(
        rows,
        "doubled: one reversal per key",
        &doubled,
        "none".into(),
    );
    row(
        rows,
        "sum of committed reversals <= original",
        &over,
        format!(
            "{} reversed in all, never beyond an original",
            sum_reversed.normalize()
        ),
    );
    row(
        rows,
        "reversal requests: customers refused, rejections with a reason",
        &requests,
        "as expected".into(),
    );
    Ok(committed)
}
