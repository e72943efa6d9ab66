//! After the faults: wait for the queue to drain, then check every
//! invariant against the database and what the clients were told.
//!
//! One module per invariant group: `drain` (the end of the run),
//! `bookkeeping` (double entry, limits, conservation), `requests` (answers
//! against the ledger) and `notify` (WebSocket events).

use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::bank::Bank;
use crate::watch::Seen;
use crate::workload::Load;

mod bookkeeping;
mod drain;
mod hold_ledger;
pub mod holds;
mod notify;
mod requests;
pub mod reversals;

pub use drain::drain;

/// Reads of one resource the checks make before calling it unreadable.
const READ_ATTEMPTS: usize = 5;
const READ_RETRY_INTERVAL: Duration = Duration::from_millis(200);

/// `GET path` as `user`: the body of a 200; `None` for a 404 or when every
/// attempt failed.
async fn read(load: &Load, user: usize, path: &str) -> Option<serde_json::Value> {
    for _ in 0..READ_ATTEMPTS {
        match load.get(user, path).await {
            Some((200, v)) => return Some(v),
            Some((404, _)) => return None,
            _ => tokio::time::sleep(READ_RETRY_INTERVAL).await,
        }
    }
    None
}

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
pub(crate) struct Stored {
    pub(crate) id: Uuid,
    pub(crate) owner: Uuid,
    pub(crate) key: String,
    pub(crate) status: String,
    pub(crate) amount: Decimal,
    pub(crate) to_account: Uuid,
    pub(crate) processed_at: DateTime<Utc>,
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

/// Every check, as table rows. `holds_drained`: the seconds the holds took
/// to be final after the load stopped, when the two-phase workload ran.
pub async fn check(
    bank: &Bank,
    load: &Load,
    seen: &Seen,
    notify_wait: Duration,
    holds_drained: Option<f64>,
) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let owners: Vec<Uuid> = load.users.iter().map(|u| u.id).collect();

    bookkeeping::check(bank, load, &mut rows).await?;
    let stored = stored(bank, &owners).await?;
    // Captures and reversals are transfers nobody sent as such.
    let mut explained = std::collections::HashSet::new();
    let mut reversed = Vec::new();
    let mut finals = Vec::new();
    if let Some(secs) = holds_drained {
        let h = holds::check(bank, load, secs, &mut rows).await?;
        explained.extend(h.captures);
        finals = h.finals;
        reversed = reversals::check(bank, load, &mut rows).await?;
        explained.extend(reversed.iter().map(|r| r.id));
    }
    requests::against_requests(load, &stored, &explained, &mut rows)?;
    notify::check(load, seen, &stored, &reversed, notify_wait, &mut rows).await;
    if holds_drained.is_some() {
        notify::holds(load, seen, &finals, notify_wait, &mut rows).await;
    }
    Ok(rows)
}
