//! `gateway` runs the service; `gateway healthcheck` probes a running one (for
//! container HEALTHCHECK, which has no curl).

/// mimalloc: less CPU per allocation and far less retained memory than
/// glibc's per-thread arenas under this many small, short-lived buffers.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    shared::service::main(
        "gateway",
        "GATEWAY_ADDR",
        "127.0.0.1:8080",
        gateway::Config::from_env,
        gateway::run,
    )
    .await
}
