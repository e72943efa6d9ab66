//! The results: one serialisable report, printed as a table with the
//! targets of issue 9 next to the figures.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::load::Latency;
use crate::prom::StageStats;
use crate::raw::{LookupProbe, RawResult};
use crate::services::Deployment;
use crate::{Args, Settings};

#[derive(Debug, Clone, Serialize)]
pub struct Invariants {
    pub holds: bool,
    pub violations: Vec<String>,
    pub transfers: i64,
    pub committed: i64,
    pub entries: i64,
    pub totals: Vec<(String, String)>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rss {
    /// VmHWM: the process's peak resident set since it started.
    pub peak_mib: f64,
    pub max_sampled_in_window_mib: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub scenario: &'static str,
    pub mode: &'static str,
    pub concurrency: Option<usize>,
    pub target_per_s: Option<f64>,
    pub load_pct: Option<f64>,
    pub seconds: f64,
    pub offered_per_s: f64,
    /// 202 answers per second.
    pub accepted_per_s: f64,
    /// Committed transfers whose `processed_at` lies in the window (ledger).
    pub committed_per_s: f64,
    /// min(accepted/s, committed/s): what the pipeline sustains end to end
    /// (above it the JetStream backlog grows; below it the processor drains
    /// a backlog left by the warm-up).
    pub sustained_per_s: f64,
    /// Commit events of this run's transfers received on the WebSockets.
    pub committed_ws_per_s: f64,
    pub rejected_in_window: i64,
    pub dropped_sends: u64,
    pub errors: BTreeMap<String, u64>,
    /// Open loop: intended send time → the request actually leaving the
    /// generator (its own lag on a busy machine; counted in the latencies).
    pub generator_lag_ms: Latency,
    /// Intended send → 202.
    pub http_ms: Latency,
    /// Intended send → committed event on the WebSocket.
    pub e2e_ms: Latency,
    /// The transfer's created_at (gateway accepted) → processed_at (apply).
    pub accept_to_apply_ms: Latency,
    /// processed_at → event received by the client.
    pub apply_to_ws_ms: Latency,
    pub stages: BTreeMap<String, StageStats>,
    pub cpu_seconds: BTreeMap<String, f64>,
    pub core_us_per_transfer: BTreeMap<String, f64>,
    pub rss: BTreeMap<String, Rss>,
    /// Cores the whole machine kept busy on average during the window, and
    /// how many of them went to processes outside the bench's components
    /// (other work on a shared machine makes the figures indicative only).
    pub machine_busy_cores: f64,
    pub other_processes_cores: f64,
    pub ws_reconnects: u64,
    pub ws_resyncs: u64,
    pub unconfirmed_after_drain: usize,
    pub invariants: Invariants,
}

#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub target: String,
    pub figure: String,
    /// "met", "NOT met" or "n/a".
    pub status: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub date: String,
    pub machine: String,
    pub commit: String,
    pub command: String,
    pub run: String,
    pub accounts: usize,
    pub users: usize,
    pub warmup_s: f64,
    pub measure_s: f64,
    pub concurrency: usize,
    pub processor_settings: BTreeMap<String, String>,
    pub seed_seconds: f64,
    pub total_seconds: f64,
    pub raw: Vec<RawResult>,
    pub lookup_probe: Vec<LookupProbe>,
    pub runs: Vec<RunResult>,
    /// Invariant checks after the raw runs (the pipeline runs carry theirs).
    pub invariants: Vec<(String, Invariants)>,
    pub pipeline_over_raw: Option<f64>,
    pub targets: Vec<Target>,
    pub all_invariants_hold: bool,
}

