//! The faults, injected one at a time while the workload runs.

use std::fmt;
use std::time::Duration;

use crate::bank::Bank;

/// Between killing a process and starting it again: long enough for its
/// port and connections to be gone, short against the checker's gaps.
const RESTART_PAUSE: Duration = Duration::from_millis(500);
/// How long a processor may take to drain and exit on SIGTERM (its
/// in-flight batch, acks); longer is reported as a problem.
const TERM_GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    KillProcessor,
    TermProcessor,
    RestartNats,
    StopPostgres,
    StopRedis,
    KillNotifier,
    KillGateway,
    /// A processor holding a batch it cannot commit yet: what it took from
    /// the queue must come back to the other replica, not vanish.
    KillProcessorDuringDbOutage,
}

pub const ALL: [Fault; 8] = [
    Fault::KillProcessor,
    Fault::StopPostgres,
    Fault::KillGateway,
    Fault::RestartNats,
    Fault::TermProcessor,
    Fault::StopRedis,
    Fault::KillNotifier,
    Fault::KillProcessorDuringDbOutage,
];

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fault::KillProcessor => "kill -9 a processor, restart it",
            Fault::TermProcessor => "SIGTERM a processor (graceful), restart it",
            Fault::RestartNats => "kill -9 nats-server and the gateway, start the gateway first",
            Fault::StopPostgres => "stop PostgreSQL (immediate), start it later",
            Fault::StopRedis => "stop Redis, start it later",
            Fault::KillNotifier => "kill -9 the notifier, restart it",
            Fault::KillGateway => "kill -9 the gateway with requests in flight, restart it",
            Fault::KillProcessorDuringDbOutage => {
                "stop PostgreSQL, kill -9 and start a processor meanwhile"
            }
        })
    }
}

impl Bank {
    /// Injects `fault` and brings the system back; `round` picks the replica.
    pub async fn inject(
        &mut self,
        fault: Fault,
        round: usize,
        outage: Duration,
    ) -> anyhow::Result<()> {
        match fault {
            Fault::KillProcessor => {
                let i = round % self.processors.len();
                self.processors[i].kill9().await;
                tokio::time::sleep(RESTART_PAUSE).await;
                self.restart_processor(i).await?;
            }
            Fault::TermProcessor => {
                let i = (round + 1) % self.processors.len();
                let code = self.processors[i].terminate(TERM_GRACE).await;
                if code != Some(0) {
                    self.problems.push(format!(
                        "{} did not exit 0 on SIGTERM within {} s (exit code {code:?})",
                        self.processors[i].name,
                        TERM_GRACE.as_secs()
                    ));
                }
                tokio::time::sleep(RESTART_PAUSE).await;
                self.restart_processor(i).await?;
            }
            Fault::RestartNats => {
                // The gateway is restarted while NATS is down: it must retry
                // (not exit) and become ready when NATS is back.
                self.nats.kill().await;
                self.gateway.kill9().await;
                self.gateway.start()?;
                tokio::time::sleep(outage / 2).await;
                self.nats.resume().await?;
                self.ready_or_note(Which::Gateway).await;
            }
            Fault::StopPostgres => {
                self.pg.stop("immediate").await?;
                tokio::time::sleep(outage).await;
                self.pg.start().await?;
            }
            Fault::StopRedis => self.redis.outage(outage).await?,
            Fault::KillNotifier => {
                self.notifier.kill9().await;
                tokio::time::sleep(RESTART_PAUSE).await;
                self.notifier.start()?;
                self.ready_or_note(Which::Notifier).await;
            }
            Fault::KillProcessorDuringDbOutage => {
                let i = round % self.processors.len();
                self.pg.stop("immediate").await?;
                // Long enough for both replicas to pull a batch they now hold.
                tokio::time::sleep(outage / 2).await;
                self.processors[i].kill9().await;
                // Started while the database is still down: it must wait for
                // it (not exit) and become ready once it is back.
                self.processors[i].start()?;
                tokio::time::sleep(outage / 2).await;
                self.pg.start().await?;
                self.ready_or_note(Which::Processor(i)).await;
            }
            Fault::KillGateway => {
                self.gateway.kill9().await;
                tokio::time::sleep(RESTART_PAUSE).await;
                self.gateway.start()?;
                self.ready_or_note(Which::Gateway).await;
            }
        }
        Ok(())
    }

    async fn restart_processor(&mut self, i: usize) -> anyhow::Result<()> {
        self.processors[i].start()?;
        self.ready_or_note(Which::Processor(i)).await;
        Ok(())
    }
}

pub enum Which {
    Gateway,
    Notifier,
    Processor(usize),
}
