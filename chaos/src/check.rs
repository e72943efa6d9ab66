//! After the faults: wait for the queue to drain, then check every
//! invariant against the database and what the clients were told.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::bank::{Bank, PREFIX};
use crate::watch::Seen;
use crate::workload::{CURRENCIES, FUNDS_CENTS, Kind, Load};

pub struct Row {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

fn row(rows: &mut Vec<Row>, name: &str, bad: &[String], ok_detail: String) {
    let ok = bad.is_empty();
    let detail = if ok {
        ok_detail
    } else {
        format!(
            "{} violation(s): {}",
            bad.len(),
            bad.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
        )
    };
    rows.push(Row {
        name: name.to_owned(),
        ok,
        detail,
    });
}

#[derive(sqlx::FromRow)]
struct Stored {
    id: Uuid,
    owner: Uuid,
    key: String,
    status: String,
    amount: Decimal,
    to_account: Uuid,
    processed_at: DateTime<Utc>,
}

/// How the end of the run went.
pub struct Drain {
    /// Seconds until every accepted transfer was in the ledger.
    pub final_secs: f64,
    pub all_final: bool,
    /// Seconds until the processor's consumer had nothing pending or unacked.
    pub queue_secs: f64,
    pub queue_empty: bool,
    pub dead_letters: i64,
}

/// Waits until every accepted transfer is in the ledger, then until the
/// processor's consumer has nothing pending or unacknowledged.
pub async fn drain(bank: &Bank, accepted: &[Uuid], bound: Duration) -> anyhow::Result<Drain> {
    let start = Instant::now();
    let mut stored = 0;
    while start.elapsed() < bound {
        stored = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM transfers WHERE id = ANY($1)")
            .bind(accepted)
            .fetch_one(&bank.pool)
            .await
            .unwrap_or(0);
        if stored as usize == accepted.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let all_final = stored as usize == accepted.len();
    let final_secs = start.elapsed().as_secs_f64();
    let client = async_nats::connect(bank.nats.url()).await?;
    let js = async_nats::jetstream::new(client);
    let topology = shared::streams::Topology::new(PREFIX);
    let mut queue_empty = false;
    let mut reported = Instant::now();
    while start.elapsed() < bound + Duration::from_secs(30) {
        // The stream itself must be empty too: a consumer can report
        // nothing pending while messages sit below its ack floor.
        if let Ok(mut stream) = js.get_stream(&topology.transfers_stream).await
            && let Ok(stored) = stream.info().await.map(|i| i.state.messages)
            && let Ok(mut consumer) = stream
                .get_consumer::<async_nats::jetstream::consumer::pull::Config>(
                    &topology.processor_consumer,
                )
                .await
            && let Ok(info) = consumer.info().await
        {
            if stored == 0 && info.num_pending == 0 && info.num_ack_pending == 0 {
                queue_empty = true;
                break;
            }
            if reported.elapsed() > Duration::from_secs(5) {
                reported = Instant::now();
                println!(
                    "[chaos] queue: {stored} stored, {} pending, {} unacked, {} redelivered",
                    info.num_pending, info.num_ack_pending, info.num_redelivered
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let queue_secs = start.elapsed().as_secs_f64();
    let dead_letters = match js.get_stream(&topology.dead_stream).await {
        Ok(mut s) => s
            .info()
            .await
            .map(|i| i.state.messages as i64)
            .unwrap_or(-1),
        Err(_) => -1,
    };
    Ok(Drain {
        final_secs,
        all_final,
        queue_secs,
        queue_empty,
        dead_letters,
    })
}

async fn stored(bank: &Bank, owners: &[Uuid]) -> anyhow::Result<Vec<Stored>> {
    Ok(sqlx::query_as(
        "SELECT id, owner_id AS owner, idempotency_key AS key, status, amount, to_account,
                processed_at
           FROM transfers WHERE owner_id = ANY($1)",
    )
    .bind(owners)
    .fetch_all(&bank.pool)
    .await?)
}

/// Every check, as table rows.
pub async fn check(
    bank: &Bank,
    load: &Load,
    seen: &Seen,
    notify_wait: Duration,
) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let owners: Vec<Uuid> = load.users.iter().map(|u| u.id).collect();
    let user_of: HashMap<Uuid, usize> = owners.iter().enumerate().map(|(i, u)| (*u, i)).collect();
    let account_user: HashMap<Uuid, usize> = load
        .users
        .iter()
        .enumerate()
        .flat_map(|(i, u)| u.accounts.iter().map(move |a| (*a, i)))
        .collect();

    // The ledger's own invariants (double entry, balances, overdraft limits).
    let report = ledger::invariants::check(&bank.pool).await?;
    let v = report.violations();
    let below: Vec<String> = v
        .iter()
        .filter(|s| s.starts_with("below"))
        .cloned()
        .collect();
    let sums: Vec<String> = v
        .iter()
        .filter(|s| !s.starts_with("below"))
        .cloned()
        .collect();
    row(
        &mut rows,
        "no balance below -overdraft_limit",
        &below,
        "all accounts within their limit".into(),
    );
    row(
        &mut rows,
        "double entry: balances = sum of entries, 2 entries per commit summing to 0",
        &sums,
        format!("{} transfers, {} entries", report.transfers, report.entries),
    );

    // Conservation against what the checker itself funded.
    let totals: Vec<(String, Decimal)> = sqlx::query_as(
        "SELECT currency::text, sum(balance) FROM accounts WHERE kind = 'customer' GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&bank.pool)
    .await?;
    let funded = Decimal::new(FUNDS_CENTS * load.users.len() as i64, 2);
    for c in CURRENCIES {
        let total = totals
            .iter()
            .find(|(cur, _)| cur == c)
            .map(|(_, t)| *t)
            .unwrap_or_default();
        let bad = if total == funded {
            vec![]
        } else {
            vec![format!("sum {total} != funded {funded}")]
        };
        row(
            &mut rows,
            &format!("conservation {c}"),
            &bad,
            format!("customer balances sum to {} = funded", total.normalize()),
        );
    }

    let stored = stored(bank, &owners).await?;
    against_requests(load, &stored, &mut rows)?;

    // Notifications: every committed transfer reached each owner's socket,
    // or a resync told that owner to reload after it was committed.
    let deadline = Instant::now() + notify_wait;
    let mut missing: Vec<String>;
    loop {
        missing = missing_notifications(load, seen, &stored, &user_of, &account_user);
        if missing.is_empty() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let resync_count: usize = seen.resync_count.load(Ordering::Relaxed) as usize;
    row(
        &mut rows,
        "notifications: each owner saw every commit (or a later resync)",
        &missing,
        format!(
            "{} events, {} connects, {resync_count} resyncs",
            seen.events.load(Ordering::Relaxed),
            seen.connects.load(Ordering::Relaxed)
        ),
    );
    Ok(rows)
}

/// What the clients were told against what the ledger holds.
fn against_requests(load: &Load, stored: &[Stored], rows: &mut Vec<Row>) -> anyhow::Result<()> {
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
    let originals: HashMap<(usize, &str), &crate::workload::Request> = log
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
    for s in stored {
        if !explained.contains(&s.id) {
            leaked.push(format!(
                "transfer {} (key {}) was never answered 202",
                s.id, s.key
            ));
        }
    }
    let committed = stored.iter().filter(|s| s.status == "committed").count();
    let rejected = stored.len() - committed;
    row(
        rows,
        "lost: every 202 reached a final state",
        &lost,
        format!(
            "{} accepted transfers all final ({committed} committed, {rejected} rejected)",
            explained.len()
        ),
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

fn missing_notifications(
    load: &Load,
    seen: &Seen,
    stored: &[Stored],
    user_of: &HashMap<Uuid, usize>,
    account_user: &HashMap<Uuid, usize>,
) -> Vec<String> {
    let mut missing = Vec::new();
    let seen_map = seen.committed.lock().unwrap_or_else(|e| e.into_inner());
    let resyncs = seen.resyncs.lock().unwrap_or_else(|e| e.into_inner());
    for s in stored.iter().filter(|s| s.status == "committed") {
        let mut who = vec![user_of[&s.owner]];
        if let Some(&payee) = account_user.get(&s.to_account)
            && payee != who[0]
        {
            who.push(payee);
        }
        for u in who {
            let saw = seen_map.get(&u).is_some_and(|set| set.contains(&s.id));
            let covered = resyncs.get(&u).is_some_and(|t| *t > s.processed_at);
            if !saw && !covered {
                missing.push(format!("{} not pushed to {}", s.id, load.users[u].name));
            }
        }
    }
    missing
}
