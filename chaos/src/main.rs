//! The bank checker (`make chaos`; `--short` inside `make test`).
//!
//! Starts private PostgreSQL, NATS and Redis servers and the real gateway,
//! processor replicas and notifier against them; runs a seeded workload of
//! transfers, retries, key reuse and invalid requests from many clients with
//! a WebSocket per user, and alongside it holds (captured, voided, expiring)
//! and reversals; injects faults one after another; lets the queue drain;
//! then checks conservation, double entry, overdraft limits, exactly-once,
//! stable answers and notifications, the holds' and reversals' invariants,
//! prints a table and exits non-zero on any violation.

mod available;
mod bank;
mod check;
mod faults;
mod holds;
mod http;
mod infra;
mod reversals;
mod services;
mod watch;
mod workload;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Parser;

use crate::bank::Bank;
use crate::watch::Seen;
use crate::workload::Load;

/// How often the request count is looked at while waiting for `--requests`.
const REQUESTS_POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How long unanswered requests are still resent after the load stopped.
const RESEND_AFTER_STOP: Duration = Duration::from_secs(60);
/// How long every accepted transfer may take to be final once the load
/// stopped (it is one of the checks, printed with this bound).
const DRAIN_BOUND: Duration = Duration::from_secs(120);
/// How long late WebSocket events are waited for before a missing one counts.
const NOTIFY_WAIT: Duration = Duration::from_secs(30);
/// Concurrent reverser clients (two or more: reversals race each other).
const REVERSER_CLIENTS: u64 = 2;

