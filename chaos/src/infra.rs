//! Private PostgreSQL, NATS (JetStream) and Redis servers for one checker
//! run: their own data directories and free ports, so that stopping and
//! killing them never disturbs anything else on the machine.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::process::{Child, Command};

/// How often a port is tried while waiting for it to open or close.
const PORT_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How long a started server may take to open its port (NATS replaying its
/// store, Redis loading its append-only file).
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a signalled server may take to exit before it is killed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the port of an exited server may take to close.
const PORT_CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

fn free_port() -> anyhow::Result<u16> {
    Ok(testkit::try_free_addr()?.port())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// PostgreSQL refuses to run as root: then its programs run as `postgres`.
fn pg_command(bin: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    }
}

fn pg_bindir() -> anyhow::Result<PathBuf> {
    if let Ok(dir) = std::env::var("PG_BINDIR") {
        return Ok(dir.into());
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL server programs not found (set PG_BINDIR)")?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found
        .pop()
        .context("no initdb under /usr/lib/postgresql/*/bin")
}

async fn run(mut cmd: Command, what: &str) -> anyhow::Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

async fn wait_port(port: u16, up: bool, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let open = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok();
        if open == up {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(PORT_POLL_INTERVAL).await;
    }
}

/// A PostgreSQL cluster of its own (initdb in the run directory).
pub struct Postgres {
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
}

impl Postgres {
    pub async fn create(dir: &Path) -> anyhow::Result<Self> {
        let bin = pg_bindir()?;
        let data = dir.join("pg");
        std::fs::create_dir_all(&data)?;
        if is_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.args(["-R", "postgres:postgres"]).arg(dir);
                    c
                },
                "chown the run directory to postgres",
            )
            .await?;
        }
        let mut init = pg_command(&bin.join("initdb"));
        init.arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        run(init, "initdb").await?;
        let pg = Self {
            port: free_port()?,
            bin,
            data,
        };
        pg.start().await?;
        Ok(pg)
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub async fn start(&self) -> anyhow::Result<()> {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200 \
             -c shared_buffers=128MB -c fsync=on -c synchronous_commit=on",
            self.port,
            self.data.display()
        );
        let mut c = pg_command(&self.bin.join("pg_ctl"));
        c.arg("-D")
            .arg(&self.data)
            .args(["-o", &opts, "-l"])
            .arg(self.data.join("server.log"))
            .args(["-w", "-t", "60", "start"]);
        run(c, "pg_ctl start").await
    }

    /// `immediate`: like a crash (recovery on the next start); `fast`: clean.
    pub async fn stop(&self, mode: &str) -> anyhow::Result<()> {
        let mut c = pg_command(&self.bin.join("pg_ctl"));
        c.arg("-D")
            .arg(&self.data)
            .args(["-m", mode, "-w", "-t", "60", "stop"]);
        run(c, "pg_ctl stop").await
    }
}

/// A long-running server process we can kill and start again.
struct Server {
    program: &'static str,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
    port: u16,
}

impl Server {
    async fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", self.program))?;
        self.child = Some(child);
        if !wait_port(self.port, true, START_TIMEOUT).await {
            bail!("{} did not open port {}", self.program, self.port);
        }
        Ok(())
    }

    async fn signal(&mut self, sig: i32) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(pid, sig);
            }
        }
        if tokio::time::timeout(EXIT_TIMEOUT, child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
        wait_port(self.port, false, PORT_CLOSE_TIMEOUT).await;
    }
}

/// nats-server with JetStream and its own store directory.
pub struct Nats {
    server: Server,
}

impl Nats {
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        let port = free_port()?;
        let store = dir.join("nats");
        std::fs::create_dir_all(&store)?;
        let mut server = Server {
            program: "nats-server",
            args: vec![
                "-js".into(),
                "-a".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
                "-sd".into(),
                store.display().to_string(),
            ],
            log: dir.join("nats-server.log"),
            child: None,
            port,
        };
        server.start().await?;
        Ok(Self { server })
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.server.port)
    }

    /// `kill -9` (the store stays for the next start).
    pub async fn kill(&mut self) {
        self.server.signal(libc::SIGKILL).await;
    }

    /// Starts the killed server again on its store.
    pub async fn resume(&mut self) -> anyhow::Result<()> {
        self.server.start().await
    }

    pub async fn stop(&mut self) {
        self.server.signal(libc::SIGTERM).await;
    }
}

/// redis-server with an append-only file, so a stop/start keeps its data.
pub struct Redis {
    server: Server,
}

impl Redis {
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        let port = free_port()?;
        let data = dir.join("redis");
        std::fs::create_dir_all(&data)?;
        let mut server = Server {
            program: "redis-server",
            args: vec![
                "--port".into(),
                port.to_string(),
                "--bind".into(),
                "127.0.0.1".into(),
                "--dir".into(),
                data.display().to_string(),
                "--save".into(),
                "".into(),
                "--appendonly".into(),
                "yes".into(),
                "--appendfsync".into(),
                "always".into(),
            ],
            log: dir.join("redis-server.log"),
            child: None,
            port,
        };
        server.start().await?;
        Ok(Self { server })
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.server.port)
    }

    /// SIGTERM (Redis flushes and exits), `down_for`, start again.
    pub async fn outage(&mut self, down_for: Duration) -> anyhow::Result<()> {
        self.server.signal(libc::SIGTERM).await;
        tokio::time::sleep(down_for).await;
        self.server.start().await
    }

    pub async fn stop(&mut self) {
        self.server.signal(libc::SIGTERM).await;
    }
}
