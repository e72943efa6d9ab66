//! The raw ceiling: the same double-entry transfers applied straight to
//! PostgreSQL with `ledger::apply::apply` (exactly the processor's
//! apply), in batches, on a few connections. No HTTP, no NATS, no Redis.
//! Also a probe of what one primary-key lookup per request costs (the
//! gateway's idempotent-replay check).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use hdrhistogram::Histogram;
use ledger::apply::{Mode, Outcome, TransferRequest, apply};
use rust_decimal::Decimal;
use serde::Serialize;
use uuid::Uuid;

use crate::load::{Latency, Scenario, seeded_rng};
use crate::procfs;
use crate::seed::World;

/// After a failed apply, the pause before the loop tries again: a
/// failing database is not hammered, and the window barely loses time.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Serialize)]
pub struct RawResult {
    pub scenario: &'static str,
    pub connections: usize,
    pub batch: usize,
    pub seconds: f64,
    pub committed: u64,
    pub rejected: u64,
    pub transfers_per_s: f64,
    /// One `apply` call (one transaction), ms.
    pub batch_latency_ms: Latency,
    pub cpu_seconds_postgres: f64,
    pub cpu_seconds_loop: f64,
    /// Cores busy machine-wide on average, and those outside PostgreSQL
    /// and this loop (other work on a shared machine).
    pub machine_busy_cores: f64,
    pub other_processes_cores: f64,
    /// PostgreSQL + loop CPU per committed transfer, core-µs.
    pub core_us_per_transfer: f64,
}

