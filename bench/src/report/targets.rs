//! The targets of issues 9 and 19, judged on the figures of one report.

use std::collections::BTreeMap;

use super::{Report, Target};
use crate::load::{Latency, SHED_STAGE};

impl Report {
    /// Derived figures and the targets of issues 9 and 19.
    pub fn finish(&mut self) {
        self.all_invariants_hold = self.invariants.iter().all(|(_, i)| i.holds)
            && self.runs.iter().all(|r| r.invariants.holds);
        let uniform = self.closed("uniform").map(|r| r.sustained_per_s);
        let raw = self.raw("uniform").map(|r| r.transfers_per_s);
        self.pipeline_over_raw = match (uniform, raw) {
            (Some(u), Some(r)) if r > 0.0 => Some(u / r),
            _ => None,
        };
        let mut t = Vec::new();
        // Issue 19: every distribution sustains 6,000/s with a bounded
        // backlog (accepted within 10 % of committed).
        for r in self.runs.iter().filter(|r| r.mode == "closed") {
            let balanced = r.committed_per_s > 0.0
                && (r.accepted_per_s - r.committed_per_s).abs() <= 0.1 * r.committed_per_s;
            t.push(Target {
                target: format!("{}: >= 6,000/s sustained, accepted ~ committed", r.scenario),
                figure: format!("{:.0}/s (acc {:.0})", r.sustained_per_s, r.accepted_per_s),
                status: judge(Some(r.sustained_per_s >= 6000.0 && balanced)),
            });
        }
        t.push(target(
            "uniform: >= 0.35 x raw batched ceiling (same run)",
            self.pipeline_over_raw,
            |x| format!("{x:.2} x"),
            |x| x >= 0.35,
        ));
        for (scenario, label, share) in [
            (
                "zipf128",
                "zipf128 (128 accounts, s=1): >= 80 % of uniform",
                0.8,
            ),
            ("hot", "hot (10 accounts): >= 50 % of uniform", 0.5),
            ("payroll", "payroll (1 -> 10,000): >= 50 % of uniform", 0.5),
        ] {
            let ratio = match (self.closed(scenario), uniform) {
                (Some(x), Some(u)) if u > 0.0 => Some(x.sustained_per_s / u),
                _ => None,
            };
            t.push(target(
                label,
                ratio,
                |x| format!("{:.0} %", x * 100.0),
                |x| x >= share,
            ));
        }
        self.overload_targets(&mut t);
        // Judged against ffd1ebe's ceiling (`--raw-before`), which the
        // label names with where it was measured, so that a figure from
        // another machine shows.
        let (before, from) = (self.raw_before, &self.raw_before_from);
        t.push(target(
            &format!("raw uniform ceiling >= 2 x {before:.0}/s (ffd1ebe on {from})"),
            raw,
            |x| format!("{x:.0}/s"),
            |x| x >= 2.0 * before,
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

    /// Issue 19's overload run: the backlog bounded in time, the excess
    /// shed quickly with Retry-After, nothing accepted lost.
    fn overload_targets(&self, t: &mut Vec<Target>) {
        let r = self.runs.iter().find(|r| r.mode == "overload");
        let budget = self.backlog_budget_ms as f64 / 1000.0;
        t.push(target(
            &format!("overload: backlog peak <= {budget:.0} s"),
            r.and_then(|r| r.backlog_peak_s),
            |x| format!("{x:.2} s"),
            |x| x <= budget,
        ));
        t.push(Target {
            target: "overload: excess answered 503/429 + Retry-After < 50 ms (p99)".into(),
            figure: r
                .map(|r| {
                    // The gateway's own time for them and an outside
                    // probe's beside the client's (which includes the load
                    // generator's lag).
                    let gateway = r
                        .stages
                        .get(SHED_STAGE)
                        .map(|s| format!("gateway {:.1}", s.p99));
                    let probe = r
                        .shed_probe_ms
                        .as_ref()
                        .map(|p| format!("probe {:.0}", p.p99));
                    let beside: Vec<String> = [gateway, probe].into_iter().flatten().collect();
                    let server = if beside.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", beside.join(", "))
                    };
                    format!(
                        "{:.0}/s shed, p99 {:.1} ms{server}, {} w/o R-A",
                        r.shed_per_s, r.shed_ms.p99, r.shed_without_retry_after
                    )
                })
                .unwrap_or_else(|| "-".into()),
            status: judge(r.map(|r| {
                r.shed_per_s > 0.0 && r.shed_ms.p99 < 50.0 && r.shed_without_retry_after == 0
            })),
        });
        t.push(Target {
            target: "overload: nothing accepted is lost".into(),
            figure: r
                .map(|r| format!("{} unconfirmed after drain", r.unconfirmed_after_drain))
                .unwrap_or_else(|| "-".into()),
            status: judge(r.map(|r| r.unconfirmed_after_drain == 0 && r.invariants.holds)),
        });
    }

    /// A quantile of the open loop at `pct` % load, if it measured anything.
    /// None with `--open-base`: `pct` % of a given rate is not `pct` % load.
    fn e2e_at(&self, pct: f64, quantile: fn(&Latency) -> f64) -> Option<f64> {
        if self.open_base.is_some() {
            return None;
        }
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
