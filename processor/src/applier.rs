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
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::ctx::Failure;

/// A group's items come back with its outcome (the caller acks them).
pub type Done<T> = (Vec<T>, Result<(), Failure>);

/// How a group is applied: one ledger transaction and its results
/// (`apply::apply_group` in the processor).
pub type ApplyFn<T> =
    Arc<dyn Fn(Vec<T>) -> Pin<Box<dyn Future<Output = Done<T>> + Send>> + Send + Sync>;

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
        tokio::spawn(async move {
            apply_jobs(&apply, jobs).await;
            drop(slot);
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

/// One transaction for all `jobs`; on a refusal, one per job.
async fn apply_jobs<T>(apply: &ApplyFn<T>, mut jobs: Vec<Job<T>>) {
    let sizes: Vec<usize> = jobs.iter().map(|j| j.items.len()).collect();
    let merged: Vec<T> = jobs.iter_mut().flat_map(|j| j.items.drain(..)).collect();
    let (mut merged, outcome) = apply(merged).await;
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
            Err(Failure::Permanent(_)) => apply(items).await,
            Err(Failure::Stopped) => (items, Err(Failure::Stopped)),
        };
        let _ = job.done.send(own);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use ledger::LedgerError;
    use tokio::sync::Notify;

    use super::*;

    /// A fake ledger: records each call's items, then waits for the test to
    /// open the gate (one permit per call); refuses any call holding 13.
    struct Fake {
        calls: Arc<Mutex<Vec<Vec<u32>>>>,
        gate: Arc<Semaphore>,
    }

    impl Fake {
        fn new() -> (Self, ApplyFn<u32>) {
            let fake = Self {
                calls: Arc::default(),
                gate: Arc::new(Semaphore::new(0)),
            };
            let (calls, gate) = (fake.calls.clone(), fake.gate.clone());
            let apply: ApplyFn<u32> = Arc::new(move |items: Vec<u32>| {
                let (calls, gate) = (calls.clone(), gate.clone());
                Box::pin(async move {
                    calls.lock().unwrap().push(items.clone());
                    gate.acquire().await.unwrap().forget();
                    let outcome = if items.contains(&13) {
                        Err(Failure::Permanent(LedgerError::Conflict("13".into())))
                    } else {
                        Ok(())
                    };
                    (items, outcome)
                })
            });
            (fake, apply)
        }

        fn calls(&self) -> Vec<Vec<u32>> {
            self.calls.lock().unwrap().clone()
        }

        /// Waits until `n` calls have started.
        async fn started(&self, n: usize) {
            while self.calls.lock().unwrap().len() < n {
                tokio::task::yield_now().await;
            }
        }
    }

    fn limits(batch_max: usize) -> Limits {
        Limits {
            concurrency: 1,
            batch_max,
            queue: 8,
            keep_alive: Duration::from_secs(3600),
        }
    }

    fn ignore<'a>(_: &'a [&'a u32]) -> Touching<'a> {
        Box::pin(async {})
    }

    fn no_touch() -> TouchFn<u32> {
        Arc::new(ignore)
    }

    fn start(batch_max: usize, apply: ApplyFn<u32>, shutdown: Shutdown) -> Applier<u32> {
        Applier::start(limits(batch_max), apply, no_touch(), shutdown).0
    }

    fn send(
        applier: &Applier<u32>,
        items: &[u32],
        alone: bool,
    ) -> tokio::task::JoinHandle<Done<u32>> {
        let (a, items) = (applier.clone(), items.to_vec());
        tokio::spawn(async move { a.apply(items, alone).await })
    }

    /// Waits until `n` groups wait in the applier's channel.
    async fn queued(applier: &Applier<u32>, n: usize) {
        while applier.jobs.max_capacity() - applier.jobs.capacity() < n {
            tokio::task::yield_now().await;
        }
    }

    /// The first group is applied; the next ones queue behind it.
    async fn busy_then(
        applier: &Applier<u32>,
        fake: &Fake,
        groups: &[(&[u32], bool)],
    ) -> Vec<Done<u32>> {
        let mut tasks = vec![send(applier, &[1], false)];
        fake.started(1).await;
        for (n, (items, alone)) in groups.iter().enumerate() {
            tasks.push(send(applier, items, *alone));
            queued(applier, n + 1).await;
        }
        fake.gate.add_permits(100);
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn groups_waiting_for_a_slot_share_the_next_transaction() {
        let (fake, apply) = Fake::new();
        let applier = start(100, apply, Shutdown::never());
        let done = busy_then(&applier, &fake, &[(&[2, 3], false), (&[4], false)]).await;
        // Each group gets its own items back, applied.
        let back: Vec<Vec<u32>> = done.iter().map(|d| d.0.clone()).collect();
        assert_eq!(back, vec![vec![1], vec![2, 3], vec![4]]);
        assert!(done.iter().all(|d| d.1.is_ok()));
        // The first found the slot free; the two that waited went together.
        assert_eq!(fake.calls(), vec![vec![1], vec![2, 3, 4]]);
    }

    #[tokio::test]
    async fn a_merge_stops_at_batch_max_and_alone_groups_go_alone() {
        let (fake, apply) = Fake::new();
        let applier = start(3, apply, Shutdown::never());
        let groups: [(&[u32], bool); 5] = [
            (&[2, 3], false),
            (&[4], false),
            (&[5, 6], false),
            (&[7], true),
            (&[8], false),
        ];
        let done = busy_then(&applier, &fake, &groups).await;
        assert!(done.iter().all(|d| d.1.is_ok()));
        assert_eq!(
            fake.calls(),
            vec![vec![1], vec![2, 3, 4], vec![5, 6], vec![7], vec![8]]
        );
    }

    #[tokio::test]
    async fn a_refused_merge_is_retried_group_by_group() {
        let (fake, apply) = Fake::new();
        let applier = start(100, apply, Shutdown::never());
        let done = busy_then(&applier, &fake, &[(&[2, 13], false), (&[4], false)]).await;
        let outcomes: Vec<bool> = done.iter().map(|d| d.1.is_ok()).collect();
        // Only the group holding the poison is refused (its worker splits it).
        assert_eq!(outcomes, vec![true, false, true]);
        assert_eq!(done[1].0, vec![2, 13]);
        assert_eq!(
            fake.calls(),
            vec![vec![1], vec![2, 13, 4], vec![2, 13], vec![4]]
        );
    }

    #[tokio::test]
    async fn shutdown_answers_waiting_groups_stopped_with_their_items() {
        let (fake, apply) = Fake::new();
        let (trigger, shutdown) = shared::shutdown::channel();
        let (applier, task) = Applier::start(limits(100), apply, no_touch(), shutdown);
        let first = send(&applier, &[1], false);
        fake.started(1).await;
        let second = send(&applier, &[2], false);
        queued(&applier, 1).await;
        trigger.fire();
        let second = second.await.unwrap();
        assert_eq!(second.0, vec![2]);
        assert!(matches!(second.1, Err(Failure::Stopped)));
        task.await.unwrap();
        // The one already started finishes.
        fake.gate.add_permits(1);
        assert!(first.await.unwrap().1.is_ok());
        assert_eq!(fake.calls(), vec![vec![1]]);
        // Afterwards nothing is taken.
        let late = applier.apply(vec![3], false).await;
        assert_eq!(late.0, vec![3]);
        assert!(matches!(late.1, Err(Failure::Stopped)));
    }

    /// What `recording_touch` saw (only the test below uses it).
    static TOUCHED: Mutex<Vec<Vec<u32>>> = Mutex::new(Vec::new());
    static POKED: Notify = Notify::const_new();

    fn recording_touch<'a>(items: &'a [&'a u32]) -> Touching<'a> {
        TOUCHED
            .lock()
            .unwrap()
            .push(items.iter().map(|i| **i).collect());
        POKED.notify_one();
        Box::pin(async {})
    }

    #[tokio::test]
    async fn groups_waiting_for_a_slot_are_kept_alive() {
        let (fake, apply) = Fake::new();
        let mut limits = limits(100);
        limits.keep_alive = Duration::from_millis(5);
        let touch: TouchFn<u32> = Arc::new(recording_touch);
        let (applier, _) = Applier::start(limits, apply, touch, Shutdown::never());
        let first = send(&applier, &[1], false);
        fake.started(1).await;
        let second = send(&applier, &[2, 3], false);
        POKED.notified().await;
        // The waiting group is touched, the running one is not (its own
        // transaction keeps it alive).
        assert_eq!(TOUCHED.lock().unwrap()[0], vec![2, 3]);
        fake.gate.add_permits(2);
        assert!(first.await.unwrap().1.is_ok());
        assert_eq!(second.await.unwrap().0, vec![2, 3]);
        assert_eq!(fake.calls(), vec![vec![1], vec![2, 3]]);
    }
}
