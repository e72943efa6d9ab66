//! Request quotas per user and per client IP, shared by every gateway
//! replica through fixed-window counters in Redis
//! (`<prefix>:rl:<scope>:<who>:<window>`).
//!
//! Counting is local and flushed, so a request costs no Redis round trip:
//! it bumps an in-memory counter, and at most every [`FLUSH_EVERY`] one
//! background task sends this replica's new counts (`INCRBY` + `PEXPIRE` per
//! counter, one pipelined round trip for all of them) and learns the totals
//! of all replicas in return. A request is refused when the last known total
//! plus what this replica counted since is over the quota: one replica is
//! exact, and N replicas overshoot by at most what the others admitted in
//! one flush period. (One round trip per request cost ~16 % of the
//! pipeline's throughput; see README Performance.)
//!
//! Without Redis each replica goes on enforcing the quotas on its own
//! counts (flushes fail fast behind [`crate::redis_link`]'s breaker and are
//! retried; the counts made meanwhile are sent when Redis is back): never
//! stricter than with Redis, and a flood is still refused.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use uuid::Uuid;

use crate::config::RateLimits;
use crate::error::{ApiError, LimitScope};
use crate::redis_link::{Link, now_ms};

/// How stale another replica's counts may be.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Counters tracked per window (per replica); beyond it the local counts
/// start over (Redis keeps the totals, learnt again at the next flush).
const TRACKED_MAX: usize = 100_000;
/// Counters outlive their window by this much (clock skew between replicas).
const EXPIRY_SLACK_MS: u64 = 1_000;

pub struct RateLimiter {
    limits: RateLimits,
    prefix: String,
    shared: Arc<Shared>,
}

struct Shared {
    counts: Mutex<Counts>,
    /// A flush is in flight (at most one at a time).
    flushing: AtomicBool,
    /// Unix ms of the last flush started.
    flushed_at_ms: AtomicU64,
}

/// This replica's counters for the current window.
#[derive(Default)]
struct Counts {
    window: u64,
    /// Bumped whenever the counters start over, so that a flush answered
    /// afterwards leaves the new ones alone.
    generation: u64,
    users: HashMap<Uuid, Slot>,
    ips: HashMap<String, Slot>,
    /// The counters with unflushed counts: a flush sends these, without
    /// walking every counter under the lock.
    dirty: Vec<Who>,
}

impl Counts {
    fn slot(&mut self, who: &Who) -> Option<&mut Slot> {
        match who {
            Who::User(u) => self.users.get_mut(u),
            Who::Ip(ip) => self.ips.get_mut(ip.as_str()),
        }
    }
}

#[derive(Default, Clone, Copy)]
struct Slot {
    /// All replicas' count in Redis as of the last flush (ours included).
    total: u64,
    /// Counted here since then.
    unflushed: u64,
}

impl Slot {
    /// Counts one request: the count it makes, and whether the counter had
    /// nothing unflushed before (it then joins the dirty list).
    fn count(&mut self) -> (u64, bool) {
        self.unflushed += 1;
        (self.total + self.unflushed, self.unflushed == 1)
    }
}

/// One counter's share of a flush.
enum Who {
    User(Uuid),
    Ip(String),
}

impl RateLimiter {
    pub fn new(limits: RateLimits, redis_prefix: &str) -> Self {
        Self {
            limits,
            prefix: redis_prefix.to_owned(),
            shared: Arc::new(Shared {
                counts: Mutex::new(Counts::default()),
                flushing: AtomicBool::new(false),
                flushed_at_ms: AtomicU64::new(0),
            }),
        }
    }

    fn window_ms(&self) -> u64 {
        (self.limits.window.as_millis() as u64).max(1)
    }

