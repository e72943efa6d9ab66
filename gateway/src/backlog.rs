//! Back-pressure: work accepted but not yet applied is bounded as *time*.
//!
//! A `202` promises the transfer will be applied; if the processors are
//! minutes behind, that promise turns into a customer watching "pending"
//! for minutes. So one task per gateway asks JetStream every
//! [`POLL_INTERVAL`] how many commands wait in the transfers stream and how
//! fast they have been leaving it, and new money-moving requests are
//! refused with `503` + `Retry-After` (problem type `backlog`) while
//! `waiting / clear rate` exceeds [`SHED_FROM`] of the budget
//! (`BACKLOG_BUDGET_MS`) — before anything is published, so nothing sits
//! in the queue unseen. The budget is the bound; shedding starts below it
//! because the pace it is measured in moves: under overload the
//! processors' pace sagged for seconds at a time (a slow transaction, a
//! checkpoint), and the same queue then weighs that many more seconds
//! (`make bench`, overload at 2×: peaks of 2.4–3.3 s against 2 s while
//! shedding at the budget itself).
//!
//! The figures come from the stream, not the processor's consumer: the
//! stream is a work queue, so its message count *is* the backlog (waiting
//! plus handed out and unacknowledged), it exists before any processor has
//! started, and messages that left it between two polls are `published -
//! growth` = `Δlast_seq - Δmessages`. One request per poll whatever the
//! traffic; the request path only reads atomics.
//!
//! Between two polls the reading is brought up to date on every request
//! ([`Backlog::estimate`]): what this gateway published since the reading
//! was asked for, plus the requests it admitted that are not answered yet
//! (the stream has not counted them, but each is a `202` to be). Without
//! that, a poll interval of admissions at an overload's rate plus
//! thousands of publishes in flight overshot a 2 s budget to 4 s before
//! the next poll noticed (`make bench`, overload at 2×).
//!
//! The clear rate is what the processors can do, so it is measured only
//! while they had work (`backlog_pace.rs`): a burst after a quiet spell is
//! weighed against the pace of the last busy spell (remembered for a
//! minute), not against the quiet spell's trickle — which would shed a
//! payroll batch that the processors clear in a fraction of the budget. A
//! queue that held work at five polls in a row is measured on its own:
//! then the rate *is* the processors' pace, however fast they were before.
//!
//! The stream's own limits (`max_msgs`/`max_bytes`, discard new) stay the
//! last line: a publish refused for them is answered the same way
//! (`publish.rs`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use shared::shutdown::Shutdown;
use utoipa::ToSchema;

use crate::backlog_pace::{Peak, RATE_WINDOW, Sample, busy_rate, pace};
use crate::error::ApiError;
use crate::state::SharedState;

/// How often the gateway asks JetStream for the stream's state: often
/// enough that a budget of a second or two is enforced within a fraction
/// of it, rarely enough to cost nothing (one request, whatever the load).
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Shedding starts at this share of the budget: room for the pace to dip
/// by a quarter without the backlog passing the budget.
const SHED_FROM: f64 = 0.75;
/// The rate assumed when fewer messages than this per second left the
/// stream while it held work (processors down or stalled): a stopped
/// processor is detected once `budget × RATE_FLOOR_PER_S` messages wait.
const RATE_FLOOR_PER_S: f64 = 50.0;
/// The longest `Retry-After` the gateway suggests: a client retrying this
/// late still sees a recovered pipeline promptly.
const RETRY_AFTER_MAX_SECS: u64 = 30;

/// Why a request was shed (the `reason` label of `gateway_shed_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShedReason {
    /// The measured backlog reached the shedding point below the budget.
    Backlog,
    /// JetStream refused the publish: the stream's hard limit.
    StreamFull,
    /// `PUBLISH_INFLIGHT_MAX` publishes already await JetStream's ack: a
    /// request that would queue behind them is answered at once instead.
    Busy,
}

impl ShedReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Backlog => "backlog",
            Self::StreamFull => "stream_full",
            Self::Busy => "publishes_in_flight",
        }
    }
}

