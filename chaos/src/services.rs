//! The bank's own processes (gateway, processor replicas, notifier), each a
//! child process with its own port and log file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use tokio::process::{Child, Command};

pub struct Service {
    pub name: String,
    binary: PathBuf,
    pub addr: SocketAddr,
    env: BTreeMap<String, String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Service {
    pub fn new(
        bin_dir: &Path,
        program: &str,
        name: &str,
        addr: SocketAddr,
        env: BTreeMap<String, String>,
        log_dir: &Path,
    ) -> Self {
        Self {
            name: name.to_owned(),
            binary: bin_dir.join(program),
            addr,
            env,
            log: log_dir.join(format!("{name}.log")),
            child: None,
        }
    }

    pub fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(&self.binary)
            .envs(&self.env)
            .env("OTEL_SERVICE_NAME", &self.name)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", self.binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits for `/readyz`; false if the process died or `timeout` passed.
    pub async fn wait_ready(&mut self, http: &reqwest::Client, timeout: Duration) -> bool {
        let child = &mut self.child;
        let exited = || {
            child
                .as_mut()
                .is_some_and(|c| !matches!(c.try_wait(), Ok(None)))
        };
        testkit::await_ready(http, self.addr, timeout, exited).await == testkit::Readiness::Ready
    }

    pub async fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }

    /// SIGTERM and wait up to `grace`; the exit code (None: had to be killed).
    pub async fn terminate(&mut self, grace: Duration) -> Option<i32> {
        let mut c = self.child.take()?;
        if let Some(pid) = c.id().and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        match tokio::time::timeout(grace, c.wait()).await {
            Ok(Ok(status)) => status.code(),
            _ => {
                let _ = c.kill().await;
                None
            }
        }
    }
}

/// Where a service binary is: next to this checker (same cargo profile).
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    if let Ok(dir) = std::env::var("BANK_BIN_DIR") {
        return Ok(dir.into());
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("checker directory")?.to_path_buf();
    for b in ["gateway", "processor", "notifier"] {
        anyhow::ensure!(
            dir.join(b).exists(),
            "{} missing: run `cargo build --workspace --bins` first",
            dir.join(b).display()
        );
    }
    Ok(dir)
}
