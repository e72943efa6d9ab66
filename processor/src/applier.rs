//! Where the pull workers' transfer groups meet the ledger: a few
//! transactions at a time per process, each taking every group that is
//! ready.
//!
//! Why: with each worker applying its own group, four transactions ran at
//! once and every one that touched a busy account waited on the others'
//! row locks (a convoy: holding a connection, doing nothing), while each
//! stayed small — in a closed loop of 128 requests, four workers split them
//! into batches of ~30, and PostgreSQL's cost per transfer more than halves
//! from 30 transfers a transaction to 500. Here at most `apply_concurrency`
//! transactions run; groups that arrive meanwhile wait in the channel and
//! the next transaction takes all of them (up to `batch_max` transfers). At
//! low load a group finds a free slot and is applied at once (no added
//! latency); under load the transactions grow instead of multiplying.
//!
//! Guarantees are the ledger's and unchanged: a merged group is one ledger
//! transaction (`ledger::apply`), its results one message, and the pull
//! workers ack their messages only after [`Applier::apply`] answered `Ok`.
//! A merged transaction the ledger refuses is applied again group by
//! group, so each worker sees its own group's outcome (it splits a refused
//! group and dead-letters a refused transfer, as before). Groups marked
//! `alone` (a transfer on its last delivery, or one of a split group) are
//! never merged: a poison message takes nothing else with it.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use shared::shutdown::Shutdown;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::ctx::Failure;

/// A group's items come back with its outcome (the caller acks them).
pub type Done<T> = (Vec<T>, Result<(), Failure>);

/// How a group is applied: one ledger transaction and its results
/// (`apply::apply_group` in the processor). It holds the transaction
/// [`Slot`] and may give it back once its transaction committed.
pub type ApplyFn<T> =
    Arc<dyn Fn(Vec<T>, Slot) -> Pin<Box<dyn Future<Output = Done<T>> + Send>> + Send + Sync>;

/// The transaction slot an apply holds. Given back at commit
/// ([`Slot::release`]), the next transaction starts while this one's
/// results are still being handed over; otherwise it is given back when
/// the apply ends. A default `Slot` holds nothing (releasing it does
/// nothing).
#[derive(Clone, Default)]
pub struct Slot(Arc<std::sync::Mutex<Option<OwnedSemaphorePermit>>>);

impl Slot {
    fn holding(permit: OwnedSemaphorePermit) -> Self {
        Self(Arc::new(std::sync::Mutex::new(Some(permit))))
    }

    /// Gives the slot back (once; later calls do nothing).
    pub fn release(&self) {
        let permit = match self.0.lock() {
            Ok(mut held) => held.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        drop(permit);
    }
}

/// Tells the queue that waiting items are still being worked on
/// (`Progress` acks in the processor), so they are not redelivered.
pub type TouchFn<T> = Arc<dyn for<'a> Fn(&'a [&'a T]) -> Touching<'a> + Send + Sync>;

/// What a [`TouchFn`] returns.
pub type Touching<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// How many transactions at once, and how big a merged one may grow.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub concurrency: usize,
    pub batch_max: usize,
    /// Groups waiting at most (one per pull worker is enough).
    pub queue: usize,
    /// How often groups waiting for a slot are touched (a third of the
    /// ack wait never lets their timer run out).
    pub keep_alive: Duration,
}

struct Job<T> {
    items: Vec<T>,
    alone: bool,
    done: oneshot::Sender<Done<T>>,
}

/// The handle the pull workers send their groups through.
pub struct Applier<T> {
    jobs: mpsc::Sender<Job<T>>,
}

impl<T> Clone for Applier<T> {
    fn clone(&self) -> Self {
        Self {
            jobs: self.jobs.clone(),
        }
    }
}

impl<T: Send + Sync + 'static> Applier<T> {
    /// Starts the applier task; it ends at shutdown or when every handle is
    /// dropped.
    pub fn start(
        limits: Limits,
        apply: ApplyFn<T>,
        touch: TouchFn<T>,
        shutdown: Shutdown,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(limits.queue.max(1));
        let task = tokio::spawn(run(limits, apply, touch, rx, shutdown));
        (Self { jobs: tx }, task)
    }

