//! What a run measures: latency histograms, counters that move only inside
//! the measurement window, and the transfers still waiting for their event.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use uuid::Uuid;

/// A latency distribution in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    /// From a histogram of microseconds.
    pub fn from_hist(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: h.len(),
            mean: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }
}

/// The longest latency a histogram holds, in microseconds (10 minutes: far
/// beyond any drain), and its precision in significant digits.
const HIST_MAX_US: u64 = 600_000_000;
const HIST_SIGNIFICANT_DIGITS: u8 = 3;

pub(super) fn new_hist() -> Mutex<Histogram<u64>> {
    Mutex::new(
        Histogram::new_with_bounds(1, HIST_MAX_US, HIST_SIGNIFICANT_DIGITS)
            .expect("histogram bounds"),
    )
}

pub(super) fn record(h: &Mutex<Histogram<u64>>, d: Duration) {
    if let Ok(mut h) = h.lock() {
        h.saturating_record(d.as_micros().max(1) as u64);
    }
}

/// Transfers sent and not yet seen final on a WebSocket: id → (send time,
/// sent inside the measurement window).
pub struct Pending {
    shards: Vec<Mutex<HashMap<Uuid, (Instant, bool)>>>,
}

impl Pending {
    pub(super) fn new() -> Self {
        Self {
            shards: (0..64).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
    fn shard(&self, id: &Uuid) -> &Mutex<HashMap<Uuid, (Instant, bool)>> {
        &self.shards[id.as_bytes()[15] as usize % self.shards.len()]
    }
    pub(super) fn insert(&self, id: Uuid, v: (Instant, bool)) {
        if let Ok(mut m) = self.shard(&id).lock() {
            m.insert(id, v);
        }
    }
    pub(super) fn remove(&self, id: &Uuid) -> Option<(Instant, bool)> {
        self.shard(id).lock().ok()?.remove(id)
    }
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|m| m.len()).unwrap_or(0))
            .sum()
    }
}

/// Counters and histograms of one run. Counters move only while `window`
/// is on; latencies are recorded for requests sent inside the window.
pub struct Recorder {
    pub window: AtomicBool,
    pub sent: AtomicU64,
    pub accepted: AtomicU64,
    pub committed_ws: AtomicU64,
    pub rejected_ws: AtomicU64,
    pub dropped: AtomicU64,
    /// `503`/`429` answers (shed), and those without `Retry-After`.
    pub shed: AtomicU64,
    pub shed_without_retry_after: AtomicU64,
    /// Intended send → the shed answer.
    pub shed_ms: Mutex<Histogram<u64>>,
    /// The request actually leaving the generator → the shed answer: the
    /// same answers without the generator's own lag (a co-located generator
    /// is starved for CPU in the overload run).
    pub shed_sent_ms: Mutex<Histogram<u64>>,
    pub errors: Mutex<BTreeMap<String, u64>>,
    pub http: Mutex<Histogram<u64>>,
    pub lag: Mutex<Histogram<u64>>,
    pub e2e: Mutex<Histogram<u64>>,
    pub accept_to_apply: Mutex<Histogram<u64>>,
    pub apply_to_ws: Mutex<Histogram<u64>>,
    pub ws_reconnects: AtomicU64,
    pub ws_resyncs: AtomicU64,
}

impl Recorder {
    pub(super) fn new() -> Self {
        Self {
            window: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            committed_ws: AtomicU64::new(0),
            rejected_ws: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            shed: AtomicU64::new(0),
            shed_without_retry_after: AtomicU64::new(0),
            shed_ms: new_hist(),
            shed_sent_ms: new_hist(),
            errors: Mutex::new(BTreeMap::new()),
            http: new_hist(),
            lag: new_hist(),
            e2e: new_hist(),
            accept_to_apply: new_hist(),
            apply_to_ws: new_hist(),
            ws_reconnects: AtomicU64::new(0),
            ws_resyncs: AtomicU64::new(0),
        }
    }
    /// Counts an error by kind; like every counter, only inside the window
    /// (the overload run's warm-up 503s are not the measured run's).
    pub(super) fn error(&self, what: String) {
        if !self.in_window() {
            return;
        }
        if let Ok(mut e) = self.errors.lock() {
            *e.entry(what).or_default() += 1;
        }
    }
    pub(super) fn in_window(&self) -> bool {
        self.window.load(Ordering::Relaxed)
    }
}