#[derive(Parser, Debug)]
#[command(about = "Runs the bank under faults and checks that no money is lost or doubled")]
struct Args {
    /// The short form for `make test`: one round of every fault, shorter outages.
    #[arg(long)]
    short: bool,
    /// Workload seed (printed; pass it again to replay the same choices).
    #[arg(long, env = "CHAOS_SEED")]
    seed: Option<u64>,
    /// Rounds of the eight faults (default 3, short 1).
    #[arg(long, env = "CHAOS_ROUNDS")]
    rounds: Option<usize>,
    /// Keep sending until at least this many HTTP requests were made (default 100000, short 0).
    #[arg(long, env = "CHAOS_REQUESTS")]
    requests: Option<u64>,
    #[arg(long, env = "CHAOS_USERS")]
    users: Option<usize>,
    /// Concurrent HTTP clients.
    #[arg(long, env = "CHAOS_CLIENTS")]
    clients: Option<usize>,
    #[arg(long, env = "CHAOS_PROCESSORS", default_value_t = 2)]
    processors: usize,
    /// How long PostgreSQL and Redis stay down (NATS half of it), seconds.
    #[arg(long, env = "CHAOS_OUTAGE_SECS")]
    outage_secs: Option<u64>,
    /// Pause between faults, seconds.
    #[arg(long, env = "CHAOS_GAP_SECS")]
    gap_secs: Option<u64>,
    /// Keep the run directory (logs, data) even when everything passed.
    #[arg(long)]
    keep: bool,
    /// Holds (capture, void, expiry) and reversals alongside the transfers,
    /// and their invariants in the table (`--two-phase false`: transfers only).
    #[arg(long, env = "CHAOS_TWO_PHASE", action = clap::ArgAction::Set, default_value_t = true)]
    two_phase: bool,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("[chaos] error: {e:#}");
            std::process::exit(2);
        }
    }
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let short = args.short;
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64 % 1_000_000_000)
            .unwrap_or(42)
    });
    let rounds = args.rounds.unwrap_or(if short { 1 } else { 3 });
    let min_requests = args.requests.unwrap_or(if short { 0 } else { 100_000 });
    let users_n = args.users.unwrap_or(if short { 12 } else { 24 });
    let clients = args.clients.unwrap_or(if short { 12 } else { 32 });
    let outage = Duration::from_secs(args.outage_secs.unwrap_or(if short { 4 } else { 10 }));
    let gap = Duration::from_secs(args.gap_secs.unwrap_or(if short { 3 } else { 8 }));
    println!(
        "[chaos] seed {seed}: {users_n} users, {clients} clients, {} processors, {rounds} round(s) of {} faults, \
         outages {}s, gaps {}s, at least {min_requests} requests",
        args.processors,
        faults::ALL.len(),
        outage.as_secs(),
        gap.as_secs()
    );
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("chaos-{seed}-{}", std::process::id()));
    let mut bank = Bank::start(&dir, args.processors.max(1)).await?;
    let mut users = workload::users(seed, users_n);
    bank.seed(&mut users).await?;
    let reverser = if args.two_phase {
        Some(bank.seed_reverser(seed).await?)
    } else {
        None
    };
    bank.start_services().await?;
    println!(
        "[chaos] private servers and services up in {:.1}s ({})",
        started.elapsed().as_secs_f64(),
        dir.display()
    );

    let load = Arc::new(Load::new(bank.api(), users, reverser)?);
    for u in 0..users_n {
        load.login(u).await?;
    }
    if args.two_phase {
        load.login(load.reverser_index()).await?;
    }
    let seen = Arc::new(Seen::default());
    let watchers: Vec<_> = (0..users_n)
        .map(|u| tokio::spawn(watch::watch(load.clone(), seen.clone(), bank.ws(), u)))
        .collect();
    let workers: Vec<_> = (0..clients)
        .map(|c| {
            tokio::spawn(
                load.clone()
                    .client(seed.wrapping_mul(31).wrapping_add(c as u64 + 1)),
            )
        })
        .collect();
    let mut workers = workers;
    if args.two_phase {
        let mix = |k: u64| seed.wrapping_mul(97).wrapping_add(k);
        for c in 0..(clients / 4).max(2) as u64 {
            workers.push(tokio::spawn(holds::client(load.clone(), mix(c))));
        }
        for c in 0..REVERSER_CLIENTS {
            workers.push(tokio::spawn(reversals::client(load.clone(), mix(1000 + c))));
        }
        workers.push(tokio::spawn(available::sampler(load.clone(), mix(2000))));
    }

    // Faults, one at a time, with the load running.
    let mut injected: BTreeMap<String, u32> = BTreeMap::new();
    let mut last_fault = Instant::now();
    tokio::time::sleep(gap).await;
    for round in 0..rounds {
        for fault in faults::ALL {
            let t = Instant::now();
            let before = load.counts.attempts.load(Ordering::Relaxed);
            bank.inject(fault, round, outage).await?;
            *injected.entry(fault.to_string()).or_default() += 1;
            last_fault = Instant::now();
            println!(
                "[chaos] {:>6.1}s  {fault}: back after {:.1}s ({} requests meanwhile)",
                started.elapsed().as_secs_f64(),
                t.elapsed().as_secs_f64(),
                load.counts.attempts.load(Ordering::Relaxed) - before
            );
            tokio::time::sleep(gap).await;
        }
    }
    while load.counts.attempts.load(Ordering::Relaxed) < min_requests {
        tokio::time::sleep(REQUESTS_POLL_INTERVAL).await;
    }
    // Stop new requests; resend what is unanswered for a bounded time.
    load.stop.store(true, Ordering::Relaxed);
    if let Ok(mut d) = load.deadline.lock() {
        *d = Some(Instant::now() + RESEND_AFTER_STOP);
    }
    for w in workers {
        let _ = w.await;
    }
    println!(
        "[chaos] load stopped after {:.1}s; draining",
        started.elapsed().as_secs_f64()
    );
    let holds_drained = if args.two_phase {
        Some(check::holds::wait_final(&load, DRAIN_BOUND).await)
    } else {
        None
    };
    let mut accepted: Vec<uuid::Uuid> = {
        let log = load.log.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        let set: std::collections::HashSet<uuid::Uuid> = log
            .iter()
            .filter(|r| r.kind == workload::Kind::New)
            .flat_map(|r| r.ids.iter().copied())
            .collect();
        set.into_iter().collect()
    };
    accepted.extend(check::reversals::accepted(&load));
    let stopped = last_fault.elapsed().as_secs_f64();
    let drain = check::drain(&bank, &accepted, DRAIN_BOUND).await?;
    let mut rows = check::check(&bank, &load, &seen, NOTIFY_WAIT, holds_drained).await?;
    seen.stop.store(true, Ordering::Relaxed);
    for w in watchers {
        let _ = w.await;
    }
    rows.insert(
        0,
        check::Row {
            name: format!(
                "every 202 final within {} s after the load stopped",
                DRAIN_BOUND.as_secs()
            ),
            ok: drain.all_final,
            detail: format!(
                "{} accepted transfers final {:.1}s after the load stopped ({:.1}s after the last fault)",
                accepted.len(),
                drain.final_secs,
                stopped + drain.final_secs
            ),
        },
    );
    rows.insert(
        1,
        check::Row {
            name: "queues drained (commands, results): nothing stored, pending or unacked".into(),
            ok: drain.queue_empty,
            detail: if drain.queue_empty {
                format!("empty {:.1}s after the load stopped", drain.queue_secs)
            } else {
                format!("still {} after {:.1}s", drain.queues, drain.queue_secs)
            },
        },
    );
    rows.push(check::Row {
        name: "nothing dead-lettered".into(),
        ok: drain.dead_letters == 0,
        detail: format!("{} messages in the dead-letter stream", drain.dead_letters),
    });
    rows.push(check::Row {
        name: "services recovered from every fault".into(),
        ok: bank.problems.is_empty(),
        detail: if bank.problems.is_empty() {
            "every restart ready, every SIGTERM exit 0".into()
        } else {
            bank.problems.join("; ")
        },
    });

    let ok = rows.iter().all(|r| r.ok);
    print_report(seed, &load, &injected, &rows, started.elapsed());
    bank.shutdown(args.keep || !ok).await;
    Ok(ok)
}