    /// Applies `items` (merged with other groups unless `alone`) and
    /// answers once their transaction committed and the results are
    /// stored, or why not. Shutdown answers `Stopped`.
    pub async fn apply(&self, items: Vec<T>, alone: bool) -> Done<T> {
        let (done, answer) = oneshot::channel();
        if let Err(refused) = self.jobs.send(Job { items, alone, done }).await {
            return (refused.0.items, Err(Failure::Stopped));
        }
        match answer.await {
            Ok(done) => done,
            // Cannot happen (every job is answered, see `stop`); were it to,
            // the messages would be redelivered after their ack wait.
            Err(_) => (Vec::new(), Err(Failure::Stopped)),
        }
    }
}

async fn run<T: Send + Sync + 'static>(
    limits: Limits,
    apply: ApplyFn<T>,
    touch: TouchFn<T>,
    mut rx: mpsc::Receiver<Job<T>>,
    mut shutdown: Shutdown,
) {
    let slots = Arc::new(Semaphore::new(limits.concurrency.max(1)));
    // Groups taken off the channel but not started yet, oldest first.
    let mut waiting: VecDeque<Job<T>> = VecDeque::new();
    loop {
        // While the slots are busy (a long transaction, or one retrying
        // while the database is away) the waiting groups' messages are
        // kept from redelivery, as a running transaction's are.
        let slot = loop {
            tokio::select! {
                _ = shutdown.wait() => return stop(waiting, rx),
                slot = slots.clone().acquire_owned() => break slot,
                _ = tokio::time::sleep(limits.keep_alive) => {
                    waiting.extend(std::iter::from_fn(|| rx.try_recv().ok()));
                    let items: Vec<&T> = waiting.iter().flat_map(|j| j.items.iter()).collect();
                    if !items.is_empty() {
                        touch(&items).await;
                    }
                }
            }
        };
        let Ok(slot) = slot else { return };
        let first = match waiting.pop_front() {
            Some(job) => job,
            None => tokio::select! {
                _ = shutdown.wait() => return stop(waiting, rx),
                job = rx.recv() => match job {
                    Some(job) => job,
                    None => return,
                },
            },
        };
        let mut jobs = vec![first];
        if !jobs[0].alone {
            let mut size = jobs[0].items.len();
            while size < limits.batch_max {
                let Some(job) = waiting.pop_front().or_else(|| rx.try_recv().ok()) else {
                    break;
                };
                if job.alone || size + job.items.len() > limits.batch_max {
                    waiting.push_front(job);
                    break;
                }
                size += job.items.len();
                jobs.push(job);
            }
        }
        let apply = apply.clone();
        let slot = Slot::holding(slot);
        tokio::spawn(async move {
            apply_jobs(&apply, jobs, slot.clone()).await;
            slot.release();
        });
    }
}

/// Shutdown: every group not started is answered `Stopped` (its worker
/// naks it for another processor to take soon).
fn stop<T>(waiting: VecDeque<Job<T>>, mut rx: mpsc::Receiver<Job<T>>) {
    rx.close();
    let waiting = waiting
        .into_iter()
        .chain(std::iter::from_fn(|| rx.try_recv().ok()));
    for job in waiting {
        let _ = job.done.send((job.items, Err(Failure::Stopped)));
    }
}

/// One transaction for all `jobs`; on a refusal, one per job. Those run
/// one after another under `slot`, which the refused transaction did not
/// give back (nothing committed), so they get a `Slot` holding nothing.
async fn apply_jobs<T>(apply: &ApplyFn<T>, mut jobs: Vec<Job<T>>, slot: Slot) {
    let sizes: Vec<usize> = jobs.iter().map(|j| j.items.len()).collect();
    let merged: Vec<T> = jobs.iter_mut().flat_map(|j| j.items.drain(..)).collect();
    let (mut merged, outcome) = apply(merged, slot).await;
    if jobs.len() == 1 {
        if let Some(job) = jobs.pop() {
            let _ = job.done.send((merged, outcome));
        }
        return;
    }
    let refused = matches!(outcome, Err(Failure::Permanent(_)));
    if refused {
        metrics::counter!("processor_merged_batch_refused_total").increment(1);
    }
    for (job, size) in jobs.into_iter().zip(sizes) {
        let items: Vec<T> = merged.drain(..size.min(merged.len())).collect();
        let own = match &outcome {
            Ok(()) => (items, Ok(())),
            // Someone's transfer was refused: find out whose.
            Err(Failure::Permanent(_)) => apply(items, Slot::default()).await,
            Err(Failure::Stopped) => (items, Err(Failure::Stopped)),
        };
        let _ = job.done.send(own);
    }
}

#[cfg(test)]
#[path = "applier_tests.rs"]
mod tests;
