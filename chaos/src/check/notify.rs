//! Notifications: every committed transfer reached each owner's socket
//! (payer and payee), or a resync told that owner to reload after it.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use uuid::Uuid;

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
    let deadline = Instant::now() + notify_wait;
    let mut missing: Vec<String>;
    loop {
        missing = missing_notifications(load, seen, stored, &user_of, &account_user);
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
