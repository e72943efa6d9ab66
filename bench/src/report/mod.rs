//! The results: one serialisable report, printed as a table with the
//! targets of issue 9 next to the figures.
//!
//! Here the report's types and how it starts; `targets` derives the
//! figures judged against issue 9, `table` prints it section by section.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::load::Latency;
use crate::prom::StageStats;
use crate::raw::{LookupProbe, RawResult};
use crate::services::Deployment;
use crate::{Args, Settings};

mod overload;
mod table;
mod targets;

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
    /// `503`/`429` answers per second (back-pressure or a quota).
    pub shed_per_s: f64,
    /// Shed answers that lacked `Retry-After` (the target wants none).
    pub shed_without_retry_after: u64,
    /// Intended send → the shed answer.
    pub shed_ms: Latency,
    /// The request leaving the generator → the shed answer (without the
    /// generator's lag; for reading the above, not judged).
    pub shed_sent_ms: Latency,
    /// Overload run: shed answers as a client outside the generator saw
    /// them (`load::probe`; for reading the above, not judged).
    pub shed_probe_ms: Option<Latency>,
    /// The gateway's `gateway_backlog_seconds`, largest reading in the
    /// window (`None`: the gateway did not report it).
    pub backlog_peak_s: Option<f64>,
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
    /// PostgreSQL's shared-buffer misses in the window (`None`: the
    /// server does not report them).
    pub pg_buffers: Option<crate::pgstat::Buffers>,
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
    /// The gateway's back-pressure budget in this run.
    pub backlog_budget_ms: u64,
    /// `--raw-before`: the raw uniform ceiling before issue 19 that the
    /// "2 x" target is judged against.
    pub raw_before: f64,
    /// `--raw-before-from`: where that figure was measured.
    pub raw_before_from: String,
    /// `--open-base`: the open loads were percentages of this rate, not of
    /// what the run sustained.
    pub open_base: Option<f64>,
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
        let (raw_before, raw_before_from) = args.raw_before();
        let mut processor_settings = BTreeMap::new();
        for (k, d) in [
            ("PROCESSOR_WORKERS", "16"),
            ("PROCESSOR_APPLY_CONCURRENCY", "1"),
            ("PROCESSOR_BATCH_MAX", "500"),
            ("PROCESSOR_LINGER_MS", "0"),
            ("PROCESSOR_RELAY_DIRECT", "true"),
        ] {
            processor_settings.insert(
                k.to_owned(),
                std::env::var(k).unwrap_or_else(|_| format!("{d} (default)")),
            );
        }
        processor_settings.insert(
            "RUNTIME_THREADS".to_owned(),
            std::env::var("RUNTIME_THREADS").unwrap_or_else(|_| {
                let of = |p| crate::services::runtime_threads(p).unwrap_or("per core");
                format!(
                    "gateway {}, processor {}, notifier {} (bench default)",
                    of("gateway"),
                    of("processor"),
                    of("notifier")
                )
            }),
        );
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
            backlog_budget_ms: args.backlog_budget_ms,
            raw_before,
            raw_before_from,
            open_base: args.open_base,
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

    pub(crate) fn closed(&self, scenario: &str) -> Option<&RunResult> {
        self.runs
            .iter()
            .find(|r| r.mode == "closed" && r.scenario == scenario)
    }
    pub(crate) fn open(&self, pct: f64) -> Option<&RunResult> {
        self.runs
            .iter()
            .find(|r| r.mode == "open" && r.load_pct == Some(pct))
    }
    pub(crate) fn raw(&self, scenario: &str) -> Option<&RawResult> {
        self.raw.iter().find(|r| r.scenario == scenario)
    }
}

pub(crate) fn short(c: &str) -> &str {
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
        "overload" => format!("overload {:.0}%", r.load_pct.unwrap_or(0.0)),
        _ => format!("open {} {:.0}%", r.scenario, r.load_pct.unwrap_or(0.0)),
    }
}
