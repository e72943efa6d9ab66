//! The `main` of every service binary: `<bin> healthcheck` probes a running
//! instance; otherwise logging, configuration, signals, run, exit code.

use std::fmt::Display;
use std::future::Future;
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

/// Runs a service's `main` future on a multi-threaded runtime (what
/// `#[tokio::main]` does).
pub fn block_on(main: impl Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
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
