//! Holds against what their clients were told: each accepted hold ends in
//! exactly one final state, a capture moves exactly the captured amount
//! (at most the held one) once, an expired or voided hold moves nothing,
//! and available = balance - held stays within the overdraft.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use uuid::Uuid;

use super::{Row, read, row};
use crate::available::available_violation;
use crate::bank::Bank;
use crate::holds::{Cmd, HoldRec};
use crate::workload::{Kind, Load};

/// How late an expiry may be applied (the expiry command goes through the
/// queue, which an outage stops for its duration).
pub const EXPIRY_GRACE: Duration = Duration::from_secs(60);
/// How often unfinished holds are read again while draining.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
const FINAL: [&str; 4] = ["captured", "voided", "expired", "rejected"];

fn accepted_ids(load: &Load) -> Vec<(Uuid, usize)> {
    let holds = load.holds.lock().unwrap_or_else(|e| e.into_inner());
    let mut seen = HashSet::new();
    holds
        .iter()
        .filter(|h| h.kind == Kind::New)
        .filter_map(|h| h.id().map(|id| (id, h.user)))
        .filter(|(id, _)| seen.insert(*id))
        .collect()
}

/// Waits until every accepted hold is final (or `bound`); the seconds taken.
pub async fn wait_final(load: &Load, bound: Duration) -> f64 {
    let start = Instant::now();
    let mut open = accepted_ids(load);
    while !open.is_empty() && start.elapsed() < bound {
        let mut still = Vec::new();
        for (id, user) in open {
            let done = read(load, user, &format!("/v1/holds/{id}"))
                .await
                .is_some_and(|v| FINAL.contains(&v["status"].as_str().unwrap_or("")));
            if !done {
                still.push((id, user));
            }
        }
        open = still;
        if !open.is_empty() {
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
    start.elapsed().as_secs_f64()
}

/// The money each hold moved according to the ledger: its transfers
/// (by `hold_id`) and their entries.
#[derive(sqlx::FromRow)]
struct Moved {
    hold_id: Uuid,
    transfers: i64,
    committed: i64,
    amount: Option<Decimal>,
    entries: i64,
}

async fn moved(bank: &Bank, ids: &[Uuid]) -> anyhow::Result<HashMap<Uuid, Moved>> {
    let rows: Vec<Moved> = sqlx::query_as(
        // Entries have no index by transfer (see the migration that
        // dropped it): one pass over them for every hold's transfers.
        "WITH t AS (SELECT id, hold_id, status, amount FROM transfers WHERE hold_id = ANY($1)),
              e AS (SELECT transfer_id, count(*) AS n FROM entries
                     WHERE transfer_id IN (SELECT id FROM t) GROUP BY 1)
         SELECT t.hold_id, count(*) AS transfers,
                count(*) FILTER (WHERE t.status = 'committed') AS committed,
                sum(t.amount) FILTER (WHERE t.status = 'committed') AS amount,
                coalesce(sum(e.n), 0)::bigint AS entries
           FROM t LEFT JOIN e ON e.transfer_id = t.id
          GROUP BY 1",
    )
    .bind(ids)
    .fetch_all(&bank.pool)
    .await?;
    Ok(rows.into_iter().map(|m| (m.hold_id, m)).collect())
}

fn dec(v: &Value, f: &str) -> Option<Decimal> {
    v[f].as_str().and_then(|s| s.parse().ok())
}

fn time(v: &Value, f: &str) -> Option<DateTime<Utc>> {
    v[f].as_str().and_then(|s| s.parse().ok())
}

/// Violations by row, and what the detail column says.
#[derive(Default)]
pub(super) struct Found {
    pub(super) lost: Vec<String>,
    pub(super) doubled: Vec<String>,
    pub(super) over: Vec<String>,
    pub(super) unfinal: Vec<String>,
    pub(super) moved: Vec<String>,
    pub(super) requests: Vec<String>,
    states: HashMap<String, u64>,
    /// Outcomes of the captures and voids in the ledger ("capture applied",
    /// "void rejected (hold_not_pending)", ...).
    pub(super) outcomes: std::collections::BTreeMap<String, u64>,
    commands: u64,
    late_max: f64,
    /// Captures and voids applied though sent after the hold's expires_at
    /// (before its expiry command was applied).
    pub(super) applied_after_expiry: u64,
}

/// What the other checks need from the holds.
pub struct Checked {
    /// The capture transfers (made by the bank, not sent by a client).
    pub captures: HashSet<Uuid>,
    /// Each final hold, its owner, and when it became final: the owner
    /// must have been told.
    pub finals: Vec<(Uuid, usize, DateTime<Utc>)>,
}

/// Appends the hold rows.
pub async fn check(
    bank: &Bank,
    load: &Load,
    drain_secs: f64,
    rows: &mut Vec<Row>,
) -> anyhow::Result<Checked> {
    let ids = accepted_ids(load);
    let mut views: HashMap<Uuid, Value> = HashMap::new();
    for (id, user) in &ids {
        if let Some(v) = read(load, *user, &format!("/v1/holds/{id}")).await {
            views.insert(*id, v);
        }
    }
    let all: Vec<Uuid> = ids.iter().map(|(id, _)| *id).collect();
    let moved = moved(bank, &all).await?;
    let mut f = Found::default();
    let mut captures = HashSet::new();
    let mut finals = Vec::new();
    {
        let holds = load.holds.lock().unwrap_or_else(|e| e.into_inner());
        for h in holds.iter() {
            request(h, &mut f);
        }
        for h in holds.iter().filter(|h| h.kind == Kind::New) {
            let Some(id) = h.id() else { continue };
            f.commands += h.cmds.len() as u64;
            let Some(v) = views.get(&id) else {
                f.lost.push(format!("hold {id} accepted, unknown now"));
                continue;
            };
            if let Some(c) = v["capture_transfer_id"]
                .as_str()
                .and_then(|s| s.parse().ok())
            {
                captures.insert(c);
            }
            if let Some(at) = time(v, "finished_at").or_else(|| time(v, "created_at"))
                && v["status"] != "pending"
            {
                finals.push((id, h.user, at));
            }
            one_hold(h, id, v, moved.get(&id), &mut f);
        }
    }
    for (id, v) in &views {
        if v["status"] == "captured"
            && let Some(c) = v["capture_transfer_id"].as_str()
        {
            let t = read(load, load.reverser_index(), &format!("/v1/transfers/{c}")).await;
            let ok = t.as_ref().is_some_and(|t| {
                t["status"] == "committed"
                    && dec(t, "amount") == dec(v, "captured_amount")
                    && t["hold_id"].as_str() == Some(id.to_string().as_str())
            });
            if !ok {
                f.moved
                    .push(format!("hold {id}: capture transfer {c} is {t:?}"));
            }
        }
    }
    let final_account = final_accounts(load).await;
    let ledger_accounts = super::hold_ledger::check(bank, load, &mut f).await?;
    let bad_avail: Vec<String> = load
        .available_bad
        .lock()
        .map(|v| v.clone())
        .unwrap_or_default()
        .into_iter()
        .chain(final_account)
        .chain(ledger_accounts)
        .collect();
    let states = {
        let mut s: Vec<String> = f.states.iter().map(|(k, n)| format!("{n} {k}")).collect();
        s.sort();
        s.join(", ")
    };
    row(
        rows,
        "lost: every 202'd hold and hold command has its outcome",
        &f.lost,
        format!(
            "{} holds ({states}); {} captures/voids ({})",
            ids.len(),
            f.commands,
            f.outcomes
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    row(
        rows,
        "doubled: one hold per key, one capture transfer per hold at most",
        &f.doubled,
        "no hold or capture twice".into(),
    );
    row(
        rows,
        "captured <= held",
        &f.over,
        "every capture within its hold".into(),
    );
    row(
        rows,
        &format!(
            "each hold ends in one final state (expiry + {} s grace)",
            EXPIRY_GRACE.as_secs()
        ),
        &f.unfinal,
        format!(
            "all final {drain_secs:.1}s after the load stopped; expiries at most {:.1}s late; \
             {} captures/voids sent after expires_at applied",
            f.late_max, f.applied_after_expiry
        ),
    );
    row(
        rows,
        "expired/voided holds moved no money; a capture moves it once",
        &f.moved,
        format!("{} capture transfers, 2 entries each", captures.len()),
    );
    row(
        rows,
        "available = balance - held >= -overdraft",
        &bad_avail,
        format!(
            "{} account reads during the run, every account after it",
            load.available_reads
                .load(std::sync::atomic::Ordering::Relaxed)
        ),
    );
    row(
        rows,
        "hold requests: invalid/reused refused, valid ones accepted",
        &f.requests,
        "as expected".into(),
    );
    Ok(Checked { captures, finals })
}

/// The request itself: refused when it had to be, accepted otherwise.
fn request(h: &HoldRec, f: &mut Found) {
    if !h.answered {
        f.lost
            .push(format!("hold request {} never answered", h.key));
        return;
    }
    match h.kind {
        Kind::New => {
            if !h.refusals.is_empty() {
                f.requests
                    .push(format!("valid hold {} refused {:?}", h.key, h.refusals));
            }
            let distinct: HashSet<&Uuid> = h.ids.iter().collect();
            if distinct.len() > 1 {
                f.doubled
                    .push(format!("hold key {} got {} ids", h.key, distinct.len()));
            }
        }
        Kind::Invalid | Kind::Reused => {
            if h.refusals.is_empty() {
                f.requests
                    .push(format!("{:?} hold request {} accepted", h.kind, h.key));
            }
        }
    }
    for c in &h.cmds {
        if !c.answered {
            f.lost.push(format!("{:?} {} never answered", c.cmd, c.key));
        }
    }
}

/// One accepted hold: its final state against its commands and the ledger.
fn one_hold(h: &HoldRec, id: Uuid, v: &Value, m: Option<&Moved>, f: &mut Found) {
    let status = v["status"].as_str().unwrap_or("").to_owned();
    *f.states.entry(status.clone()).or_default() += 1;
    let held = dec(v, "amount").unwrap_or_default();
    if Some(held) != h.amount() {
        f.lost
            .push(format!("hold {id}: holds {held}, asked {:?}", h.amount()));
    }
    let accepted = |want: fn(&Cmd) -> bool| h.cmds.iter().any(|c| c.accepted > 0 && want(&c.cmd));
    let (transfers, committed, entries) =
        m.map_or((0, 0, 0), |m| (m.transfers, m.committed, m.entries));
    if !FINAL.contains(&status.as_str()) {
        f.unfinal.push(format!("hold {id} still {status}"));
        return;
    }
    if status == "captured" {
        let captured = dec(v, "captured_amount").unwrap_or_default();
        if captured > held || captured <= Decimal::ZERO {
            f.over
                .push(format!("hold {id}: captured {captured} of {held}"));
        }
        let asked = h.cmds.iter().any(|c| {
            c.accepted > 0
                && match c.cmd {
                    Cmd::Capture(None) => captured == held,
                    Cmd::Capture(Some(a)) => a == captured,
                    Cmd::Void => false,
                }
        });
        if !asked {
            f.lost.push(format!(
                "hold {id} captured {captured}, no such capture accepted"
            ));
        }
        if transfers > 1 || committed > 1 {
            f.doubled
                .push(format!("hold {id}: {transfers} capture transfers"));
        }
        let amount = m.and_then(|m| m.amount);
        if committed != 1 || entries != 2 || amount != Some(captured) {
            f.moved.push(format!(
                "hold {id} captured {captured}: {committed} committed transfers, {entries} entries, {amount:?}"
            ));
        }
        return;
    }
    if transfers > 0 || entries > 0 || !v["capture_transfer_id"].is_null() {
        f.moved.push(format!(
            "{status} hold {id}: {transfers} transfers, {entries} entries"
        ));
    }
    match status.as_str() {
        "voided" if !accepted(|c| *c == Cmd::Void) => {
            f.lost.push(format!("hold {id} voided, no void accepted"));
        }
        "expired" => {
            let (at, done) = (time(v, "expires_at"), time(v, "finished_at"));
            if let (Some(at), Some(done)) = (at, done) {
                let late = (done - at).num_milliseconds() as f64 / 1000.0;
                f.late_max = f.late_max.max(late);
                if late < 0.0 || late > EXPIRY_GRACE.as_secs_f64() {
                    f.unfinal
                        .push(format!("hold {id} expired {late:.1}s after its expiry"));
                }
            } else {
                f.unfinal
                    .push(format!("expired hold {id} lacks expires_at/finished_at"));
            }
        }
        _ => {}
    }
}

/// After the drain no hold is active: held 0 and available = balance.
async fn final_accounts(load: &Load) -> Vec<String> {
    let mut bad = Vec::new();
    for u in 0..load.users.len() {
        match read(load, u, "/v1/accounts").await {
            Some(Value::Array(accounts)) => {
                for a in &accounts {
                    if let Some(b) = available_violation(a) {
                        bad.push(b);
                    } else if dec(a, "held") != Some(Decimal::ZERO) {
                        bad.push(format!(
                            "account {} still holds {} after the drain",
                            a["id"], a["held"]
                        ));
                    }
                }
            }
            _ => bad.push(format!("cannot read {}'s accounts", load.users[u].name)),
        }
    }
    bad
}
