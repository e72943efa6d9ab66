//! Notifications: every committed transfer reached each owner's socket
//! (payer and payee), or a resync told that owner to reload after it.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::reversals::Committed;
use super::{Row, Stored, row};
use crate::watch::Seen;
use crate::workload::Load;

/// How often the sockets' record is compared again while events arrive.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Appends the notification row, waiting up to `notify_wait` for late events.
pub async fn check(
    load: &Load,
    seen: &Seen,
    stored: &[Stored],
    reversed: &[Committed],
    notify_wait: Duration,
    rows: &mut Vec<Row>,
) {
    let user_of: HashMap<Uuid, usize> = load
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| (u.id, i))
        .collect();
    let account_user: HashMap<Uuid, usize> = load
        .users
        .iter()
        .enumerate()
        .flat_map(|(i, u)| u.accounts.iter().map(move |a| (*a, i)))
        .collect();
    let expected = expected(stored, reversed, &user_of, &account_user);
    let deadline = Instant::now() + notify_wait;
    let mut missing: Vec<String>;
    loop {
        missing = missing_notifications(seen, &expected)
            .into_iter()
            .map(|(id, u)| format!("{id} not pushed to {}", load.users[u].name))
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    let resync_count: usize = seen.resync_count.load(Ordering::Relaxed) as usize;
    row(
        rows,
        "notifications: each owner saw every commit (or a later resync)",
        &missing,
        format!(
            "{} events, {} connects, {resync_count} resyncs",
            seen.events.load(Ordering::Relaxed),
            seen.connects.load(Ordering::Relaxed)
        ),
    );
}

/// Each committed transfer, its owners (payer and payee) and when it was
/// processed; a reversal's owners are those of its original.
fn expected(
    stored: &[Stored],
    reversed: &[Committed],
    user_of: &HashMap<Uuid, usize>,
    account_user: &HashMap<Uuid, usize>,
) -> Vec<(Uuid, Vec<usize>, DateTime<Utc>)> {
    let mut out = Vec::new();
    for s in stored.iter().filter(|s| s.status == "committed") {
        let mut who = vec![user_of[&s.owner]];
        if let Some(&payee) = account_user.get(&s.to_account)
            && payee != who[0]
        {
            who.push(payee);
        }
        out.push((s.id, who, s.processed_at));
    }
    for r in reversed {
        let mut who: Vec<usize> = r
            .accounts
            .iter()
            .filter_map(|a| account_user.get(a).copied())
            .collect();
        who.dedup();
        out.push((r.id, who, r.processed_at));
    }
    out
}

/// (transfer, user) pairs where the user neither saw the commit nor
/// resynced after it.
fn missing_notifications(
    seen: &Seen,
    expected: &[(Uuid, Vec<usize>, DateTime<Utc>)],
) -> Vec<(Uuid, usize)> {
    let mut missing = Vec::new();
    let seen_map = seen.committed.lock().unwrap_or_else(|e| e.into_inner());
    let resyncs = seen.resyncs.lock().unwrap_or_else(|e| e.into_inner());
    for (id, who, processed_at) in expected {
        for &u in who {
            let saw = seen_map.get(&u).is_some_and(|set| set.contains(id));
            let covered = resyncs.get(&u).is_some_and(|t| t > processed_at);
            if !saw && !covered {
                missing.push((*id, u));
            }
        }
    }
    missing
}

/// Each hold's owner saw it final (`hold.updated`) or resynced after it,
/// waiting up to `notify_wait` for late events.
pub async fn holds(
    load: &Load,
    seen: &Seen,
    finals: &[(Uuid, usize, DateTime<Utc>)],
    notify_wait: Duration,
    rows: &mut Vec<Row>,
) {
    let deadline = Instant::now() + notify_wait;
    let mut missing = missing_holds(seen, finals);
    while !missing.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(POLL_INTERVAL).await;
        missing = missing_holds(seen, finals);
    }
    let missing: Vec<String> = missing
        .iter()
        .map(|(id, u)| {
            format!(
                "hold {id} final state not pushed to {}",
                load.users[*u].name
            )
        })
        .collect();
    row(
        rows,
        "notifications: each hold's owner saw its final state",
        &missing,
        format!("{} final holds pushed (or resynced)", finals.len()),
    );
}

fn missing_holds(seen: &Seen, finals: &[(Uuid, usize, DateTime<Utc>)]) -> Vec<(Uuid, usize)> {
    let seen_map = seen.holds_final.lock().unwrap_or_else(|e| e.into_inner());
    let resyncs = seen.resyncs.lock().unwrap_or_else(|e| e.into_inner());
    finals
        .iter()
        .filter(|(id, u, at)| {
            !seen_map.get(u).is_some_and(|s| s.contains(id))
                && resyncs.get(u).is_none_or(|t| t <= at)
        })
        .map(|(id, u, _)| (*id, *u))
        .collect()
}
