//! `make bench`: how fast the whole transfer pipeline is, next to the raw
//! PostgreSQL ceiling measured in the same run on the same machine.
//!
//! 1. A private deployment: its own database, stream prefix and Redis prefix;
//!    N accounts (default 100,000) owned by a few bench users, funded in bulk.
//! 2. Raw ceiling: `ledger::apply::apply_batch` (the processor's apply)
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

mod load;
mod procfs;
mod prom;
mod raw;
mod report;
mod seed;
mod services;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;

use load::{Driver, Latency, Scenario, Session};
use report::{Invariants, Report, RunResult};
use services::{Deployment, Service};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "bench",
    about = "Throughput and latency of the transfer pipeline next to the raw PostgreSQL ceiling"
)]
pub struct Args {
    /// Folder with the release binaries gateway, processor, notifier, bankadmin.
    #[arg(long, env = "BIN")]
    pub bin: PathBuf,
    /// A tiny run proving the harness works (2,000 accounts, 1 s warm-up, 3 s windows).
    #[arg(long)]
    pub quick: bool,
    /// Accounts to create and fund [default: 100000, --quick: 2000].
    #[arg(long)]
    pub accounts: Option<usize>,
    /// Bench users owning the accounts (one WebSocket each).
    #[arg(long, default_value_t = 8)]
    pub users: usize,
    /// Warm-up before each measurement window, seconds [default: 5, --quick: 1].
    #[arg(long)]
    pub warmup: Option<f64>,
    /// Measurement window, seconds [default: 30, --quick: 3].
    #[arg(long)]
    pub measure: Option<f64>,
    /// Requests in flight in the closed loop.
    #[arg(long, default_value_t = 128)]
    pub concurrency: usize,
    /// Processor replicas sharing the durable consumer (1–4); per-stage
    /// histograms are read from the first.
    #[arg(long, env = "BENCH_PROCESSORS", default_value_t = 1)]
    pub processors: usize,
    /// Connections of the raw ceiling loop.
    #[arg(long, default_value_t = 4)]
    pub raw_connections: usize,
    /// Transfers per transaction in the raw ceiling loop.
    #[arg(long, default_value_t = 500)]
    pub raw_batch: usize,
    /// Open-loop rates, in percent of the measured uniform maximum.
    #[arg(long, value_delimiter = ',', default_value = "10,25,50,75")]
    pub open_loads: Vec<f64>,
    /// Open loop: most requests outstanding before sends are dropped (counted).
    #[arg(long, default_value_t = 4096)]
    pub max_inflight: usize,
    /// JSON output [default: bench/results/latest.json, --quick: bench/results/quick.json].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// PostgreSQL server URL without a database name.
    #[arg(
        long,
        env = "BENCH_PG_URL",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    pub pg: String,
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    #[arg(long)]
    pub skip_raw: bool,
    #[arg(long)]
    pub skip_hot: bool,
    #[arg(long)]
    pub skip_open: bool,
    /// Skip the primary-key lookup probe.
    #[arg(long)]
    pub skip_probe: bool,
    /// Keep the database, streams and logs (debugging).
    #[arg(long)]
    pub keep: bool,
}

pub struct Settings {
    pub accounts: usize,
    pub warmup: Duration,
    pub measure: Duration,
    pub drain_stall: Duration,
    pub out: PathBuf,
}

impl Args {
    fn settings(&self) -> Settings {
        let (accounts, warmup, measure, out) = if self.quick {
            (2_000, 1.0, 3.0, "bench/results/quick.json")
        } else {
            (100_000, 5.0, 30.0, "bench/results/latest.json")
        };
        Settings {
            accounts: self
                .accounts
                .unwrap_or(accounts)
                .max(2 * load::HOT_ACCOUNTS),
            warmup: Duration::from_secs_f64(self.warmup.unwrap_or(warmup)),
            measure: Duration::from_secs_f64(self.measure.unwrap_or(measure)),
            drain_stall: Duration::from_secs(if self.quick { 5 } else { 15 }),
            out: self.out.clone().unwrap_or_else(|| PathBuf::from(out)),
        }
    }
}

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
            services::teardown(&dep).await;
            let _ = std::fs::remove_dir_all(&dep.log_dir);
            eprintln!("[bench] cleaned up (database, streams, Redis keys, logs)");
        }
        match outcome {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench: {e:#}");
                std::process::ExitCode::FAILURE
            }
        }
    });
    rt.shutdown_timeout(Duration::from_secs(2));
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