    /// Counts one request of `user` (if authenticated) from `ip`; refuses it
    /// with `429` if either is over its quota in the current window.
    pub async fn check(
        &self,
        link: &Arc<Link>,
        user: Option<Uuid>,
        ip: &str,
    ) -> Result<(), ApiError> {
        let (per_user, per_ip) = (self.limits.per_user, self.limits.per_ip);
        if per_ip == 0 && (per_user == 0 || user.is_none()) {
            return Ok(());
        }
        let window_ms = self.window_ms();
        let now = now_ms();
        let window = now / window_ms;
        let over = {
            let mut counts = self.shared.counts.lock().unwrap_or_else(|e| e.into_inner());
            if counts.window != window || counts.users.len() + counts.ips.len() >= TRACKED_MAX {
                *counts = Counts {
                    window,
                    generation: counts.generation + 1,
                    ..Counts::default()
                };
            }
            let Counts {
                users, ips, dirty, ..
            } = &mut *counts;
            let mut over = None;
            if let Some(user) = user
                && per_user > 0
            {
                let (count, fresh) = users.entry(user).or_default().count();
                if fresh {
                    dirty.push(Who::User(user));
                }
                if count > per_user {
                    over = Some(LimitScope::User);
                }
            }
            if per_ip > 0 {
                let slot = match ips.get_mut(ip) {
                    Some(slot) => slot,
                    None => ips.entry(ip.to_owned()).or_default(),
                };
                let (count, fresh) = slot.count();
                if fresh {
                    dirty.push(Who::Ip(ip.to_owned()));
                }
                if count > per_ip && over.is_none() {
                    over = Some(LimitScope::Ip);
                }
            }
            over
        };
        self.maybe_flush(link, now);
        match over {
            Some(scope) => {
                metrics::counter!("gateway_rate_limited_total", "scope" => scope.as_str())
                    .increment(1);
                let left = Duration::from_millis(window_ms - now % window_ms);
                Err(limited(scope, left))
            }
            None => Ok(()),
        }
    }

    /// Starts a flush if the last one is older than [`FLUSH_EVERY`] and none
    /// is in flight.
    fn maybe_flush(&self, link: &Arc<Link>, now: u64) {
        let shared = &self.shared;
        if now < shared.flushed_at_ms.load(Ordering::Relaxed) + FLUSH_EVERY.as_millis() as u64
            || shared.flushing.swap(true, Ordering::AcqRel)
        {
            return;
        }
        shared.flushed_at_ms.store(now, Ordering::Relaxed);
        let (window, generation, deltas) = {
            let mut counts = shared.counts.lock().unwrap_or_else(|e| e.into_inner());
            let dirty = std::mem::take(&mut counts.dirty);
            let deltas: Vec<(Who, u64)> = dirty
                .into_iter()
                .filter_map(|who| {
                    let n = counts.slot(&who).map_or(0, |s| s.unflushed);
                    (n > 0).then_some((who, n))
                })
                .collect();
            (counts.window, counts.generation, deltas)
        };
        if deltas.is_empty() {
            shared.flushing.store(false, Ordering::Release);
            return;
        }
        let window_ms = self.window_ms();
        let mut pipe = redis::pipe();
        for (who, n) in &deltas {
            let key = match who {
                Who::User(u) => format!("{}:rl:user:{u}:{window}", self.prefix),
                Who::Ip(ip) => format!("{}:rl:ip:{ip}:{window}", self.prefix),
            };
            pipe.cmd("INCRBY").arg(&key).arg(*n);
            pipe.cmd("PEXPIRE")
                .arg(&key)
                .arg(window_ms + EXPIRY_SLACK_MS)
                .ignore();
        }
        let (link, shared) = (Arc::clone(link), Arc::clone(&self.shared));
        tokio::spawn(async move {
            let totals: Option<Vec<u64>> = link
                .run("rate_limit", |mut conn| async move {
                    pipe.query_async(&mut conn).await
                })
                .await;
            {
                let mut counts = shared.counts.lock().unwrap_or_else(|e| e.into_inner());
                if counts.generation == generation {
                    match totals {
                        Some(totals) => {
                            for ((who, n), total) in deltas.into_iter().zip(totals) {
                                let Some(slot) = counts.slot(&who) else {
                                    continue;
                                };
                                slot.total = total;
                                slot.unflushed = slot.unflushed.saturating_sub(n);
                                // Counted while this flush was on its way.
                                if slot.unflushed > 0 {
                                    counts.dirty.push(who);
                                }
                            }
                        }
                        // Redis away: the counts stay unflushed and go with the next.
                        None => counts.dirty.extend(deltas.into_iter().map(|(who, _)| who)),
                    }
                }
            }
            shared.flushing.store(false, Ordering::Release);
        });
    }
}

fn limited(scope: LimitScope, left: Duration) -> ApiError {
    ApiError::RateLimited {
        scope,
        retry_after_secs: left.as_millis().div_ceil(1000).max(1) as u64,
    }
}
