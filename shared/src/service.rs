//! The `main` of every service binary: `<bin> healthcheck` probes a running
//! instance; otherwise logging, configuration, signals, run, exit code.

use std::fmt::Display;
use std::future::Future;
use std::num::NonZeroUsize;
use std::process::ExitCode;

use crate::config::ConfigError;
use crate::shutdown::{self, Shutdown};

/// `addr_var`/`default_addr` locate the instance `healthcheck` probes.
pub async fn main<C, F, Fut, E>(
    name: &'static str,
    addr_var: &str,
    default_addr: &str,
    config: impl FnOnce() -> Result<C, ConfigError>,
    run: F,
) -> ExitCode
where
    F: FnOnce(C, Shutdown) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        return crate::health::probe(&crate::config::string(addr_var, default_addr)).await;
    }
    let telemetry = match crate::telemetry::init(name) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(2);
        }
    };
    let config = match config() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "invalid configuration");
            return ExitCode::from(2);
        }
    };
    let (trigger, shutdown) = shutdown::channel();
    shutdown::on_signals(trigger);
    let code = match run(config, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "{name} failed");
            ExitCode::FAILURE
        }
    };
    // Export the last spans before leaving.
    telemetry.shutdown();
    code
}

/// Runs a service's `main` future on a multi-threaded runtime of
/// [`runtime_threads`] threads; an invalid setting stops the service at
/// start (exit 2, as for any invalid setting).
pub fn block_on(main: impl Future<Output = ExitCode>) -> ExitCode {
    let threads = match runtime_threads() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(main),
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Worker threads of the async runtime: `RUNTIME_THREADS`, else one per CPU
/// this process may use (`available_parallelism` counts cgroup CPU limits,
/// so a Kubernetes pod limited to 500m gets one).
///
/// Why a setting: where the services share a small machine with
/// PostgreSQL, NATS and Redis (`make bench`'s 2-core co-located run), a
/// runtime per core in every service wakes threads across cores for every
/// message; the processor and the notifier on one thread each (the bench's
/// setting) measured less CPU per transfer and more transfers per second
/// there (docs/performance-log.md, 2026-12-03). Tokio's own
/// `TOKIO_WORKER_THREADS` is not read: it panics on a bad value.
pub fn runtime_threads() -> Result<usize, ConfigError> {
    let per_cpu = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
    crate::config::parse(RUNTIME_THREADS, per_cpu).map(NonZeroUsize::get)
}

/// The setting [`runtime_threads`] reads.
pub const RUNTIME_THREADS: &str = "RUNTIME_THREADS";
