//! `make bench`: how fast the whole transfer pipeline is, next to the raw
//! PostgreSQL ceiling measured in the same run on the same machine.
//!
//! 1. A private deployment: its own database, stream prefix and Redis prefix;
//!    N accounts (default 100,000) owned by a few bench users, funded in bulk.
//! 2. Raw ceiling: `ledger::apply::apply` (the processor's apply)
//!    straight to PostgreSQL, before any service runs.
//! 3. The services (`$BIN/processor`, `notifier`, `gateway`) as children.
//! 4. Closed loop (many requests in flight) for the uniform and hot
//!    scenarios: accepted/s and committed/s over a window after warm-up.
//! 5. Open loop at fixed fractions of that maximum: end-to-end latency, HTTP
//!    send → committed event on the WebSocket (HDR histogram).
//! 6. CPU seconds and peak RSS per service; the ledger invariants after
//!    every run. A table on stdout, the same as JSON in bench/results/.
//!
//! Everything it created is deleted at the end, also on error or Ctrl-C.

/// jemalloc, as in the services: the generator's own CPU per request
/// (glibc malloc was a quarter of it under overload) is CPU the co-located
/// services do not get, and lag added to every latency it measures.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod args;
mod load;
mod pgstat;
mod pipeline;
mod procfs;
mod prom;
mod raw;
mod report;
mod seed;
mod services;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;

pub use args::{Args, Settings};
use load::Scenario;
use report::{Invariants, Report};
use services::{Deployment, Service};

/// How long the runtime gives its last tasks when the bench exits.
const RUNTIME_SHUTDOWN: Duration = Duration::from_secs(2);
/// The lookup probe's window per mode (`--quick`: shorter).
const PROBE_WINDOW: Duration = Duration::from_secs(5);
const PROBE_WINDOW_QUICK: Duration = Duration::from_secs(1);
/// The load generator's requests: far above any healthy answer, so only a
/// hung gateway counts as a timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long each service may take to be ready after it starts.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long each service may take to exit on SIGTERM at the end.
const STOP_GRACE: Duration = Duration::from_secs(5);

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let code = rt.block_on(async move {
        let dep = match Deployment::new(
            args.bin.clone(),
            &args.pg,
            args.nats_url.clone(),
            args.redis_url.clone(),
            args.backlog_budget_ms,
        ) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("bench: {e:#}");
                return std::process::ExitCode::FAILURE;
            }
        };
        eprintln!(
            "[bench] run {} (database, stream and key prefix), logs in {}",
            dep.run,
            dep.log_dir.display()
        );
        let mut handle = tokio::spawn(run(args.clone(), dep.clone()));
        let outcome = tokio::select! {
            r = &mut handle => match r {
                Ok(r) => r,
                Err(e) => Err(anyhow::anyhow!("bench panicked: {e}")),
            },
            _ = interrupted() => {
                handle.abort();
                let _ = handle.await; // drops the children (killed)
                Err(anyhow::anyhow!("interrupted"))
            }
        };
        if outcome.is_err() {
            eprint!("{}", services::log_tails(&dep.log_dir, 20));
        }
        if args.keep {
            eprintln!(
                "[bench] --keep: database {} and logs {} kept",
                dep.database_url,
                dep.log_dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&dep.log_dir);
            if services::teardown(&dep).await {
                eprintln!("[bench] cleaned up (database, streams, Redis keys, logs)");
            }
        }
        match outcome {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench: {e:#}");
                std::process::ExitCode::FAILURE
            }
        }
    });
    rt.shutdown_timeout(RUNTIME_SHUTDOWN);
    code
}

async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}

