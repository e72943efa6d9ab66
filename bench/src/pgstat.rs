//! PostgreSQL's shared buffers during a run's window: how many of the bench
//! database's block requests missed them, and how many dirty buffers the
//! backends had to write out themselves to make room. A miss is a read
//! from the kernel, or a new page as a table or index grows (PostgreSQL
//! counts both as `blks_read`): about 0.2 per transfer on a fresh
//! database, where nothing is read.
//!
//! Why: in `make bench` the uniform closed loop runs after the raw ceiling
//! has grown the ledger to about two million transfers. Each uniform
//! transfer inserts into indexes keyed by random accounts and ids, so once
//! those indexes outgrow `shared_buffers` (128 MB, PostgreSQL's default, on
//! this project's machine) every transfer pays block reads and evictions
//! that a fresh database does not (perf stat, 2026-12-02: 2.7 `pread64` and
//! 2.6 more `pwrite64` per transfer after the raw phase, none on a fresh
//! database). These figures put that in every run's report instead of
//! leaving it to be inferred from PostgreSQL's CPU.

use std::fmt::Write as _;

use serde::Serialize;
use sqlx::PgPool;

use crate::report::RunResult;

/// Cumulative counters at one moment.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct Counters {
    blks_read: i64,
    blks_hit: i64,
    /// Cluster-wide (`pg_stat_bgwriter`, PostgreSQL ≤ 16): the bench's
    /// database is the only busy one while it runs.
    buffers_backend: i64,
    database_bytes: i64,
    shared_buffers_bytes: i64,
}

/// Reads the counters; `None` where the server does not have them (e.g.
/// PostgreSQL 17 moved `buffers_backend` to `pg_stat_io`): the report then
/// shows a dash, and nothing else depends on them.
pub async fn counters(pool: &PgPool) -> Option<Counters> {
    sqlx::query_as(
        "SELECT d.blks_read, d.blks_hit, b.buffers_backend,
                pg_database_size(current_database()) AS database_bytes,
                pg_size_bytes(current_setting('shared_buffers')) AS shared_buffers_bytes
           FROM pg_stat_database d, pg_stat_bgwriter b
          WHERE d.datname = current_database()",
    )
    .fetch_one(pool)
    .await
    .map_err(|e| eprintln!("[bench] PostgreSQL buffer counters unavailable: {e}"))
    .ok()
}

/// The window's buffer traffic per committed transfer.
#[derive(Debug, Clone, Serialize)]
pub struct Buffers {
    /// Block requests that missed shared buffers (reads and new pages),
    /// per committed transfer.
    pub reads_per_transfer: f64,
    /// Dirty buffers written by backends to make room, per committed
    /// transfer.
    pub backend_writes_per_transfer: f64,
    /// Block requests served from shared buffers, percent.
    pub hit_pct: f64,
    /// The database's size when the window began, and shared buffers, MiB.
    pub database_mib: f64,
    pub shared_buffers_mib: f64,
}

impl Buffers {
    /// From the counters at the window's start and end. Backends report
    /// their counts about once a second, so a window of a few seconds is
    /// only indicative.
    pub fn between(start: Counters, end: Counters, committed: f64) -> Self {
        let per = |d: i64| d.max(0) as f64 / committed.max(1.0);
        let read = (end.blks_read - start.blks_read).max(0) as f64;
        let hit = (end.blks_hit - start.blks_hit).max(0) as f64;
        Self {
            reads_per_transfer: per(end.blks_read - start.blks_read),
            backend_writes_per_transfer: per(end.buffers_backend - start.buffers_backend),
            hit_pct: if read + hit > 0.0 {
                100.0 * hit / (read + hit)
            } else {
                100.0
            },
            database_mib: start.database_bytes as f64 / (1024.0 * 1024.0),
            shared_buffers_mib: start.shared_buffers_bytes as f64 / (1024.0 * 1024.0),
        }
    }
}

/// The report's section: one line per run that has the figures.
pub fn table(o: &mut String, runs: &[RunResult], name: impl Fn(&RunResult) -> String) {
    if runs.iter().all(|r| r.pg_buffers.is_none()) {
        return;
    }
    let _ = writeln!(
        o,
        "\nPostgreSQL buffers per committed transfer (blocks not in shared_buffers: read, or new as tables grow; dirty buffers backends wrote to make room)"
    );
    let _ = writeln!(
        o,
        "  {:<17} {:>12} {:>15} {:>8} {:>14} {:>16}",
        "run", "reads", "backend writes", "hit %", "database MiB", "shared_buffers"
    );
    for r in runs {
        let Some(b) = &r.pg_buffers else { continue };
        let _ = writeln!(
            o,
            "  {:<17} {:>12.2} {:>15.2} {:>8.2} {:>14.0} {:>12.0} MiB",
            name(r),
            b.reads_per_transfer,
            b.backend_writes_per_transfer,
            b.hit_pct,
            b.database_mib,
            b.shared_buffers_mib
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(read: i64, hit: i64, backend: i64) -> Counters {
        Counters {
            blks_read: read,
            blks_hit: hit,
            buffers_backend: backend,
            database_bytes: 512 * 1024 * 1024,
            shared_buffers_bytes: 128 * 1024 * 1024,
        }
    }

    #[test]
    fn figures_are_per_committed_transfer() {
        let b = Buffers::between(at(100, 1_000, 10), at(2_800, 98_000, 2_610), 1_000.0);
        assert!((b.reads_per_transfer - 2.7).abs() < 1e-9);
        assert!((b.backend_writes_per_transfer - 2.6).abs() < 1e-9);
        assert!((b.hit_pct - 100.0 * 97_000.0 / 99_700.0).abs() < 1e-9);
        assert_eq!((b.database_mib, b.shared_buffers_mib), (512.0, 128.0));
    }

    #[test]
    fn an_idle_window_divides_by_nothing() {
        let b = Buffers::between(at(5, 5, 5), at(5, 5, 5), 0.0);
        assert_eq!(b.reads_per_transfer, 0.0);
        assert_eq!(b.hit_pct, 100.0);
    }
}
