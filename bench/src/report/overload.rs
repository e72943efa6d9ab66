//! The overload run's section: an open loop above the sustained rate, and
//! what back-pressure made of it.

use std::fmt::Write as _;

use super::{Report, RunResult};

impl Report {
    /// Offered, accepted, committed and shed per second; how fast the shed
    /// answers came (to the generator, and to the outside probe) and
    /// whether they said when to retry; the backlog's peak.
    pub(super) fn overload(&self, o: &mut String, runs: &[&RunResult]) {
        let _ = writeln!(
            o,
            "\nOVERLOAD (uniform, open loop above the sustained rate; gateway BACKLOG_BUDGET_MS={}): shed = 503/429 answers",
            self.backlog_budget_ms
        );
        let _ = writeln!(
            o,
            "  {:>5} {:>9} {:>10} {:>10} {:>11} {:>8} {:>22} {:>15} {:>15} {:>10} {:>13} {:>12} {:>11}",
            "load",
            "offered/s",
            "accepted/s",
            "committed/s",
            "shed/s",
            "w/o R-A",
            "shed answer p50/p99/max",
            "from send p50/p99",
            "probe p50/p99",
            "backlog pk",
            "HTTP 202 p99",
            "e2e p50/p99",
            "unconfirmed"
        );
        for r in runs {
            let _ = writeln!(
                o,
                "  {:>4.0}% {:>9.0} {:>10.0} {:>10.0} {:>11.0} {:>8} {:>22} {:>15} {:>15} {:>10} {:>13.1} {:>12} {:>11}",
                r.load_pct.unwrap_or(0.0),
                r.offered_per_s,
                r.accepted_per_s,
                r.committed_per_s,
                r.shed_per_s,
                r.shed_without_retry_after,
                format!(
                    "{:.1} / {:.1} / {:.0} ms",
                    r.shed_ms.p50, r.shed_ms.p99, r.shed_ms.max
                ),
                format!("{:.1} / {:.1}", r.shed_sent_ms.p50, r.shed_sent_ms.p99),
                r.shed_probe_ms
                    .as_ref()
                    .map(|p| format!("{:.1} / {:.1}", p.p50, p.p99))
                    .unwrap_or_else(|| "-".into()),
                r.backlog_peak_s
                    .map(|b| format!("{b:.2} s"))
                    .unwrap_or_else(|| "-".into()),
                r.http_ms.p99,
                format!("{:.0} / {:.0}", r.e2e_ms.p50, r.e2e_ms.p99),
                r.unconfirmed_after_drain
            );
        }
    }
}