/// The backlog as the ops view shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BacklogView {
    /// Whether the gateway has a current reading (false: JetStream did not
    /// answer the last poll, and nothing is shed on the backlog's account).
    known: bool,
    /// Commands accepted and not yet applied: in the transfers stream, or
    /// (this gateway's) on their way to it.
    pending: u64,
    /// The processors' pace: commands leaving the stream per second while
    /// it held work, over the last few seconds (or the last busy spell's;
    /// 0 before any was seen).
    clear_per_second: f64,
    /// `pending` divided by the clear rate (at least a floor rate).
    seconds: f64,
    /// The bound on `seconds`: new transfers are refused once `seconds`
    /// exceeds [`SHED_FROM`] of it, so that a dip in the pace does not
    /// carry the backlog past it.
    budget_seconds: f64,
    /// Whether new transfers are being refused right now.
    shedding: bool,
}

/// The latest reading, shared by the poller and every request.
pub struct Backlog {
    budget: Duration,
    known: AtomicBool,
    /// Whether the reading's pace was measured (see [`pace`]).
    measured: AtomicBool,
    /// Messages in the stream at the last reading.
    pending: AtomicU64,
    /// The processors' pace at the last reading: f64 bits (atomics hold no
    /// floats).
    clear_per_s: AtomicU64,
    /// This gateway's publishes JetStream stored, ever.
    stored: AtomicU64,
    /// `stored` when the last reading was asked for: later ones are not in
    /// its count.
    stored_at_reading: AtomicU64,
    /// This gateway's admitted requests and batch-line publishes not
    /// answered yet.
    in_flight: AtomicU64,
}

/// Counts one admitted request (or one batch line's publish) as backlog
/// until it is answered or cancelled: see [`Backlog::admit`] and
/// [`Backlog::publishing`].
pub struct InFlight<'a>(&'a Backlog);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Backlog {
    /// `budget` zero switches the backlog check off (the stream's limits
    /// still apply).
    pub fn new(budget: Duration) -> Self {
        Self {
            budget,
            known: AtomicBool::new(false),
            measured: AtomicBool::new(false),
            pending: AtomicU64::new(0),
            clear_per_s: AtomicU64::new(0f64.to_bits()),
            stored: AtomicU64::new(0),
            stored_at_reading: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
        }
    }

    /// Call before a publish to the transfers stream not admitted by
    /// [`Backlog::admit`] (a batch's lines); it counts as backlog until
    /// the guard is dropped.
    pub fn publishing(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// A publish JetStream stored (call before dropping its [`InFlight`],
    /// so that it is never missing from both counts).
    pub fn published(&self) {
        self.stored.fetch_add(1, Ordering::Relaxed);
    }

    /// Commands accepted and not applied, now: the last reading plus this
    /// gateway's publishes since (stored, in flight, or admitted and on
    /// their way). Nothing is taken off for what the processors cleared
    /// since: an earlier version did, at their measured pace, and when a
    /// poll was slow to come back (JetStream's API answers behind the
    /// publishes under overload) and the processors stalled meanwhile,
    /// it credited clearing that never happened and let the backlog pass
    /// the budget. Erring this way sheds at most one poll's clearing early.
    fn estimate(&self) -> u64 {
        let newer = self
            .stored
            .load(Ordering::Relaxed)
            .saturating_sub(self.stored_at_reading.load(Ordering::Relaxed));
        self.pending.load(Ordering::Relaxed) + newer + self.in_flight.load(Ordering::Relaxed)
    }

    /// The backlog in seconds of the processors' pace (at least the floor
    /// rate), now.
    fn seconds(&self) -> f64 {
        let rate = f64::from_bits(self.clear_per_s.load(Ordering::Relaxed));
        self.estimate() as f64 / rate.max(RATE_FLOOR_PER_S)
    }

    /// The backlog, in seconds, from which new work is shed.
    fn shed_from(&self) -> f64 {
        self.budget.as_secs_f64() * SHED_FROM
    }

    fn shedding(&self) -> bool {
        !self.budget.is_zero()
            && self.known.load(Ordering::Relaxed)
            && self.measured.load(Ordering::Relaxed)
            && self.seconds() > self.shed_from()
    }

    /// `Ok` if new work may be accepted — it counts as backlog until the
    /// guard is dropped (hold it until the publish is answered); else the
    /// `503` to answer. Counting from here, not from the publish, covers
    /// the ledger lookup and account checks in between: under overload
    /// they took long enough for thousands of admitted requests to be in
    /// no count at all.
    pub fn admit(&self) -> Result<InFlight<'_>, ApiError> {
        match self.refusal() {
            None => Ok(self.publishing()),
            Some(retry_after) => Err(shed(ShedReason::Backlog, retry_after)),
        }
    }

