//! `notifier` runs the service; `notifier healthcheck` probes a running one (for
//! container HEALTHCHECK, which has no curl).

/// jemalloc, not glibc malloc, as in the gateway (where it took CPU per
/// request down; the notifier's own CPU was not compared): a few MiB more RSS
/// (README, Performance).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    shared::service::block_on(shared::service::main(
        "notifier",
        "NOTIFIER_ADDR",
        "127.0.0.1:8081",
        notifier::Config::from_env,
        notifier::run,
    ))
}
