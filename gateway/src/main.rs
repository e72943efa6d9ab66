//! The HTTP API: `gateway` serves; `gateway healthcheck` probes a running one
//! (for container HEALTHCHECK, which has no curl).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        return gateway::healthcheck().await;
    }
    shared::telemetry::init("gateway");
    let config = match gateway::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "invalid configuration");
            return std::process::ExitCode::from(2);
        }
    };
    let (trigger, shutdown) = shared::shutdown::channel();
    shared::shutdown::on_signals(trigger);
    match gateway::run(config, shutdown).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "gateway failed");
            std::process::ExitCode::FAILURE
        }
    }
}
