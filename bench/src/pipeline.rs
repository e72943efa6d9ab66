//! The pipeline runs: for each scenario a closed loop, then open loops at
//! fractions of the closed loop's maximum; each run is warm-up, window,
//! drain, invariant check, and one `RunResult`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::load::{self, Driver, Latency, Scenario, Session};
use crate::report::{self, Report, RunResult};
use crate::services::{Deployment, Service};
use crate::{Args, Settings, check_invariants, pgstat, procfs, seed};

/// How often each service's resident set is sampled in the window.
const RSS_SAMPLE_INTERVAL: Duration = Duration::from_millis(250);
/// How often the gateway's backlog gauge is read in the window (it
/// refreshes it every 250 ms).
const BACKLOG_SAMPLE_INTERVAL: Duration = Duration::from_millis(250);
/// The longest a drain after a run may take whatever its progress.
const DRAIN_MAX: Duration = Duration::from_secs(300);

/// What every pipeline run needs: the settings, the deployment and its
/// running services, the database and the seeded world.
pub struct Pipeline<'a> {
    pub settings: &'a Settings,
    pub dep: &'a Deployment,
    pub http: &'a reqwest::Client,
    pub svcs: &'a mut [Service],
    pub pool: &'a sqlx::PgPool,
    pub world: Arc<seed::World>,
}

impl Pipeline<'_> {
    /// The closed loop per scenario, then the open loops at `--open-loads`
    /// percent of the uniform closed loop's sustained rate.
    pub async fn all(&mut self, args: &Args, report: &mut Report) -> anyhow::Result<()> {
        for scenario in self.settings.scenarios.clone() {
            eprintln!(
                "[bench] closed loop, {}: {} in flight",
                scenario.name(),
                args.concurrency
            );
            let r = self.run(scenario, Mode::Closed(args.concurrency)).await?;
            let misses = r.pg_buffers.as_ref().map_or_else(
                || "-".to_owned(),
                |b| format!("{:.2}", b.reads_per_transfer),
            );
            eprintln!(
                "[bench]   accepted {:.0}/s, committed {:.0}/s, backlog peak {:.2} s, \
                 PostgreSQL buffer misses {misses}/transfer",
                r.accepted_per_s,
                r.committed_per_s,
                r.backlog_peak_s.unwrap_or(0.0),
            );
            report.runs.push(r);
        }
        let measured = report
            .runs
            .iter()
            .find(|r| r.scenario == "uniform" && r.mode == "closed")
            .map_or(0.0, |r| r.sustained_per_s);
        // The open loads are percentages of `--open-base` when given; the
        // overload run is always a multiple of what this run sustained.
        let mut loads: Vec<(f64, &'static str, f64)> = Vec::new();
        if !args.skip_open {
            let base = args.open_base.unwrap_or(measured);
            loads.extend(args.open_loads.iter().map(|p| (*p, "open", base)));
        }
        if !args.skip_overload {
            loads.push((args.overload_factor * 100.0, "overload", measured));
        }
        if loads.iter().any(|(_, _, base)| *base < 1.0) {
            anyhow::bail!("the closed loop committed nothing: no open-loop rates to derive");
        }
        for (pct, kind, base) in loads {
            let rate = (base * pct / 100.0).max(1.0);
            eprintln!("[bench] {kind} loop, uniform: {pct}% of {base:.0}/s = {rate:.0}/s");
            let mode = Mode::Open {
                rate,
                pct,
                max_inflight: args.max_inflight,
                overload: kind == "overload",
            };
            let r = self.run(Scenario::Uniform, mode).await?;
            eprintln!(
                "[bench]   accepted {:.0}/s, committed {:.0}/s, shed {:.0}/s, e2e p50 {:.1} ms p99 {:.1} ms",
                r.accepted_per_s, r.committed_per_s, r.shed_per_s, r.e2e_ms.p50, r.e2e_ms.p99
            );
            report.runs.push(r);
        }
        Ok(())
    }

    /// One run: warm-up, window, drain, invariant check.
    async fn run(&mut self, scenario: Scenario, mode: Mode) -> anyhow::Result<RunResult> {
        let (s, dep, http, pool) = (self.settings, self.dep, self.http, self.pool);
        let world = self.world.clone();
        let svcs = &mut *self.svcs;
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
        let buffers0 = pgstat::counters(pool).await;
        let (t0, wall0) = (Instant::now(), chrono::Utc::now());
        session.rec.window.store(true, Ordering::SeqCst);
        let (sampling, sampler) = rss_sampler(svcs);
        let backlog = backlog_sampler(http.clone(), dep.gateway, sampling.clone());
        let probe = matches!(mode, Mode::Open { overload: true, .. })
            .then(|| load::probe::start(dep.gateway));
        tokio::time::sleep(s.measure).await;
        session.rec.window.store(false, Ordering::SeqCst);
        let shed_probe_ms = match probe {
            Some(p) => tokio::task::spawn_blocking(|| p.finish())
                .await
                .ok()
                .flatten(),
            None => None,
        };
        let seconds = t0.elapsed().as_secs_f64();
        let wall1 = chrono::Utc::now();
        let cpu1 = load::cpu_now(svcs);
        let busy1 = procfs::machine_busy_seconds();
        let scrape1 = load::scrape_all(http, svcs).await;
        let buffers1 = pgstat::counters(pool).await;
        sampling.store(false, Ordering::SeqCst);
        driver.stop.store(true, Ordering::SeqCst);
        let _ = generator.await;
        let rss_sampled = sampler.await.unwrap_or_default();
        let backlog_peak_s = backlog.await.ok().flatten();
        let unconfirmed = session.drain(s.drain_stall, DRAIN_MAX).await;
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
        let core_us = per_transfer_us(&cpu, committed);
        let peak_rss = peak_rss(svcs, &rss_sampled);
        let errors = rec.errors.lock().map(|e| e.clone()).unwrap_or_default();
        let (mode_name, concurrency, target, pct) = match mode {
            Mode::Closed(c) => ("closed", Some(c), None, None),
            Mode::Open {
                rate,
                pct,
                overload,
                ..
            } => (
                if overload { "overload" } else { "open" },
                None,
                Some(rate),
                Some(pct),
            ),
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
            shed_per_s: rec.shed.load(Ordering::SeqCst) as f64 / seconds,
            shed_without_retry_after: rec.shed_without_retry_after.load(Ordering::SeqCst),
            shed_ms: snapshot(&rec.shed_ms),
            shed_sent_ms: snapshot(&rec.shed_sent_ms),
            shed_probe_ms,
            backlog_peak_s,
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
            pg_buffers: buffers0
                .zip(buffers1)
                .map(|(a, b)| pgstat::Buffers::between(a, b, committed)),
            invariants,
        })
    }
}