pub(crate) async fn check_invariants(pool: &sqlx::PgPool) -> anyhow::Result<Invariants> {
    let started = Instant::now();
    let r = ledger::invariants::check(pool).await?;
    Ok(Invariants {
        holds: r.holds(),
        violations: r.violations(),
        transfers: r.transfers,
        committed: r.committed,
        entries: r.entries,
        totals: r
            .totals
            .iter()
            .map(|(c, t)| (c.clone(), t.to_string()))
            .collect(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

async fn run(args: Args, dep: Deployment) -> anyhow::Result<()> {
    let s = args.settings()?;
    let started = Instant::now();
    ledger::create_database_if_missing(&dep.database_url)
        .await
        .context("create the bench database")?;
    let pool = ledger::pool(&dep.database_url, 8)?;
    ledger::migrate(&pool).await.context("migrate")?;
    let world = Arc::new(seed::seed(&pool, &dep.run, args.users.max(1), s.accounts).await?);
    let mut report = Report::new(&args, &s, &dep);
    report.seed_seconds = started.elapsed().as_secs_f64();

    // (1) The raw ceiling, with the machine to itself.
    if !args.skip_raw {
        // The raw ceiling for the two reference distributions only: it
        // measures PostgreSQL, and the others add nothing to that.
        let raw_scenarios = s
            .scenarios
            .iter()
            .copied()
            .filter(|x| matches!(x, Scenario::Uniform | Scenario::Hot));
        for scenario in raw_scenarios {
            eprintln!(
                "[bench] raw ceiling, {}: {} connections × batch {}",
                scenario.name(),
                args.raw_connections,
                args.raw_batch
            );
            // --quick keeps the raw loop short: every transfer it writes makes
            // each later invariant check slower.
            let (warmup, measure) = if args.quick {
                (s.warmup / 2, s.measure / 2)
            } else {
                (s.warmup, s.measure)
            };
            let r = raw::ceiling(
                &dep.database_url,
                world.clone(),
                scenario,
                args.raw_connections,
                args.raw_batch,
                warmup,
                measure,
            )
            .await?;
            eprintln!(
                "[bench]   {:.0} transfers/s, {:.1} core-µs each (PostgreSQL + loop), \
                 batch p50 {:.1} ms, machine {:.2} cores busy",
                r.transfers_per_s,
                r.core_us_per_transfer,
                r.batch_latency_ms.p50,
                r.machine_busy_cores
            );
            let inv = check_invariants(&pool).await?;
            report
                .invariants
                .push((format!("raw {}", scenario.name()), inv));
            report.raw.push(r);
        }
    }
    if !args.skip_probe {
        let probe = if args.quick {
            PROBE_WINDOW_QUICK
        } else {
            PROBE_WINDOW
        };
        for batch in [1, 64] {
            let p = raw::lookup_probe(&dep.database_url, batch, 64, probe).await?;
            eprintln!(
                "[bench] lookup probe ({}): {:.0} lookups/s, {:.1} core-µs each",
                p.mode, p.lookups_per_s, p.core_us_per_lookup
            );
            report.lookup_probe.push(p);
        }
    }

    if args.raw_only {
        return Ok(());
    }

    // (2) The services.
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(usize::MAX)
        .timeout(REQUEST_TIMEOUT)
        .build()?;
    let mut svcs: Vec<Service> = Vec::new();
    let mut wanted = vec![("processor", dep.processor)];
    for name in ["processor-2", "processor-3", "processor-4"]
        .into_iter()
        .take(args.processors.clamp(1, 4) - 1)
    {
        wanted.push((name, testkit::try_free_addr()?));
    }
    wanted.extend([("notifier", dep.notifier), ("gateway", dep.gateway)]);
    for (name, addr) in wanted {
        let mut svc = services::start(&dep, name, addr).await?;
        services::wait_ready(&http, &mut svc, READY_TIMEOUT).await?;
        svcs.push(svc);
    }
    eprintln!(
        "[bench] services ready: gateway {}, notifier {}, processor {}",
        dep.gateway, dep.notifier, dep.processor
    );
    let mut pipeline = pipeline::Pipeline {
        settings: &s,
        dep: &dep,
        http: &http,
        svcs: &mut svcs,
        pool: &pool,
        world: world.clone(),
    };
    let result = pipeline.all(&args, &mut report).await;
    for svc in svcs.drain(..) {
        services::stop(svc, STOP_GRACE).await;
    }
    result?;
    pool.close().await;
    report.total_seconds = started.elapsed().as_secs_f64();
    report.finish();
    print!("{}", report.table());
    if let Some(dir) = s.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&s.out, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("write {}", s.out.display()))?;
    eprintln!("[bench] JSON written to {}", s.out.display());
    Ok(())
}
