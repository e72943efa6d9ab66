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
        Self::with(false)
    }

    /// A fake that "commits" at once (gives the slot back unless it will
    /// refuse), then waits at the gate as if handing over its results.
    fn releasing() -> (Self, ApplyFn<u32>) {
        Self::with(true)
    }

    fn with(release_at_commit: bool) -> (Self, ApplyFn<u32>) {
        let fake = Self {
            calls: Arc::default(),
            gate: Arc::new(Semaphore::new(0)),
        };
        let (calls, gate) = (fake.calls.clone(), fake.gate.clone());
        let apply: ApplyFn<u32> = Arc::new(move |items: Vec<u32>, slot: Slot| {
            let (calls, gate) = (calls.clone(), gate.clone());
            Box::pin(async move {
                calls.lock().unwrap().push(items.clone());
                if release_at_commit && !items.contains(&13) {
                    slot.release();
                }
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

fn send(applier: &Applier<u32>, items: &[u32], alone: bool) -> tokio::task::JoinHandle<Done<u32>> {
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
async fn a_slot_given_back_at_commit_lets_the_next_transaction_start() {
    let (fake, apply) = Fake::releasing();
    let applier = start(100, apply, Shutdown::never());
    let first = send(&applier, &[1], false);
    fake.started(1).await;
    let second = send(&applier, &[2], false);
    // The first is still handing over its results, yet the second started.
    tokio::time::timeout(Duration::from_secs(5), fake.started(2))
        .await
        .expect("the second transaction waited for the first's results");
    fake.gate.add_permits(2);
    assert!(first.await.unwrap().1.is_ok());
    assert!(second.await.unwrap().1.is_ok());
    assert_eq!(fake.calls(), vec![vec![1], vec![2]]);
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
