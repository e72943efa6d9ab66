//! The report as the table printed on stdout: one function per section, in
//! the order they appear.

use std::fmt::Write as _;

use super::{Invariants, Report, RunResult, run_name, short};

impl Report {
    /// The whole table.
    pub fn table(&self) -> String {
        let mut o = String::new();
        self.header(&mut o);
        if !self.raw.is_empty() {
            self.raw_ceiling(&mut o);
        }
        if !self.lookup_probe.is_empty() {
            self.lookup_probes(&mut o);
        }
        let closed: Vec<&RunResult> = self.runs.iter().filter(|r| r.mode == "closed").collect();
        if !closed.is_empty() {
            self.closed_loop(&mut o, &closed);
        }
        let open: Vec<&RunResult> = self.runs.iter().filter(|r| r.mode == "open").collect();
        if !open.is_empty() {
            open_loop(&mut o, &open);
        }
        let overload: Vec<&RunResult> = self.runs.iter().filter(|r| r.mode == "overload").collect();
        if !overload.is_empty() {
            self.overload(&mut o, &overload);
        }
        if !self.runs.is_empty() {
            self.stages(&mut o);
            self.cpu(&mut o);
            crate::pgstat::table(&mut o, &self.runs, run_name);
            self.memory(&mut o);
            self.anomalies(&mut o);
        }
        self.invariants(&mut o);
        self.targets(&mut o);
        let _ = writeln!(
            o,
            "\n(total {:.0} s, seeding {:.1} s)",
            self.total_seconds, self.seed_seconds
        );
        o
    }

    /// Date, machine, commit and the settings of the run.
    fn header(&self, o: &mut String) {
        let _ = writeln!(o, "\n== make bench — {} — {} ==", self.date, self.machine);
        let _ = writeln!(
            o,
            "commit {}, {} accounts, {} users, warm-up {:.0} s, window {:.0} s, settings {}",
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
    }

    /// The raw PostgreSQL ceiling per scenario.
    fn raw_ceiling(&self, o: &mut String) {
        let _ = writeln!(
            o,
            "\nRAW CEILING: ledger::apply::apply straight to PostgreSQL (no HTTP, no NATS)"
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

    /// What the gateway's "transfer id known?" lookup costs.
    fn lookup_probes(&self, o: &mut String) {
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

    /// The closed-loop runs: the pipeline's maximum throughput.
    fn closed_loop(&self, o: &mut String, closed: &[&RunResult]) {
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
            "  {:<9} {:>8} {:>11} {:>12} {:>12} {:>12} {:>8} {:>16} {:>18} {:>7} {:>9} {:>8}",
            "scenario",
            "inflight",
            "accepted/s",
            "committed/s",
            "(ws events)",
            "sustained/s",
            "vs raw",
            "HTTP p50/p99 ms",
            "e2e p50/p99 ms",
            "errors",
            "shed/s",
            "backlog"
        );
        for r in closed {
            let raw = self
                .raw(r.scenario)
                .map(|x| x.transfers_per_s)
                .filter(|x| *x > 0.0);
            let _ = writeln!(
                o,
                "  {:<9} {:>8} {:>11.0} {:>12.0} {:>12.0} {:>12.0} {:>8} {:>16} {:>18} {:>7} {:>9.0} {:>8}",
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
                r.errors.values().sum::<u64>(),
                r.shed_per_s,
                r.backlog_peak_s
                    .map(|b| format!("{b:.2} s"))
                    .unwrap_or_else(|| "-".into())
            );
        }
    }

    /// The services' own per-stage histograms over each window.
    fn stages(&self, o: &mut String) {
        let _ = writeln!(
            o,
            "\nSTAGES (services' own histograms over each window: mean / p50 / p99)"
        );
        for r in &self.runs {
            let name = run_name(r);
            for (stage, st) in r.stages.iter().filter(|(_, st)| st.count > 0) {
                let _ = writeln!(
                    o,
                    "  {:<17} {:<48} {:>8.2} / {:>8.2} / {:>8.2}   (n={})",
                    name, stage, st.mean, st.p50, st.p99, st.count
                );
            }
        }
    }

    /// CPU per committed transfer, one column per component.
    fn cpu(&self, o: &mut String) {
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
    }

    /// Peak RSS per service after each run.
    fn memory(&self, o: &mut String) {
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
    }

    /// Errors, reconnects, unconfirmed and dropped sends; nothing if none.
    fn anomalies(&self, o: &mut String) {
        let noisy: Vec<String> = self
            .runs
            .iter()
            .filter(|r| {
                !r.errors.is_empty()
                    || r.ws_reconnects > 0
                    || r.ws_resyncs > 0
                    || r.unconfirmed_after_drain > 0
                    || r.dropped_sends > 0
            })
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

    /// The ledger invariants after the raw runs and after every pipeline run.
    fn invariants(&self, o: &mut String) {
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
    }

    /// The targets of issue 9 with their figures and verdicts.
    fn targets(&self, o: &mut String) {
        let _ = writeln!(
            o,
            "\nTARGETS (issues 9 and 19, this 2-core machine, all services co-located)"
        );
        for t in &self.targets {
            let _ = writeln!(o, "  {:<62} {:>36}   {}", t.target, t.figure, t.status);
        }
    }
}

/// The open-loop runs: latency at fixed rates.
fn open_loop(o: &mut String, open: &[&RunResult]) {
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
    for r in open {
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
