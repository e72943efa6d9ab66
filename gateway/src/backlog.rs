//! Back-pressure: work accepted but not yet applied is bounded as *time*.
//!
//! A `202` promises the transfer will be applied; if the processors are
//! minutes behind, that promise turns into a customer watching "pending"
//! for minutes. So one task per gateway asks JetStream every
//! [`POLL_INTERVAL`] how many commands wait in the transfers stream and how
//! fast they have been leaving it, and new money-moving requests are
//! refused with `503` + `Retry-After` (problem type `backlog`) while
//! `waiting / clear rate` exceeds the budget (`BACKLOG_BUDGET_MS`) —
//! before anything is published, so nothing sits in the queue unseen.
//!
//! The figures come from the stream, not the processor's consumer: the
//! stream is a work queue, so its message count *is* the backlog (waiting
//! plus handed out and unacknowledged), it exists before any processor has
//! started, and messages that left it in a window are `published - growth`
//! = `Δlast_seq - Δmessages`. One request per poll whatever the traffic;
//! the request path only reads atomics.
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

use crate::error::ApiError;
use crate::state::SharedState;

/// How often the gateway asks JetStream for the stream's state: often
/// enough that a budget of a second or two is enforced within a fraction
/// of it, rarely enough to cost nothing (one request, whatever the load).
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// The clear rate is measured over this long: long enough to smooth the
/// processors' batches, short enough to follow a change of pace.
const RATE_WINDOW: Duration = Duration::from_secs(5);
/// The rate assumed when fewer messages than this per second left the
/// stream in the window (idle, just started, or processors down): a small
/// backlog after a quiet spell is admitted, while a stopped processor is
/// detected once `budget × RATE_FLOOR_PER_S` messages wait.
const RATE_FLOOR_PER_S: f64 = 50.0;
/// The longest `Retry-After` the gateway suggests: a client retrying this
/// late still sees a recovered pipeline promptly.
const RETRY_AFTER_MAX_SECS: u64 = 30;

/// Why a request was shed (the `reason` label of `gateway_shed_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShedReason {
    /// The measured backlog exceeded the budget.
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
    /// Commands in the transfers stream not yet applied and acknowledged.
    pending: u64,
    /// Commands leaving the stream per second, over the last few seconds.
    clear_per_second: f64,
    /// `pending` divided by the clear rate (or by a floor when idle).
    seconds: f64,
    /// New transfers are refused while `seconds` exceeds this.
    budget_seconds: f64,
    /// Whether new transfers are being refused right now.
    shedding: bool,
}

/// The latest reading, shared by the poller and every request.
pub struct Backlog {
    budget: Duration,
    known: AtomicBool,
    pending: AtomicU64,
    /// f64 bits (atomics hold no floats).
    seconds: AtomicU64,
    clear_per_s: AtomicU64,
}

impl Backlog {
    /// `budget` zero switches the backlog check off (the stream's limits
    /// still apply).
    pub fn new(budget: Duration) -> Self {
        Self {
            budget,
            known: AtomicBool::new(false),
            pending: AtomicU64::new(0),
            seconds: AtomicU64::new(0f64.to_bits()),
            clear_per_s: AtomicU64::new(0f64.to_bits()),
        }
    }

    fn seconds(&self) -> f64 {
        f64::from_bits(self.seconds.load(Ordering::Relaxed))
    }

    fn shedding(&self) -> bool {
        !self.budget.is_zero()
            && self.known.load(Ordering::Relaxed)
            && self.seconds() > self.budget.as_secs_f64()
    }

    /// `Ok` if new work may be accepted; else the `503` to answer.
    pub fn admit(&self) -> Result<(), ApiError> {
        if !self.shedding() {
            return Ok(());
        }
        let over = self.seconds() - self.budget.as_secs_f64();
        Err(shed(ShedReason::Backlog, retry_after_secs(over)))
    }

    pub fn view(&self) -> BacklogView {
        BacklogView {
            known: self.known.load(Ordering::Relaxed),
            pending: self.pending.load(Ordering::Relaxed),
            clear_per_second: f64::from_bits(self.clear_per_s.load(Ordering::Relaxed)),
            seconds: self.seconds(),
            budget_seconds: self.budget.as_secs_f64(),
            shedding: self.shedding(),
        }
    }

    /// The time (not yet the Retry-After) a full stream would take to
    /// clear back under the budget.
    pub fn excess_seconds(&self) -> f64 {
        (self.seconds() - self.budget.as_secs_f64()).max(0.0)
    }

    fn store(&self, reading: Option<(u64, f64)>) {
        let Some((pending, rate)) = reading else {
            self.known.store(false, Ordering::Relaxed);
            return;
        };
        let seconds = pending as f64 / rate.max(RATE_FLOOR_PER_S);
        self.pending.store(pending, Ordering::Relaxed);
        self.clear_per_s.store(rate.to_bits(), Ordering::Relaxed);
        self.seconds.store(seconds.to_bits(), Ordering::Relaxed);
        self.known.store(true, Ordering::Relaxed);
        metrics::gauge!("gateway_backlog_pending").set(pending as f64);
        metrics::gauge!("gateway_backlog_seconds").set(seconds);
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

/// One reading of the stream: (when, last sequence, messages in it).
type Sample = (Instant, u64, u64);

/// Messages per second that left the stream between the oldest and the
/// newest sample.
fn clear_rate(samples: &VecDeque<Sample>) -> f64 {
    match (samples.front(), samples.back()) {
        (Some(&(t0, seq0, n0)), Some(&(t1, seq1, n1))) if t1 > t0 => {
            let published = seq1.saturating_sub(seq0) as f64;
            let growth = n1 as f64 - n0 as f64;
            ((published - growth) / (t1 - t0).as_secs_f64()).max(0.0)
        }
        _ => 0.0,
    }
}

/// Polls the transfers stream until `shutdown`, keeping `state.backlog`
/// current. A failed poll marks the reading unknown (nothing is shed on
/// it: the publish itself then fails or succeeds on its own).
pub fn watch(state: SharedState, mut shutdown: Shutdown) {
    tokio::spawn(async move {
        let mut samples: VecDeque<Sample> = VecDeque::new();
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = tick.tick() => {}
            }
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
                state.backlog.store(None);
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
            state
                .backlog
                .store(Some((info.state.messages, clear_rate(&samples))));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clear_rate_is_what_left_the_stream_per_second() {
        let t0 = Instant::now();
        let mut s = VecDeque::new();
        s.push_back((t0, 100, 50));
        // 1,000 published, the stream grew by 200: 800 left in 2 s.
        s.push_back((t0 + Duration::from_secs(2), 1_100, 250));
        assert_eq!(clear_rate(&s), 400.0);
    }

    #[test]
    fn shedding_starts_past_the_budget_and_never_without_a_reading() {
        let b = Backlog::new(Duration::from_secs(2));
        assert!(b.admit().is_ok(), "no reading yet");
        b.store(Some((1_000, 1_000.0)));
        assert!(b.admit().is_ok(), "1 s of work");
        b.store(Some((3_000, 1_000.0)));
        assert!(matches!(
            b.admit(),
            Err(ApiError::Backlog {
                retry_after_secs: 1
            })
        ));
        // Processors stopped: nothing leaves, the floor rate applies.
        b.store(Some((1_000, 0.0)));
        assert!(b.admit().is_err());
        b.store(None);
        assert!(b.admit().is_ok(), "unknown: not shed");
        assert!(Backlog::new(Duration::ZERO).admit().is_ok());
    }
}
