//! One private bank: servers, schema, seeded users and the service processes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rust_decimal::Decimal;
use sqlx::PgPool;

use crate::faults::Which;
use crate::infra::{Nats, Postgres, Redis};
use crate::services::{self, Service};
use crate::workload::{CURRENCIES, FUNDS_CENTS, User};

pub const PREFIX: &str = "chaos";

/// The checker's own requests (readiness): a service that takes longer to
/// answer `/readyz` is not ready.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a (re)started service may take to be ready: a processor
/// restarted during a database outage waits for PostgreSQL first.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long each service may take to stop on SIGTERM at the end of the run.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

pub struct Bank {
    pub dir: PathBuf,
    pub pg: Postgres,
    pub nats: Nats,
    pub redis: Redis,
    pub pool: PgPool,
    pub gateway: Service,
    pub notifier: Service,
    pub processors: Vec<Service>,
    pub http: reqwest::Client,
    /// Misbehaviour seen while injecting faults (reported as violations).
    pub problems: Vec<String>,
}

impl Bank {
    pub async fn start(dir: &Path, processors: usize) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let pg = Postgres::create(dir).await?;
        let admin = ledger::pool(&pg.url("postgres"), 1)?;
        sqlx::query("CREATE DATABASE bank").execute(&admin).await?;
        admin.close().await;
        let url = pg.url("bank");
        let pool = ledger::pool(&url, 8)?;
        ledger::migrate(&pool).await?;
        let nats = Nats::start(dir).await?;
        let redis = Redis::start(dir).await?;

        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs)?;
        let bin = services::bin_dir()?;
        let (g, n) = (testkit::try_free_addr()?, testkit::try_free_addr()?);
        let mut env: BTreeMap<String, String> = [
            ("DATABASE_URL", url.clone()),
            ("NATS_URL", nats.url()),
            ("NATS_PREFIX", PREFIX.into()),
            ("REDIS_URL", redis.url()),
            ("REDIS_PREFIX", PREFIX.into()),
            (
                "JWT_SECRET",
                format!("chaos-secret-{}", uuid::Uuid::new_v4().simple()),
            ),
            ("GATEWAY_ADDR", g.to_string()),
            ("NOTIFIER_ADDR", n.to_string()),
            ("PUBLIC_WS_URL", format!("ws://{n}/v1/ws")),
            ("WEB_DIR", dir.join("no-web").display().to_string()),
            // A killed processor's unacked messages come back after this.
            ("CONSUMER_ACK_WAIT_MS", "10000".into()),
            // Every user's socket is one client here; the default suits a person.
            ("WS_QUEUE_MAX", "65536".into()),
            (
                "RUST_LOG",
                std::env::var("CHAOS_RUST_LOG").unwrap_or_else(|_| "warn".into()),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        // A chaos user sends hundreds of transfers a second (a person's
        // quota is 10/s): every role's budgets far above that, explicitly.
        for role in ["CUSTOMER", "BATCH", "OPS", "REVERSER"] {
            for budget in ["MOVES_PER_MINUTE", "MOVES_PER_SECOND", "READS_PER_MINUTE"] {
                env.insert(format!("QUOTA_{role}_{budget}"), "1000000000".into());
            }
        }
        let gateway = Service::new(&bin, "gateway", "gateway", g, env.clone(), &logs);
        let notifier = Service::new(&bin, "notifier", "notifier", n, env.clone(), &logs);
        let mut procs = Vec::new();
        for i in 1..=processors {
            let addr = testkit::try_free_addr()?;
            env.insert("PROCESSOR_ADDR".into(), addr.to_string());
            procs.push(Service::new(
                &bin,
                "processor",
                &format!("processor-{i}"),
                addr,
                env.clone(),
                &logs,
            ));
        }
        Ok(Self {
            dir: dir.to_owned(),
            pg,
            nats,
            redis,
            pool,
            gateway,
            notifier,
            processors: procs,
            http: reqwest::Client::builder().timeout(PROBE_TIMEOUT).build()?,
            problems: Vec::new(),
        })
    }

    /// Users and their funded accounts; some may go into overdraft.
    pub async fn seed(&self, users: &mut [User]) -> anyhow::Result<()> {
        let funds = Decimal::new(FUNDS_CENTS, 2).to_string();
        for (i, u) in users.iter_mut().enumerate() {
            u.id = admin::create_user(&self.pool, &u.name, &u.password, "customer").await?;
            let overdraft = if i % 4 == 3 {
                Decimal::new(50_000, 2)
            } else {
                Decimal::ZERO
            };
            for (c, currency) in CURRENCIES.iter().enumerate() {
                let id = u.accounts[c];
                admin::create_account(&self.pool, &u.name, id, currency, overdraft).await?;
                admin::fund(&self.pool, id, &funds, &format!("chaos-fund-{id}")).await?;
            }
        }
        Ok(())
    }

    /// The user with the reverser role (contract #17): name and password.
    pub async fn seed_reverser(&self, seed: u64) -> anyhow::Result<(String, String)> {
        let (name, password) = ("chaos-rita".to_owned(), format!("chaos-rita-{seed}"));
        admin::create_user(&self.pool, &name, &password, "reverser").await?;
        Ok((name, password))
    }

    pub async fn start_services(&mut self) -> anyhow::Result<()> {
        for p in &mut self.processors {
            p.start()?;
        }
        self.gateway.start()?;
        self.notifier.start()?;
        for w in [Which::Gateway, Which::Notifier] {
            self.ready_or_note(w).await;
        }
        for i in 0..self.processors.len() {
            self.ready_or_note(Which::Processor(i)).await;
        }
        anyhow::ensure!(
            self.problems.is_empty(),
            "services did not start: {:?} (logs in {})",
            self.problems,
            self.dir.join("logs").display()
        );
        Ok(())
    }

    pub async fn ready_or_note(&mut self, which: Which) {
        let http = self.http.clone();
        let svc = match which {
            Which::Gateway => &mut self.gateway,
            Which::Notifier => &mut self.notifier,
            Which::Processor(i) => &mut self.processors[i],
        };
        if !svc.wait_ready(&http, READY_TIMEOUT).await {
            self.problems.push(format!(
                "{} not ready {} s after (re)start",
                svc.name,
                READY_TIMEOUT.as_secs()
            ));
        }
    }

    pub fn api(&self) -> String {
        format!("http://{}", self.gateway.addr)
    }

    pub fn ws(&self) -> String {
        format!("ws://{}/v1/ws", self.notifier.addr)
    }

    /// Graceful stop of everything; the run directory is removed unless `keep`.
    pub async fn shutdown(mut self, keep: bool) {
        self.gateway.terminate(SHUTDOWN_GRACE).await;
        self.notifier.terminate(SHUTDOWN_GRACE).await;
        for p in &mut self.processors {
            p.terminate(SHUTDOWN_GRACE).await;
        }
        self.pool.close().await;
        self.nats.stop().await;
        self.redis.stop().await;
        let _ = self.pg.stop("fast").await;
        if keep {
            eprintln!("[chaos] run directory kept: {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