#[derive(Clone, Copy)]
enum Mode {
    Closed(usize),
    Open {
        rate: f64,
        pct: f64,
        max_inflight: usize,
        /// Above the sustained rate, to see back-pressure at work.
        overload: bool,
    },
}

/// The gateway's own `gateway_backlog_seconds`, polled as often as the
/// gateway refreshes it until the flag is cleared; the largest value seen
/// (`None` if the gateway never reported it).
fn backlog_sampler(
    http: reqwest::Client,
    gateway: std::net::SocketAddr,
    sampling: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Option<f64>> {
    tokio::spawn(async move {
        let mut peak: Option<f64> = None;
        while sampling.load(Ordering::Relaxed) {
            if let Ok(r) = http.get(format!("http://{gateway}/metrics")).send().await
                && let Ok(text) = r.text().await
                && let Some(v) = crate::prom::gauge(&text, "gateway_backlog_seconds")
            {
                peak = Some(peak.map_or(v, |p: f64| p.max(v)));
            }
            tokio::time::sleep(BACKLOG_SAMPLE_INTERVAL).await;
        }
        peak
    })
}

/// Samples each service's resident set until the flag is cleared; the
/// largest sample per service, KiB.
fn rss_sampler(
    svcs: &[Service],
) -> (
    Arc<AtomicBool>,
    tokio::task::JoinHandle<BTreeMap<String, u64>>,
) {
    let sampling = Arc::new(AtomicBool::new(true));
    let pids: Vec<(&'static str, u32)> = svcs.iter().map(|s| (s.name, s.pid)).collect();
    let flag = sampling.clone();
    let sampler = tokio::spawn(async move {
        let mut max: BTreeMap<String, u64> = BTreeMap::new();
        while flag.load(Ordering::Relaxed) {
            for (name, pid) in &pids {
                let kib = procfs::status_kib(*pid, "VmRSS").unwrap_or(0);
                let e = max.entry((*name).to_owned()).or_default();
                *e = (*e).max(kib);
            }
            tokio::time::sleep(RSS_SAMPLE_INTERVAL).await;
        }
        max
    });
    (sampling, sampler)
}

/// CPU seconds per component as core-µs per committed transfer.
fn per_transfer_us(cpu: &BTreeMap<String, f64>, committed: f64) -> BTreeMap<String, f64> {
    cpu.iter()
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
        .collect()
}

/// Each service's peak resident set since start, and the largest sampled
/// in the window, MiB.
fn peak_rss(svcs: &[Service], sampled: &BTreeMap<String, u64>) -> BTreeMap<String, report::Rss> {
    let mut peak = BTreeMap::new();
    for svc in svcs {
        let hwm = procfs::status_kib(svc.pid, "VmHWM").unwrap_or(0) as f64 / 1024.0;
        let in_window = sampled.get(svc.name).copied().unwrap_or(0) as f64 / 1024.0;
        peak.insert(
            svc.name.to_owned(),
            report::Rss {
                peak_mib: hwm,
                max_sampled_in_window_mib: in_window,
            },
        );
    }
    peak
}

fn snapshot(h: &std::sync::Mutex<hdrhistogram::Histogram<u64>>) -> Latency {
    match h.lock() {
        Ok(h) => Latency::from_hist(&h),
        Err(e) => Latency::from_hist(&e.into_inner()),
    }
}
