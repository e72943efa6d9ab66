//! Holds in the ledger's own tables against what the clients were told:
//! every accepted capture or void has exactly one recorded outcome, at
//! most one of them is applied per hold and it matches the hold's state,
//! nothing is stored that nobody asked for, and `accounts.held` is the sum
//! of the pending holds with balance - held >= -overdraft_limit.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::holds::Found;
use crate::bank::Bank;
use crate::holds::Cmd;
use crate::workload::{Kind, Load};

/// Why the ledger may refuse a capture or void it accepted.
const REASONS: [&str; 2] = ["hold_not_pending", "capture_exceeds_hold"];

#[derive(sqlx::FromRow)]
struct HoldRow {
    id: Uuid,
    owner_id: Uuid,
    idempotency_key: String,
    amount: Decimal,
    status: String,
    expires_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ActionRow {
    hold_id: Uuid,
    owner_id: Uuid,
    idempotency_key: String,
    kind: String,
    status: String,
    reason: Option<String>,
    created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    id: Uuid,
    balance: Decimal,
    held: Decimal,
    overdraft_limit: Decimal,
    pending: Decimal,
}

/// Adds what the ledger's tables show to `f`; returns account violations.
pub async fn check(bank: &Bank, load: &Load, f: &mut Found) -> anyhow::Result<Vec<String>> {
    let owners: Vec<Uuid> = load.users.iter().map(|u| u.id).collect();
    let holds: Vec<HoldRow> = sqlx::query_as(
        "SELECT id, owner_id, idempotency_key, amount, status, expires_at
           FROM holds WHERE owner_id = ANY($1)",
    )
    .bind(&owners)
    .fetch_all(&bank.pool)
    .await?;
    let actions: Vec<ActionRow> = sqlx::query_as(
        "SELECT hold_id, owner_id, idempotency_key, kind, status, reason, created_at
           FROM hold_actions WHERE owner_id = ANY($1)",
    )
    .bind(&owners)
    .fetch_all(&bank.pool)
    .await?;
    let bad_accounts = accounts(bank, &owners).await?;
    let by_key: HashMap<(Uuid, &str), &HoldRow> = holds
        .iter()
        .map(|h| ((h.owner_id, h.idempotency_key.as_str()), h))
        .collect();
    let mut action_by_key: HashMap<(Uuid, &str), Vec<&ActionRow>> = HashMap::new();
    for a in &actions {
        action_by_key
            .entry((a.owner_id, a.idempotency_key.as_str()))
            .or_default()
            .push(a);
    }
    let mut asked_holds: HashSet<(Uuid, &str)> = HashSet::new();
    let mut asked_actions: HashSet<(Uuid, &str)> = HashSet::new();
    let log = load.holds.lock().unwrap_or_else(|e| e.into_inner());
    for h in log.iter() {
        let owner = load.users[h.user].id;
        let row = by_key.get(&(owner, h.key.as_str()));
        match h.kind {
            Kind::New => {
                asked_holds.insert((owner, h.key.as_str()));
            }
            Kind::Invalid => {
                if let Some(r) = row {
                    f.requests
                        .push(format!("invalid hold request {} left hold {}", h.key, r.id));
                }
            }
            Kind::Reused => {
                if let Some(r) = row
                    && r.status != "rejected"
                    && Some(r.amount) == h.amount()
                {
                    f.requests
                        .push(format!("hold {} has the reused body's amount", r.id));
                }
            }
        }
        let held = h.amount().unwrap_or_default();
        for c in &h.cmds {
            asked_actions.insert((owner, c.key.as_str()));
            let rows = action_by_key.get(&(owner, c.key.as_str()));
            match rows.map(|v| v.as_slice()) {
                None | Some([]) if c.accepted > 0 => {
                    f.lost.push(format!(
                        "{:?} {} of hold {:?}: no outcome",
                        c.cmd,
                        c.key,
                        h.id()
                    ));
                }
                None | Some([]) => {}
                Some([a]) => {
                    if c.accepted == 0 {
                        f.requests
                            .push(format!("refused {:?} {} left an action", c.cmd, c.key));
                    }
                    let kind = if c.cmd == Cmd::Void {
                        "void"
                    } else {
                        "capture"
                    };
                    if Some(a.hold_id) != h.id() || a.kind != kind {
                        f.lost.push(format!(
                            "{:?} {} recorded as {} of {}",
                            c.cmd, c.key, a.kind, a.hold_id
                        ));
                    }
                    let reason = a.reason.as_deref().unwrap_or("");
                    let within = !matches!(c.cmd, Cmd::Capture(Some(x)) if x > held);
                    if a.status == "rejected"
                        && (!REASONS.contains(&reason)
                            || (reason == "capture_exceeds_hold" && within))
                    {
                        f.requests
                            .push(format!("{:?} {} rejected for {reason:?}", c.cmd, c.key));
                    }
                }
                Some(many) => {
                    f.doubled
                        .push(format!("{:?} {}: {} outcomes", c.cmd, c.key, many.len()))
                }
            }
        }
    }
    for h in &holds {
        if !asked_holds.contains(&(h.owner_id, h.idempotency_key.as_str())) {
            f.requests.push(format!(
                "hold {} (key {}) nobody asked for",
                h.id, h.idempotency_key
            ));
        }
    }
    let mut applied: HashMap<Uuid, Vec<&str>> = HashMap::new();
    for a in &actions {
        let outcome = match &a.reason {
            Some(r) => format!("{} {} ({r})", a.kind, a.status),
            None => format!("{} {}", a.kind, a.status),
        };
        *f.outcomes.entry(outcome).or_default() += 1;
        if !asked_actions.contains(&(a.owner_id, a.idempotency_key.as_str())) {
            f.requests
                .push(format!("{} of hold {} nobody asked for", a.kind, a.hold_id));
        }
        if a.status == "applied" {
            applied.entry(a.hold_id).or_default().push(a.kind.as_str());
        }
    }
    // Reported, not a violation: the expiry is a command applied when a
    // processor's scan finds the hold, and until then the hold is pending.
    let expires: HashMap<Uuid, DateTime<Utc>> =
        holds.iter().map(|h| (h.id, h.expires_at)).collect();
    f.applied_after_expiry = actions
        .iter()
        .filter(|a| a.status == "applied")
        .filter(|a| expires.get(&a.hold_id).is_some_and(|e| a.created_at > *e))
        .count() as u64;
    for h in &holds {
        let kinds = applied.get(&h.id).map(|v| v.as_slice()).unwrap_or_default();
        let ok = matches!(
            (h.status.as_str(), kinds),
            ("captured", ["capture"])
                | ("voided", ["void"])
                | ("expired" | "rejected" | "pending", [])
        );
        if !ok {
            let line = format!("hold {} {} with applied actions {kinds:?}", h.id, h.status);
            if kinds.len() > 1 {
                f.doubled.push(line);
            } else {
                f.lost.push(line);
            }
        }
    }
    Ok(bad_accounts)
}

/// `held` is the sum of the pending holds; balance - held >= -limit.
async fn accounts(bank: &Bank, owners: &[Uuid]) -> anyhow::Result<Vec<String>> {
    let rows: Vec<AccountRow> = sqlx::query_as(
        "SELECT a.id, a.balance, a.held, a.overdraft_limit,
                coalesce((SELECT sum(h.amount) FROM holds h
                           WHERE h.from_account = a.id AND h.status = 'pending'), 0) AS pending
           FROM accounts a WHERE a.owner_id = ANY($1)",
    )
    .bind(owners)
    .fetch_all(&bank.pool)
    .await?;
    Ok(rows
        .iter()
        .filter(|a| a.held != a.pending || a.balance - a.held < -a.overdraft_limit)
        .map(|a| {
            format!(
                "account {}: balance {}, held {} (pending holds {}), limit {}",
                a.id, a.balance, a.held, a.pending, a.overdraft_limit
            )
        })
        .collect())
}
