//! CPU time and memory of processes, from /proc (Linux only).

use std::fs;

fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// User + system CPU seconds of `pid` (all its threads), or `None` once gone.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    stat_cpu(&format!("/proc/{pid}/stat"))
}

pub fn self_cpu_seconds() -> f64 {
    stat_cpu("/proc/self/stat").unwrap_or(0.0)
}

fn stat_cpu(path: &str) -> Option<f64> {
    let s = fs::read_to_string(path).ok()?;
    // The command name may contain spaces and ')': fields start after the last ')'.
    let rest = s.get(s.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / clk_tck())
}

/// A `/proc/<pid>/status` field in KiB (`VmHWM`, `VmRSS`).
pub fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Summed CPU seconds of every process whose command name is `comm`
/// (e.g. all PostgreSQL backends). Machine-wide: other users of the same
/// servers are counted too.
pub fn cpu_by_comm(comm: &str) -> f64 {
    let Ok(dir) = fs::read_dir("/proc") else {
        return 0.0;
    };
    let mut total = 0.0;
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(c) = fs::read_to_string(format!("/proc/{pid}/comm")) else {
            continue;
        };
        if c.trim_end() == comm {
            total += cpu_seconds(pid).unwrap_or(0.0);
        }
    }
    total
}

/// Machine description for the report.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    format!(
        "{cpus} cores ({model}), {:.0} GiB RAM",
        mem as f64 / 1048576.0
    )
}

/// Busy CPU seconds of the whole machine so far (all cores: user, nice,
/// system, irq, softirq, steal), from /proc/stat.
pub fn machine_busy_seconds() -> f64 {
    let Ok(s) = fs::read_to_string("/proc/stat") else {
        return 0.0;
    };
    let Some(line) = s.lines().find(|l| l.starts_with("cpu ")) else {
        return 0.0;
    };
    let f: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal guest guest_nice
    let busy: f64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| f.get(i)).sum();
    busy / clk_tck()
}
