//! `gateway` runs the service; `gateway healthcheck` probes a running one (for
//! container HEALTHCHECK, which has no curl).

fn main() -> std::process::ExitCode {
    shared::alloc::tune();
    shared::service::block_on(shared::service::main(
        "gateway",
        "GATEWAY_ADDR",
        "127.0.0.1:8080",
        gateway::Config::from_env,
        gateway::run,
    ))
}
