//! `notifier` runs the service; `notifier healthcheck` probes a running one (for
//! container HEALTHCHECK, which has no curl).

fn main() -> std::process::ExitCode {
    shared::alloc::tune();
    shared::service::block_on(shared::service::main(
        "notifier",
        "NOTIFIER_ADDR",
        "127.0.0.1:8081",
        notifier::Config::from_env,
        notifier::run,
    ))
}