fn git_commit() -> String {
    let out = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let head = out(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        out(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{head}+uncommitted changes")
    } else {
        head
    }
}

impl Report {
    pub fn new(args: &Args, s: &Settings, dep: &Deployment) -> Self {
        let mut processor_settings = BTreeMap::new();
        for (k, d) in [
            ("PROCESSOR_WORKERS", "4"),
            ("PROCESSOR_BATCH_MAX", "500"),
            ("PROCESSOR_LINGER_MS", "1"),
        ] {
            processor_settings.insert(
                k.to_owned(),
                std::env::var(k).unwrap_or_else(|_| format!("{d} (default)")),
            );
        }
        processor_settings.insert(
            "replicas".to_owned(),
            args.processors.clamp(1, 4).to_string(),
        );
        Self {
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            machine: crate::procfs::machine(),
            commit: git_commit(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            run: dep.run.clone(),
            accounts: s.accounts,
            users: args.users,
            warmup_s: s.warmup.as_secs_f64(),
            measure_s: s.measure.as_secs_f64(),
            concurrency: args.concurrency,
            processor_settings,
            seed_seconds: 0.0,
            total_seconds: 0.0,
            raw: vec![],
            lookup_probe: vec![],
            runs: vec![],
            invariants: vec![],
            pipeline_over_raw: None,
            targets: vec![],
            all_invariants_hold: true,
        }
    }

    fn closed(&self, scenario: &str) -> Option<&RunResult> {
        self.runs
            .iter()
            .find(|r| r.mode == "closed" && r.scenario == scenario)
    }
    fn open(&self, pct: f64) -> Option<&RunResult> {
        self.runs
            .iter()
            .find(|r| r.mode == "open" && r.load_pct == Some(pct))
    }
    fn raw(&self, scenario: &str) -> Option<&RawResult> {
        self.raw.iter().find(|r| r.scenario == scenario)
    }

    /// Derived figures and the targets of issue 9.
    pub fn finish(&mut self) {
        self.all_invariants_hold = self.invariants.iter().all(|(_, i)| i.holds)
            && self.runs.iter().all(|r| r.invariants.holds);
        let uniform = self.closed("uniform").map(|r| r.sustained_per_s);
        let hot = self.closed("hot").map(|r| r.sustained_per_s);
        let raw = self.raw("uniform").map(|r| r.transfers_per_s);
        self.pipeline_over_raw = match (uniform, raw) {
            (Some(u), Some(r)) if r > 0.0 => Some(u / r),
            _ => None,
        };
        let mut t = Vec::new();
        let judge = |ok: Option<bool>| match ok {
            Some(true) => "met",
            Some(false) => "NOT met",
            None => "n/a",
        };
        t.push(Target {
            target: "uniform: committed >= 6,000 transfers/s sustained".into(),
            figure: uniform
                .map(|u| format!("{u:.0}/s"))
                .unwrap_or_else(|| "-".into()),
            status: judge(uniform.map(|u| u >= 6000.0)),
        });
        t.push(Target {
            target: "uniform: >= 0.35 x raw batched ceiling (same run)".into(),
            figure: self
                .pipeline_over_raw
                .map(|x| format!("{x:.2} x"))
                .unwrap_or_else(|| "-".into()),
            status: judge(self.pipeline_over_raw.map(|x| x >= 0.35)),
        });
        let hot_ratio = match (hot, uniform) {
            (Some(h), Some(u)) if u > 0.0 => Some(h / u),
            _ => None,
        };
        t.push(Target {
            target: "hot (10 accounts): >= 50 % of uniform".into(),
            figure: hot_ratio
                .map(|x| format!("{:.0} %", x * 100.0))
                .unwrap_or_else(|| "-".into()),
            status: judge(hot_ratio.map(|x| x >= 0.5)),
        });
        let p99_50 = self
            .open(50.0)
            .filter(|r| r.e2e_ms.count > 0)
            .map(|r| r.e2e_ms.p99);
        t.push(Target {
            target: "50 % load: p99 HTTP -> committed WS event < 25 ms".into(),
            figure: p99_50
                .map(|x| format!("{x:.1} ms"))
                .unwrap_or_else(|| "-".into()),
            status: judge(p99_50.map(|x| x < 25.0)),
        });
        let p50_10 = self
            .open(10.0)
            .filter(|r| r.e2e_ms.count > 0)
            .map(|r| r.e2e_ms.p50);
        t.push(Target {
            target: "10 % load: p50 HTTP -> committed WS event < 5 ms".into(),
            figure: p50_10
                .map(|x| format!("{x:.1} ms"))
                .unwrap_or_else(|| "-".into()),
            status: judge(p50_10.map(|x| x < 5.0)),
        });
        let mut rss: BTreeMap<String, f64> = BTreeMap::new();
        for r in self.runs.iter().filter(|r| r.mode == "closed") {
            for (k, v) in &r.rss {
                let e = rss.entry(k.clone()).or_default();
                *e = e.max(v.peak_mib);
            }
        }
        let worst = rss.iter().max_by(|a, b| a.1.total_cmp(b.1));
        t.push(Target {
            target: "each service < 64 MiB RSS at max rate".into(),
            figure: if rss.is_empty() {
                "-".into()
            } else {
                rss.iter()
                    .map(|(k, v)| format!("{k} {v:.0}"))
                    .collect::<Vec<_>>()
                    .join(", ")
                    + " MiB"
            },
            status: judge(worst.map(|(_, v)| *v < 64.0)),
        });
        let checks = self.invariants.len() + self.runs.len();
        t.push(Target {
            target: "ledger invariants hold after every run".into(),
            figure: format!("{checks} checks"),
            status: judge((checks > 0).then_some(self.all_invariants_hold)),
        });
        self.targets = t;
    }

    pub fn table(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "\n== make bench — {} — {} ==", self.date, self.machine);
        let _ = writeln!(
            o,
            "commit {}, {} accounts, {} users, warm-up {:.0} s, window {:.0} s, processor {}",
            self.commit,
            self.accounts,
            self.users,
            self.warmup_s,
            self.measure_s,
            self.processor_settings
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        if !self.raw.is_empty() {
            let _ = writeln!(
                o,
                "\nRAW CEILING: ledger::apply::apply_batch straight to PostgreSQL (no HTTP, no NATS)"
            );
            let _ = writeln!(
                o,
                "  {:<9} {:>6} {:>6} {:>13} {:>19} {:>16} {:>22}",
                "scenario",
                "conns",
                "batch",
                "transfers/s",
                "txn p50/p99 ms",
                "core-µs/transfer",
                "other processes, cores"
            );
            for r in &self.raw {
                let _ = writeln!(
                    o,
                    "  {:<9} {:>6} {:>6} {:>13.0} {:>19} {:>16.1} {:>22.2}",
                    r.scenario,
                    r.connections,
                    r.batch,
                    r.transfers_per_s,
                    format!(
                        "{:.1} / {:.1}",
                        r.batch_latency_ms.p50, r.batch_latency_ms.p99
                    ),
                    r.core_us_per_transfer,
                    r.other_processes_cores
                );
            }
        }
        if !self.lookup_probe.is_empty() {
            let _ = writeln!(
                o,
                "\nLOOKUP PROBE: the gateway's per-POST \"transfer id known?\" check (absent PK, 64 concurrent)"
            );
            for p in &self.lookup_probe {
                let _ = writeln!(
                    o,
                    "  {:<20} {:>9.0} ids/s  {:>7.1} core-µs/id (PostgreSQL + client)  query p50 {:.2} ms",
                    p.mode, p.lookups_per_s, p.core_us_per_lookup, p.latency_ms.p50
                );
            }
        }
        let closed: Vec<&RunResult> = self.runs.iter().filter(|r| r.mode == "closed").collect();
        if !closed.is_empty() {
            let _ = writeln!(
                o,
                "\nPIPELINE, CLOSED LOOP (max throughput): HTTP -> gateway -> JetStream -> processor -> PostgreSQL -> Redis -> notifier -> WebSocket"
            );
            let _ = writeln!(
                o,
                "  committed/s: ledger rows processed in the window; sustained = min(accepted, committed); e2e includes any JetStream backlog"
            );
            let _ = writeln!(
                o,
                "  {:<9} {:>8} {:>11} {:>12} {:>12} {:>12} {:>8} {:>16} {:>18} {:>7}",
                "scenario",
                "inflight",
                "accepted/s",
                "committed/s",
                "(ws events)",
                "sustained/s",
                "vs raw",
                "HTTP p50/p99 ms",
                "e2e p50/p99 ms",
                "errors"
            );
            for r in &closed {
                let raw = self
                    .raw(r.scenario)
                    .map(|x| x.transfers_per_s)
                    .filter(|x| *x > 0.0);
                let _ = writeln!(
                    o,
                    "  {:<9} {:>8} {:>11.0} {:>12.0} {:>12.0} {:>12.0} {:>8} {:>16} {:>18} {:>7}",
                    r.scenario,
                    r.concurrency.unwrap_or(0),
                    r.accepted_per_s,
                    r.committed_per_s,
                    r.committed_ws_per_s,
                    r.sustained_per_s,
                    raw.map(|x| format!("{:.2} x", r.sustained_per_s / x))
                        .unwrap_or_else(|| "-".into()),
                    format!("{:.1} / {:.1}", r.http_ms.p50, r.http_ms.p99),
                    format!("{:.1} / {:.1}", r.e2e_ms.p50, r.e2e_ms.p99),
                    r.errors.values().sum::<u64>()
                );
            }
        }
        let open: Vec<&RunResult> = self.runs.iter().filter(|r| r.mode == "open").collect();
        if !open.is_empty() {
            let _ = writeln!(
                o,
                "\nPIPELINE, OPEN LOOP (uniform, fixed rates): ms from the intended send time (no coordinated omission); e2e = HTTP send -> committed WebSocket event"
            );
            let _ = writeln!(
                o,
                "  {:>5} {:>8} {:>9} {:>11} {:>26} {:>20} {:>21} {:>17} {:>15}",
                "load",
                "target/s",
                "offered/s",
                "committed/s",
                "e2e p50/p90/p99/max",
                "HTTP 202 p50/p99/max",
                "accept->apply p50/p99",
                "apply->ws p50/p99",
                "gen lag p50/p99"
            );
            for r in &open {
                let _ = writeln!(
                    o,
                    "  {:>4.0}% {:>8.0} {:>9.0} {:>11.0} {:>26} {:>20} {:>21} {:>17} {:>15}",
                    r.load_pct.unwrap_or(0.0),
                    r.target_per_s.unwrap_or(0.0),
                    r.offered_per_s,
                    r.committed_per_s,
                    format!(
                        "{:.1} / {:.1} / {:.1} / {:.0}",
                        r.e2e_ms.p50, r.e2e_ms.p90, r.e2e_ms.p99, r.e2e_ms.max
                    ),
                    format!(
                        "{:.1} / {:.1} / {:.0}",
                        r.http_ms.p50, r.http_ms.p99, r.http_ms.max
                    ),
                    format!(
                        "{:.1} / {:.1}",
                        r.accept_to_apply_ms.p50, r.accept_to_apply_ms.p99
                    ),
                    format!("{:.1} / {:.1}", r.apply_to_ws_ms.p50, r.apply_to_ws_ms.p99),
                    format!(
                        "{:.1} / {:.1}",
                        r.generator_lag_ms.p50, r.generator_lag_ms.p99
                    ),
                );
            }
        }
        if !self.runs.is_empty() {
            let _ = writeln!(
                o,
                "\nSTAGES (services' own histograms over each window: mean / p50 / p99)"
            );
            for r in &self.runs {
                let name = run_name(r);
                for (stage, st) in &r.stages {
                    let _ = writeln!(
                        o,
                        "  {:<17} {:<48} {:>8.2} / {:>8.2} / {:>8.2}   (n={})",
                        name, stage, st.mean, st.p50, st.p99, st.count
                    );
                }
            }
            let comps: Vec<String> = self.runs[0].cpu_seconds.keys().cloned().collect();
            let _ = writeln!(
                o,
                "\nCPU per committed transfer, core-µs (CPU seconds in window / committed); postgres, nats-server, redis-server are machine-wide"
            );
            let _ = write!(o, "  {:<17}", "run");
            for c in &comps {
                let _ = write!(o, " {:>11}", short(c));
            }
            let _ = writeln!(o, " {:>9} {:>14}", "total", "other procs*");
            for r in &self.runs {
                let _ = write!(o, "  {:<17}", run_name(r));
                for c in &comps {
                    let _ = write!(
                        o,
                        " {:>11.1}",
                        r.core_us_per_transfer.get(c).copied().unwrap_or(0.0)
                    );
                }
                let _ = writeln!(
                    o,
                    " {:>9.1} {:>8.2} cores",
                    r.core_us_per_transfer.values().sum::<f64>(),
                    r.other_processes_cores
                );
            }
            let _ = writeln!(
                o,
                "  * cores used on average during the window by processes outside this table (other work on a shared machine: figures are then indicative)"
            );
            let _ = writeln!(
                o,
                "\nMEMORY: peak RSS (VmHWM since start) per service after each run, MiB"
            );
            for r in &self.runs {
                let _ = writeln!(
                    o,
                    "  {:<17} {}",
                    run_name(r),
                    r.rss
                        .iter()
                        .map(|(k, v)| format!("{k} {:.1}", v.peak_mib))
                        .collect::<Vec<_>>()
                        .join("  ")
                );
            }
            let noisy: Vec<String> = self
                .runs
                .iter()
                .filter(|r| !r.errors.is_empty() || r.ws_reconnects > 0 || r.ws_resyncs > 0 || r.unconfirmed_after_drain > 0 || r.dropped_sends > 0)
                .map(|r| {
                    format!(
                        "  {:<17} errors {:?}, ws reconnects {}, resyncs {}, unconfirmed after drain {}, dropped sends {}",
                        run_name(r),
                        r.errors,
                        r.ws_reconnects,
                        r.ws_resyncs,
                        r.unconfirmed_after_drain,
                        r.dropped_sends
                    )
                })
                .collect();
            if !noisy.is_empty() {
                let _ = writeln!(o, "\nERRORS AND ANOMALIES");
                for n in noisy {
                    let _ = writeln!(o, "{n}");
                }
            }
        }
        let _ = writeln!(
            o,
            "\nINVARIANTS (conservation, entries = balances, no overdraft, transfer entries, running balances)"
        );
        let mut all: Vec<(String, &Invariants)> = self
            .invariants
            .iter()
            .map(|(n, i)| (n.clone(), i))
            .collect();
        all.extend(self.runs.iter().map(|r| (run_name(r), &r.invariants)));
        for (name, i) in all {
            let _ = writeln!(
                o,
                "  {:<17} {:<5} transfers {} committed {} entries {} totals {} ({:.1} s){}",
                name,
                if i.holds { "OK" } else { "FAIL" },
                i.transfers,
                i.committed,
                i.entries,
                i.totals
                    .iter()
                    .map(|(c, t)| format!("{c} {t}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                i.seconds,
                if i.violations.is_empty() {
                    String::new()
                } else {
                    format!(" VIOLATIONS: {:?}", i.violations)
                }
            );
        }
        let _ = writeln!(
            o,
            "\nTARGETS (issue 9, this 2-core machine, all services co-located)"
        );
        for t in &self.targets {
            let _ = writeln!(o, "  {:<55} {:>28}   {}", t.target, t.figure, t.status);
        }
        let _ = writeln!(
            o,
            "\n(total {:.0} s, seeding {:.1} s)",
            self.total_seconds, self.seed_seconds
        );
        o
    }
}

fn short(c: &str) -> &str {
    match c {
        "bench (load generator)" => "bench",
        "redis-server" => "redis",
        "nats-server" => "nats",
        other => other,
    }
}

pub fn run_name(r: &RunResult) -> String {
    match r.mode {
        "closed" => format!("closed {}", r.scenario),
        _ => format!("open {} {:.0}%", r.scenario, r.load_pct.unwrap_or(0.0)),
    }
}
