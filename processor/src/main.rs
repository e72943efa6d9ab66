//! `processor` runs the service; `processor healthcheck` probes a running one (for
//! container HEALTHCHECK, which has no curl).

fn main() -> std::process::ExitCode {
    shared::alloc::tune();
    shared::service::block_on(shared::service::main(
        "processor",
        "PROCESSOR_ADDR",
        "127.0.0.1:8082",
        processor::Config::from_env,
        processor::run,
    ))
}
