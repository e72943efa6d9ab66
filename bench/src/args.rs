//! The command line, and the settings it resolves to (`--quick` changes
//! the defaults).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::load;

/// How long the drain after a run may see no progress before it gives up
/// (the rest counts as unconfirmed): a full run's backlog is larger.
const DRAIN_STALL: Duration = Duration::from_secs(15);
const DRAIN_STALL_QUICK: Duration = Duration::from_secs(5);

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
    /// Bench users owning the accounts (one WebSocket each); at least 16
    /// so that the owned16 scenario's accounts each have their own owner.
    #[arg(long, default_value_t = 16)]
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
    /// The rate (transfers/s) that `--open-loads` are percentages of,
    /// instead of this run's uniform closed-loop sustained rate: two builds
    /// compared at the same offered rate do the same work per second, so
    /// their CPU per transfer can be compared.
    #[arg(long, value_parser = rate_per_s)]
    pub open_base: Option<f64>,
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
    /// The raw uniform ceiling of `ffd1ebe` (before issue 19), transfers/s,
    /// that the "2 x" target is judged against. Machines differ, so `make
    /// bench` measures `ffd1ebe` on this machine first and passes its
    /// figure here (`scripts/raw-before.sh`); without one, a bare `bench`
    /// uses `make bench` of `ffd1ebe` on 2026-11-29 ([`RAW_BEFORE_DEFAULT`]).
    #[arg(long, env = "BENCH_RAW_BEFORE")]
    pub raw_before: Option<f64>,
    /// Where `--raw-before` was measured, named in the target's label
    /// (`make bench` measures `ffd1ebe` on this machine first and says so).
    #[arg(long, env = "BENCH_RAW_BEFORE_FROM")]
    pub raw_before_from: Option<String>,
    #[arg(long)]
    pub skip_raw: bool,
    /// Only the raw ceiling (and the lookup probe unless skipped): no
    /// services start, nothing is written; for before/after pairs of the
    /// ledger's apply.
    #[arg(long, conflicts_with = "skip_raw")]
    pub raw_only: bool,
    /// Only the uniform distribution (as `--scenarios uniform`).
    #[arg(long)]
    pub skip_hot: bool,
    /// Distributions of the closed loop: uniform, zipf128, owned16, hot,
    /// payroll [default: all; --quick: uniform,zipf128].
    #[arg(long, value_delimiter = ',')]
    pub scenarios: Vec<String>,
    /// Skip the overload run (open loop at `--overload-factor` × the
    /// uniform sustained rate, against the gateway's back-pressure).
    #[arg(long)]
    pub skip_overload: bool,
    #[arg(long, default_value_t = 2.0)]
    pub overload_factor: f64,
    /// The gateway's backlog budget (`BACKLOG_BUDGET_MS`), set explicitly so
    /// the overload run judges a known bound.
    #[arg(long, env = "BACKLOG_BUDGET_MS", default_value_t = 2000)]
    pub backlog_budget_ms: u64,
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
    pub scenarios: Vec<load::Scenario>,
}

/// `ffd1ebe`'s raw uniform ceiling in `make bench` on 2026-11-29, and
/// where it was measured: the raw target's "before" when none is given.
pub const RAW_BEFORE_DEFAULT: (f64, &str) = (14_249.0, "2026-11-29's machine");

impl Args {
    /// The raw target's "before" and where it was measured, for the
    /// label: a figure given without a place is named as given, so that
    /// it is never passed off as the default's.
    pub fn raw_before(&self) -> (f64, String) {
        match (self.raw_before, &self.raw_before_from) {
            (None, _) => (RAW_BEFORE_DEFAULT.0, RAW_BEFORE_DEFAULT.1.to_owned()),
            (Some(x), Some(from)) => (x, from.clone()),
            (Some(x), None) => (x, "a figure given".to_owned()),
        }
    }

    /// The closed loop's distributions, in run order.
    pub fn scenarios(&self) -> anyhow::Result<Vec<load::Scenario>> {
        use load::Scenario;
        if self.skip_hot {
            return Ok(vec![Scenario::Uniform]);
        }
        if self.scenarios.is_empty() {
            return Ok(if self.quick {
                vec![Scenario::Uniform, Scenario::Skewed]
            } else {
                Scenario::ALL.to_vec()
            });
        }
        self.scenarios
            .iter()
            .map(|n| {
                Scenario::parse(n.trim()).ok_or_else(|| anyhow::anyhow!("unknown scenario {n:?}"))
            })
            .collect()
    }

    pub fn settings(&self) -> anyhow::Result<Settings> {
        let (accounts, warmup, measure, out) = if self.quick {
            (2_000, 1.0, 3.0, "bench/results/quick.json")
        } else {
            (100_000, 5.0, 30.0, "bench/results/latest.json")
        };
        let scenarios = self.scenarios()?;
        let accounts_min = scenarios
            .iter()
            .map(|s| s.accounts_min())
            .max()
            .unwrap_or(0)
            .max(2 * load::HOT_ACCOUNTS);
        Ok(Settings {
            accounts: self.accounts.unwrap_or(accounts).max(accounts_min),
            warmup: Duration::from_secs_f64(self.warmup.unwrap_or(warmup)),
            measure: Duration::from_secs_f64(self.measure.unwrap_or(measure)),
            drain_stall: if self.quick {
                DRAIN_STALL_QUICK
            } else {
                DRAIN_STALL
            },
            out: self.out.clone().unwrap_or_else(|| PathBuf::from(out)),
            scenarios,
        })
    }
}

/// A rate for `--open-base`: at least one transfer per second (a zero or
/// negative base would make every open load zero, reported as if the
/// closed loop had committed nothing).
fn rate_per_s(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 1.0 => Ok(r),
        Ok(_) => Err(format!("{text} is not a rate of at least 1 transfer/s")),
        Err(e) => Err(format!("{text:?} is not a number: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> Args {
        let argv = ["bench", "--bin", "/nowhere"].iter().chain(extra);
        Args::try_parse_from(argv).expect("arguments parse")
    }

    #[test]
    fn the_raw_before_is_labelled_with_where_it_was_measured() {
        let here = parse(&["--raw-before", "9165", "--raw-before-from", "this machine"]);
        assert_eq!(here.raw_before(), (9165.0, "this machine".to_owned()));
        // A figure without a place is not passed off as the default's.
        let given = parse(&["--raw-before", "11571"]);
        assert_eq!(given.raw_before(), (11571.0, "a figure given".to_owned()));
        // None given (set here, so that the environment cannot give one).
        let mut none = parse(&["--raw-before-from", "this machine"]);
        none.raw_before = None;
        assert_eq!(
            none.raw_before(),
            (RAW_BEFORE_DEFAULT.0, RAW_BEFORE_DEFAULT.1.to_owned())
        );
    }
}
