//! `processor` runs the service; `processor healthcheck` probes a running one (for
//! container HEALTHCHECK, which has no curl).

/// jemalloc, not glibc malloc, as in the gateway (where it took CPU per
/// request down; here no clear change was measured): a few MiB more RSS
/// (README, Performance).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    shared::service::block_on(shared::service::main(
        "processor",
        "PROCESSOR_ADDR",
        "127.0.0.1:8082",
        processor::Config::from_env,
        processor::run,
    ))
}