fn print_report(
    seed: u64,
    load: &Load,
    injected: &BTreeMap<String, u32>,
    rows: &[check::Row],
    elapsed: Duration,
) {
    let c = &load.counts;
    let (requests, kinds) = match load.log.lock() {
        Ok(log) => {
            let mut k: BTreeMap<&str, u64> = BTreeMap::new();
            for r in log.iter() {
                *k.entry(match r.kind {
                    workload::Kind::New => "new",
                    workload::Kind::Reused => "key reused, other body",
                    workload::Kind::Invalid => "invalid",
                })
                .or_default() += 1;
            }
            (log.len(), k)
        }
        Err(_) => (0, BTreeMap::new()),
    };
    println!(
        "\n=== bank checker, seed {seed}, {:.0}s ===",
        elapsed.as_secs_f64()
    );
    let line = |label: &str, value: &dyn std::fmt::Display| println!("{label:<44} {value}");
    line("logical requests", &requests);
    for (k, n) in &kinds {
        line(&format!("  {k}"), n);
    }
    if let (Ok(holds), Ok(revs)) = (load.holds.lock(), load.reversals.lock())
        && !(holds.is_empty() && revs.is_empty())
    {
        line("hold requests", &holds.len());
        line(
            "  captures and voids",
            &holds.iter().map(|h| h.cmds.len()).sum::<usize>(),
        );
        line("reversal requests", &revs.len());
    }
    line("HTTP requests sent", &c.attempts.load(Ordering::Relaxed));
    line("  answered 202", &c.accepted.load(Ordering::Relaxed));
    line(
        "  answered 4xx (definitive)",
        &c.refused.load(Ordering::Relaxed),
    );
    if let Ok(t) = c.transient.lock() {
        for (cause, n) in t.iter() {
            line(&format!("  transient, resent: {cause}"), n);
        }
    }
    line(
        "exact retries of earlier requests",
        &c.retried_exact.load(Ordering::Relaxed),
    );
    line(
        "concurrent duplicate pairs",
        &c.concurrent_duplicates.load(Ordering::Relaxed),
    );
    let total: u32 = injected.values().sum();
    line("faults injected", &total);
    for (f, n) in injected {
        line(&format!("  {f}"), n);
    }
    println!();
    println!("{:<70} {:<6} detail", "check", "result");
    for r in rows {
        println!(
            "{:<70} {:<6} {}",
            r.name,
            if r.ok { "ok" } else { "FAIL" },
            r.detail
        );
    }
    let lost = rows.iter().any(|r| r.name.starts_with("lost") && !r.ok);
    let doubled = rows.iter().any(|r| r.name.starts_with("doubled") && !r.ok);
    println!(
        "\nlost = {}, doubled = {}, invariants {}",
        if lost { "VIOLATED" } else { "0" },
        if doubled { "VIOLATED" } else { "0" },
        if rows.iter().all(|r| r.ok) {
            "hold"
        } else {
            "VIOLATED"
        }
    );
}
