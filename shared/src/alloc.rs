//! glibc malloc settings for the services, applied before the runtime
//! starts any thread.
//!
//! With glibc's defaults the gateway sat at ~140 MiB RSS under load for a
//! live heap of under 20 MiB (measured with heaptrack): one arena per thread
//! that ever allocated, and a mmap threshold that rises after the first
//! large free, so argon2's 12 MiB blocks are then carved from the arenas and
//! stay resident. Two arenas and a fixed 1 MiB threshold (large blocks are
//! mmapped and handed back when freed): 35 MiB at the same load, with no
//! measurable CPU cost (README, Performance). An operator's
//! `GLIBC_TUNABLES` takes precedence: then nothing is changed here.

/// Applies the settings (glibc targets only; elsewhere a no-op).
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("GLIBC_TUNABLES").is_none() {
        // SAFETY: mallopt only changes allocator parameters; it is called
        // from `main` before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        }
    }
}