    /// The `Retry-After` (seconds) to refuse new work with, if the backlog
    /// is past its shedding point now.
    pub fn refusal(&self) -> Option<u64> {
        self.shedding()
            .then(|| retry_after_secs(self.excess_seconds()))
    }

    pub fn view(&self) -> BacklogView {
        BacklogView {
            known: self.known.load(Ordering::Relaxed),
            pending: self.estimate(),
            clear_per_second: f64::from_bits(self.clear_per_s.load(Ordering::Relaxed)),
            seconds: self.seconds(),
            budget_seconds: self.budget.as_secs_f64(),
            shedding: self.shedding(),
        }
    }

    /// The time (not yet the Retry-After) the backlog would take to clear
    /// back to where shedding stops.
    pub fn excess_seconds(&self) -> f64 {
        (self.seconds() - self.shed_from()).max(0.0)
    }

    /// Call just before asking for a reading: what is stored from now on
    /// is not in it (one stored meanwhile is counted twice, which errs on
    /// the safe side).
    fn mark(&self) -> u64 {
        self.stored.load(Ordering::Relaxed)
    }

    /// A reading asked for after [`Backlog::mark`] returned `mark`:
    /// messages in the stream and the processors' pace, if measured yet
    /// (not: nothing is shed on this reading).
    fn store(&self, reading: Option<(u64, Option<f64>)>, mark: u64) {
        let Some((pending, pace)) = reading else {
            self.known.store(false, Ordering::Relaxed);
            return;
        };
        let rate = pace.unwrap_or(0.0);
        self.pending.store(pending, Ordering::Relaxed);
        self.clear_per_s.store(rate.to_bits(), Ordering::Relaxed);
        self.stored_at_reading.store(mark, Ordering::Relaxed);
        self.measured.store(pace.is_some(), Ordering::Relaxed);
        self.known.store(true, Ordering::Relaxed);
        let pending = self.estimate();
        metrics::gauge!("gateway_backlog_pending").set(pending as f64);
        metrics::gauge!("gateway_backlog_seconds").set(self.seconds());
        metrics::gauge!("gateway_backlog_clear_per_second").set(rate);
    }
}

/// Seconds to suggest in `Retry-After` when the backlog is `over` seconds
/// above the budget: about when it will be under it again.
pub fn retry_after_secs(over: f64) -> u64 {
    (over.ceil() as u64).clamp(1, RETRY_AFTER_MAX_SECS)
}

/// The answer to a shed request, counted by reason.
pub fn shed(reason: ShedReason, retry_after_secs: u64) -> ApiError {
    metrics::counter!("gateway_shed_total", "reason" => reason.as_str()).increment(1);
    ApiError::Backlog { retry_after_secs }
}

/// Polls the transfers stream until `shutdown`, keeping `state.backlog`
/// current. A failed poll marks the reading unknown (nothing is shed on
/// it: the publish itself then fails or succeeds on its own).
pub fn watch(state: SharedState, mut shutdown: Shutdown) {
    tokio::spawn(async move {
        let mut samples: VecDeque<Sample> = VecDeque::new();
        let mut peak = Peak::default();
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = tick.tick() => {}
            }
            let mark = state.backlog.mark();
            let info = match state
                .js
                .get_stream_no_info(&state.topology.transfers_stream)
                .await
            {
                Ok(stream) => stream.get_info().await.ok(),
                Err(_) => None,
            };
            let Some(info) = info else {
                samples.clear();
                state.backlog.store(None, mark);
                continue;
            };
            let now = Instant::now();
            samples.push_back((now, info.state.last_sequence, info.state.messages));
            while samples
                .front()
                .is_some_and(|&(t, _, _)| now - t > RATE_WINDOW)
            {
                samples.pop_front();
            }
            let window = busy_rate(&samples);
            let rate = pace(&samples, window, peak.get(now));
            peak.note(window, now);
            state.backlog.store(Some((info.state.messages, rate)), mark);
        }
    });
}

#[cfg(test)]
#[path = "backlog_tests.rs"]
mod tests;