pub async fn ceiling(
    url: &str,
    world: Arc<World>,
    scenario: Scenario,
    connections: usize,
    batch: usize,
    warmup: Duration,
    measure: Duration,
) -> anyhow::Result<RawResult> {
    let pool = ledger::pool(url, connections as u32)?;
    let stop = Arc::new(AtomicBool::new(false));
    let window = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicU64::new(0));
    let rejected = Arc::new(AtomicU64::new(0));
    let hist = Arc::new(std::sync::Mutex::new(Histogram::<u64>::new_with_bounds(
        1,
        600_000_000,
        3,
    )?));
    let amount = Decimal::new(100, 2);
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (pool, world, stop, window, committed, rejected, hist) = (
            pool.clone(),
            world.clone(),
            stop.clone(),
            window.clone(),
            committed.clone(),
            rejected.clone(),
            hist.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut rng = seeded_rng(0x5eed + c as u64 * 7919);
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let requests: Vec<TransferRequest> = (0..batch)
                    .map(|_| {
                        let (from, to) = scenario.pick(&mut rng, world.accounts.len());
                        seq += 1;
                        TransferRequest::transfer(
                            Uuid::new_v4(),
                            world.users[world.owner_of[from]].id,
                            format!("raw-{c}-{seq}"),
                            world.accounts[from],
                            world.accounts[to],
                            amount,
                            "EUR".into(),
                            None,
                            Utc::now(),
                        )
                    })
                    .collect();
                let started = Instant::now();
                match apply(&pool, &requests, &[], Mode::Independent).await {
                    Ok(applied) => {
                        if window.load(Ordering::Relaxed) {
                            let ok = applied
                                .outcomes
                                .iter()
                                .filter(|o| **o == Outcome::Committed)
                                .count();
                            committed.fetch_add(ok as u64, Ordering::Relaxed);
                            rejected
                                .fetch_add((applied.outcomes.len() - ok) as u64, Ordering::Relaxed);
                            if let Ok(mut h) = hist.lock() {
                                h.saturating_record(started.elapsed().as_micros() as u64);
                            }
                        }
                    }
                    Err(e) => {
                        eprintln!("[bench] raw apply failed: {e}");
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                }
            }
        }));
    }
    tokio::time::sleep(warmup).await;
    let busy0 = procfs::machine_busy_seconds();
    let (pg0, me0, t0) = (
        procfs::cpu_by_comm("postgres"),
        procfs::self_cpu_seconds(),
        Instant::now(),
    );
    window.store(true, Ordering::SeqCst);
    tokio::time::sleep(measure).await;
    window.store(false, Ordering::SeqCst);
    let (pg1, me1, seconds) = (
        procfs::cpu_by_comm("postgres"),
        procfs::self_cpu_seconds(),
        t0.elapsed().as_secs_f64(),
    );
    let busy1 = procfs::machine_busy_seconds();
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        let _ = t.await;
    }
    pool.close().await;
    let committed = committed.load(Ordering::SeqCst);
    let hist = hist
        .lock()
        .map(|h| h.clone())
        .unwrap_or_else(|e| e.into_inner().clone());
    Ok(RawResult {
        scenario: scenario.name(),
        connections,
        batch,
        seconds,
        committed,
        rejected: rejected.load(Ordering::SeqCst),
        transfers_per_s: committed as f64 / seconds,
        batch_latency_ms: Latency::from_hist(&hist),
        cpu_seconds_postgres: pg1 - pg0,
        cpu_seconds_loop: me1 - me0,
        machine_busy_cores: (busy1 - busy0) / seconds,
        other_processes_cores: ((busy1 - busy0) - (pg1 - pg0) - (me1 - me0)) / seconds,
        core_us_per_transfer: if committed > 0 {
            (pg1 - pg0 + me1 - me0) * 1e6 / committed as f64
        } else {
            0.0
        },
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct LookupProbe {
    pub mode: String,
    pub concurrency: usize,
    pub lookups_per_s: f64,
    /// PostgreSQL + client CPU per looked-up id, core-µs.
    pub core_us_per_lookup: f64,
    pub latency_ms: Latency,
}

/// What the gateway's "is this transfer id known already?" check costs: a
/// primary-key lookup of a fresh (absent) id on `transfers`, one query per
/// id (`batch` = 1, as `ledger::transfers::get`) or `batch` ids per
/// `= ANY($1)` query (as a coalescing lookup would).
pub async fn lookup_probe(
    url: &str,
    batch: usize,
    concurrency: usize,
    measure: Duration,
) -> anyhow::Result<LookupProbe> {
    let pool = ledger::pool(url, 16)?;
    // Open the connections before measuring.
    for _ in 0..16 {
        let _ = ledger::ping(&pool).await;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let hist = Arc::new(std::sync::Mutex::new(Histogram::<u64>::new_with_bounds(
        1,
        600_000_000,
        3,
    )?));
    let (pg0, me0, t0) = (
        procfs::cpu_by_comm("postgres"),
        procfs::self_cpu_seconds(),
        Instant::now(),
    );
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (pool, stop, done, hist) = (pool.clone(), stop.clone(), done.clone(), hist.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let ok = if batch <= 1 {
                    ledger::transfers::get(&pool, Uuid::new_v4()).await.is_ok()
                } else {
                    let ids: Vec<Uuid> = (0..batch).map(|_| Uuid::new_v4()).collect();
                    sqlx::query_scalar::<_, Uuid>("SELECT id FROM transfers WHERE id = ANY($1)")
                        .bind(&ids)
                        .fetch_all(&pool)
                        .await
                        .is_ok()
                };
                if ok {
                    done.fetch_add(batch.max(1) as u64, Ordering::Relaxed);
                    if let Ok(mut h) = hist.lock() {
                        h.saturating_record(started.elapsed().as_micros() as u64);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(measure).await;
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        let _ = t.await;
    }
    let seconds = t0.elapsed().as_secs_f64();
    let (pg1, me1) = (procfs::cpu_by_comm("postgres"), procfs::self_cpu_seconds());
    pool.close().await;
    let n = done.load(Ordering::SeqCst);
    let hist = hist
        .lock()
        .map(|h| h.clone())
        .unwrap_or_else(|e| e.into_inner().clone());
    Ok(LookupProbe {
        mode: if batch <= 1 {
            "one id per query".into()
        } else {
            format!("{batch} ids per query")
        },
        concurrency,
        lookups_per_s: n as f64 / seconds,
        core_us_per_lookup: if n > 0 {
            (pg1 - pg0 + me1 - me0) * 1e6 / n as f64
        } else {
            0.0
        },
        latency_ms: Latency::from_hist(&hist),
    })
}