async fn check_invariants(pool: &sqlx::PgPool) -> anyhow::Result<Invariants> {
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
    let s = args.settings();
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
        for scenario in scenarios(&args) {
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
            eprintln!("[bench]   {:.0} transfers/s", r.transfers_per_s);
            let inv = check_invariants(&pool).await?;
            report
                .invariants
                .push((format!("raw {}", scenario.name()), inv));
            report.raw.push(r);
        }
    }
    if !args.skip_probe {
        let probe = if args.quick {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(5)
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

    // (2) The services.
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(usize::MAX)
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut svcs: Vec<Service> = Vec::new();
    let mut wanted = vec![("processor", dep.processor)];
    for name in ["processor-2", "processor-3", "processor-4"]
        .into_iter()
        .take(args.processors.clamp(1, 4) - 1)
    {
        wanted.push((name, services::free_addr()?));
    }
    wanted.extend([("notifier", dep.notifier), ("gateway", dep.gateway)]);
    for (name, addr) in wanted {
        let mut svc = services::start(&dep, name, addr).await?;
        services::wait_ready(&http, &mut svc, Duration::from_secs(30)).await?;
        svcs.push(svc);
    }
    eprintln!(
        "[bench] services ready: gateway {}, notifier {}, processor {}",
        dep.gateway, dep.notifier, dep.processor
    );
    let result = pipeline(
        &args,
        &s,
        &dep,
        &http,
        &mut svcs,
        &pool,
        world.clone(),
        &mut report,
    )
    .await;
    for svc in svcs.drain(..) {
        services::stop(svc, Duration::from_secs(5)).await;
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

fn scenarios(args: &Args) -> Vec<Scenario> {
    if args.skip_hot {
        vec![Scenario::Uniform]
    } else {
        vec![Scenario::Uniform, Scenario::Hot]
    }
}

#[allow(clippy::too_many_arguments)]
async fn pipeline(
    args: &Args,
    s: &Settings,
    dep: &Deployment,
    http: &reqwest::Client,
    svcs: &mut [Service],
    pool: &sqlx::PgPool,
    world: Arc<seed::World>,
    report: &mut Report,
) -> anyhow::Result<()> {
    for scenario in scenarios(args) {
        eprintln!(
            "[bench] closed loop, {}: {} in flight",
            scenario.name(),
            args.concurrency
        );
        let r = pipeline_run(
            s,
            dep,
            http,
            svcs,
            pool,
            world.clone(),
            scenario,
            Mode::Closed(args.concurrency),
        )
        .await?;
        eprintln!(
            "[bench]   accepted {:.0}/s, committed {:.0}/s",
            r.accepted_per_s, r.committed_per_s
        );
        report.runs.push(r);
    }
    if args.skip_open {
        return Ok(());
    }
    let max = report
        .runs
        .iter()
        .find(|r| r.scenario == "uniform" && r.mode == "closed")
        .map(|r| r.sustained_per_s)
        .unwrap_or(0.0);
    if max < 1.0 {
        anyhow::bail!("the closed loop committed nothing: no open-loop rates to derive");
    }
    for pct in &args.open_loads {
        let rate = (max * pct / 100.0).max(1.0);
        eprintln!("[bench] open loop, uniform: {pct}% of {max:.0}/s = {rate:.0}/s");
        let r = pipeline_run(
            s,
            dep,
            http,
            svcs,
            pool,
            world.clone(),
            Scenario::Uniform,
            Mode::Open {
                rate,
                pct: *pct,
                max_inflight: args.max_inflight,
            },
        )
        .await?;
        eprintln!(
            "[bench]   committed {:.0}/s, e2e p50 {:.1} ms p99 {:.1} ms",
            r.committed_per_s, r.e2e_ms.p50, r.e2e_ms.p99
        );
        report.runs.push(r);
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Mode {
    Closed(usize),
    Open {
        rate: f64,
        pct: f64,
        max_inflight: usize,
    },
}

#[allow(clippy::too_many_arguments)]
async fn pipeline_run(
    s: &Settings,
    dep: &Deployment,
    http: &reqwest::Client,
    svcs: &mut [Service],
    pool: &sqlx::PgPool,
    world: Arc<seed::World>,
    scenario: Scenario,
    mode: Mode,
) -> anyhow::Result<RunResult> {
    let gateway = dep.gateway.to_string();
    let session = Session::open(http, &gateway, &dep.notifier.to_string(), &world).await?;
    let tag = match mode {
        Mode::Closed(_) => format!("{}-closed", scenario.name()),
        Mode::Open { pct, .. } => format!("{}-open{pct}", scenario.name()),
    };
    let driver = Arc::new(Driver {
        http: http.clone(),
        url: format!("http://{gateway}/v1/transfers"),
        world: world.clone(),
        users: session.users.clone(),
        pending: session.pending.clone(),
        rec: session.rec.clone(),
        scenario,
        tag,
        seq: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        inflight: AtomicUsize::new(0),
    });
    let generator = {
        let d = driver.clone();
        match mode {
            Mode::Closed(c) => tokio::spawn(d.closed_loop(c)),
            Mode::Open {
                rate, max_inflight, ..
            } => tokio::spawn(d.open_loop(rate, max_inflight)),
        }
    };
    tokio::time::sleep(s.warmup).await;
    for svc in svcs.iter_mut() {
        anyhow::ensure!(svc.alive(), "{} died during the warm-up", svc.name);
    }
    let busy0 = procfs::machine_busy_seconds();
    let cpu0 = load::cpu_now(svcs);
    let scrape0 = load::scrape_all(http, svcs).await;
    let (t0, wall0) = (Instant::now(), chrono::Utc::now());
    session.rec.window.store(true, Ordering::SeqCst);
    // Sample RSS while measuring.
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let pids: Vec<(&'static str, u32)> = svcs.iter().map(|s| (s.name, s.pid)).collect();
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let mut max: BTreeMap<String, u64> = BTreeMap::new();
            while sampling.load(Ordering::Relaxed) {
                for (name, pid) in &pids {
                    let kib = procfs::status_kib(*pid, "VmRSS").unwrap_or(0);
                    let e = max.entry((*name).to_owned()).or_default();
                    *e = (*e).max(kib);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            max
        })
    };
    tokio::time::sleep(s.measure).await;
    session.rec.window.store(false, Ordering::SeqCst);
    let seconds = t0.elapsed().as_secs_f64();
    let wall1 = chrono::Utc::now();
    let cpu1 = load::cpu_now(svcs);
    let busy1 = procfs::machine_busy_seconds();
    let scrape1 = load::scrape_all(http, svcs).await;
    sampling.store(false, Ordering::SeqCst);
    driver.stop.store(true, Ordering::SeqCst);
    let _ = generator.await;
    let rss_sampled = sampler.await.unwrap_or_default();
    let unconfirmed = session.drain(s.drain_stall, Duration::from_secs(300)).await;
    for svc in svcs.iter_mut() {
        anyhow::ensure!(svc.alive(), "{} died during the run", svc.name);
    }
    let (committed_db, rejected_db): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'committed'), count(*) FILTER (WHERE status = 'rejected')
           FROM transfers WHERE processed_at >= $1 AND processed_at < $2 AND reference IS DISTINCT FROM 'funding'",
    )
    .bind(wall0)
    .bind(wall1)
    .fetch_one(pool)
    .await?;
    let rec = session.rec.clone();
    session.close().await;
    let invariants = check_invariants(pool).await?;
    let cpu: BTreeMap<String, f64> = cpu1
        .iter()
        .map(|(k, v)| (k.clone(), v - cpu0.get(k).copied().unwrap_or(0.0)))
        .collect();
    let cpu_total: f64 = cpu.values().sum();
    let committed = committed_db.max(0) as f64;
    let core_us: BTreeMap<String, f64> = cpu
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                if committed > 0.0 {
                    v * 1e6 / committed
                } else {
                    0.0
                },
            )
        })
        .collect();
    let mut peak_rss = BTreeMap::new();
    for svc in svcs.iter() {
        let hwm = procfs::status_kib(svc.pid, "VmHWM").unwrap_or(0) as f64 / 1024.0;
        let sampled = rss_sampled.get(svc.name).copied().unwrap_or(0) as f64 / 1024.0;
        peak_rss.insert(
            svc.name.to_owned(),
            report::Rss {
                peak_mib: hwm,
                max_sampled_in_window_mib: sampled,
            },
        );
    }
    let errors = rec.errors.lock().map(|e| e.clone()).unwrap_or_default();
    let (mode_name, concurrency, target, pct) = match mode {
        Mode::Closed(c) => ("closed", Some(c), None, None),
        Mode::Open { rate, pct, .. } => ("open", None, Some(rate), Some(pct)),
    };
    Ok(RunResult {
        scenario: scenario.name(),
        mode: mode_name,
        concurrency,
        target_per_s: target,
        load_pct: pct,
        seconds,
        offered_per_s: rec.sent.load(Ordering::SeqCst) as f64 / seconds,
        accepted_per_s: rec.accepted.load(Ordering::SeqCst) as f64 / seconds,
        committed_per_s: committed / seconds,
        sustained_per_s: (committed / seconds)
            .min(rec.accepted.load(Ordering::SeqCst) as f64 / seconds),
        generator_lag_ms: snapshot(&rec.lag),
        committed_ws_per_s: rec.committed_ws.load(Ordering::SeqCst) as f64 / seconds,
        rejected_in_window: rejected_db,
        dropped_sends: rec.dropped.load(Ordering::SeqCst),
        errors,
        http_ms: snapshot(&rec.http),
        e2e_ms: snapshot(&rec.e2e),
        accept_to_apply_ms: snapshot(&rec.accept_to_apply),
        apply_to_ws_ms: snapshot(&rec.apply_to_ws),
        stages: load::stages(&scrape0, &scrape1),
        cpu_seconds: cpu,
        core_us_per_transfer: core_us,
        rss: peak_rss,
        machine_busy_cores: (busy1 - busy0) / seconds,
        other_processes_cores: ((busy1 - busy0) - cpu_total) / seconds,
        ws_reconnects: rec.ws_reconnects.load(Ordering::SeqCst),
        ws_resyncs: rec.ws_resyncs.load(Ordering::SeqCst),
        unconfirmed_after_drain: unconfirmed,
        invariants,
    })
}

fn snapshot(h: &std::sync::Mutex<hdrhistogram::Histogram<u64>>) -> Latency {
    match h.lock() {
        Ok(h) => Latency::from_hist(&h),
        Err(e) => Latency::from_hist(&e.into_inner()),
    }
}
