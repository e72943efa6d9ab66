//! The targets of issue 9, judged on the figures of one report.

use std::collections::BTreeMap;

use super::{Report, Target};
use crate::load::Latency;

impl Report {
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
        t.push(target(
            "uniform: committed >= 6,000 transfers/s sustained",
            uniform,
            |u| format!("{u:.0}/s"),
            |u| u >= 6000.0,
        ));
        t.push(target(
            "uniform: >= 0.35 x raw batched ceiling (same run)",
            self.pipeline_over_raw,
            |x| format!("{x:.2} x"),
            |x| x >= 0.35,
        ));
        let hot_ratio = match (hot, uniform) {
            (Some(h), Some(u)) if u > 0.0 => Some(h / u),
            _ => None,
        };
        t.push(target(
            "hot (10 accounts): >= 50 % of uniform",
            hot_ratio,
            |x| format!("{:.0} %", x * 100.0),
            |x| x >= 0.5,
        ));
        t.push(target(
            "50 % load: p99 HTTP -> committed WS event < 25 ms",
            self.e2e_at(50.0, |l| l.p99),
            |x| format!("{x:.1} ms"),
            |x| x < 25.0,
        ));
        t.push(target(
            "10 % load: p50 HTTP -> committed WS event < 5 ms",
            self.e2e_at(10.0, |l| l.p50),
            |x| format!("{x:.1} ms"),
            |x| x < 5.0,
        ));
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

    /// A quantile of the open loop at `pct` % load, if it measured anything.
    fn e2e_at(&self, pct: f64, quantile: fn(&Latency) -> f64) -> Option<f64> {
        self.open(pct)
            .filter(|r| r.e2e_ms.count > 0)
            .map(|r| quantile(&r.e2e_ms))
    }
}

/// "met", "NOT met", or "n/a" when there is no figure to judge.
fn judge(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "met",
        Some(false) => "NOT met",
        None => "n/a",
    }
}

/// One target: its figure as `show` prints it ("-" when missing), judged by `ok`.
fn target(
    target: &str,
    figure: Option<f64>,
    show: impl Fn(f64) -> String,
    ok: impl Fn(f64) -> bool,
) -> Target {
    Target {
        target: target.into(),
        figure: figure.map(show).unwrap_or_else(|| "-".into()),
        status: judge(figure.map(ok)),
    }
}
