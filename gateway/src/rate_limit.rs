//! Request quotas per user, per client IP and per role, shared by every
//! gateway replica through fixed-window counters in Redis
//! (`<prefix>:rl:<counter>:<window>`).
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
//! Two meters: one with the configured window (a minute) for the per-user,
//! per-IP and per-role budgets, one with one-second windows for the bursts
//! of money-moving requests. The per-user and per-IP limits count refused
//! requests too (a flood stays refused); a role budget is spent only by
//! what it admits, so a client honouring `Retry-After` gets its full share.
//!
//! Without Redis each replica goes on enforcing the quotas on its own
//! counts (flushes fail fast behind [`crate::redis_link`]'s breaker and are
//! retried; the counts made meanwhile are sent when Redis is back): never
//! stricter than with Redis, and a flood is still refused.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shared::auth::Role;
use uuid::Uuid;

use crate::config::RateLimits;
use crate::error::{ApiError, LimitScope};
use crate::quotas::{RoleQuotas, Spend};
use crate::redis_link::{Link, now_ms};

/// How stale another replica's counts may be.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Counters tracked per window (per replica); beyond it the local counts
/// start over (Redis keeps the totals, learnt again at the next flush).
const TRACKED_MAX: usize = 100_000;
/// Counters outlive their window by this much (clock skew between replicas).
const EXPIRY_SLACK_MS: u64 = 1_000;
/// The bursts' window.
const BURST_WINDOW: Duration = Duration::from_secs(1);

pub struct RateLimiter {
    limits: RateLimits,
    quotas: RoleQuotas,
    /// Per user, per IP and the roles' per-minute budgets.
    minute: Meter,
    /// The roles' money-moving bursts.
    second: Meter,
}

/// Fixed-window counters of one window length.
struct Meter {
    window_ms: u64,
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
    /// By counter name (`user:<id>`, `ip:<addr>`, `customer.moves:<id>`…).
    slots: HashMap<String, Slot>,
    /// The counters with unflushed counts: a flush sends these, without
    /// walking every counter under the lock.
    dirty: Vec<String>,
}

#[derive(Default, Clone, Copy)]
struct Slot {
    /// All replicas' count in Redis as of the last flush (ours included).
    total: u64,
    /// Counted here since then.
    unflushed: u64,
}

/// One counter a request is charged to.
struct Charge {
    counter: String,
    n: u64,
    limit: u64,
    /// Refused requests are not counted (role budgets).
    admitted_only: bool,
}

/// The counter that refused, and how long until its window ends.
struct Over {
    index: usize,
    left: Duration,
}

impl Meter {
    fn new(window: Duration, prefix: &str) -> Self {
        Self {
            window_ms: (window.as_millis() as u64).max(1),
            prefix: prefix.to_owned(),
            shared: Arc::new(Shared {
                counts: Mutex::new(Counts::default()),
                flushing: AtomicBool::new(false),
                flushed_at_ms: AtomicU64::new(0),
            }),
        }
    }

    /// Charges every counter with a limit (`0`: off); the first one over
    /// its limit refuses.
    fn charge(&self, link: &Arc<Link>, charges: &[Charge]) -> Option<Over> {
        if charges.iter().all(|c| c.limit == 0) {
            return None;
        }
        let now = now_ms();
        let window = now / self.window_ms;
        let over = {
            let mut counts = self.shared.counts.lock().unwrap_or_else(|e| e.into_inner());
            if counts.window != window || counts.slots.len() >= TRACKED_MAX {
                *counts = Counts {
                    window,
                    generation: counts.generation + 1,
                    ..Counts::default()
                };
            }
            let Counts { slots, dirty, .. } = &mut *counts;
            let mut over = None;
            for (index, c) in charges.iter().enumerate() {
                if c.limit == 0 {
                    continue;
                }
                let slot = match slots.get_mut(c.counter.as_str()) {
                    Some(slot) => slot,
                    None => slots.entry(c.counter.clone()).or_default(),
                };
                let would = slot.total + slot.unflushed + c.n;
                if c.admitted_only && would > c.limit {
                    over = over.or(Some(index));
                    continue;
                }
                if slot.unflushed == 0 {
                    dirty.push(c.counter.clone());
                }
                slot.unflushed += c.n;
                if would > c.limit {
                    over = over.or(Some(index));
                }
            }
            over
        };
        self.maybe_flush(link, now);
        over.map(|index| Over {
            index,
            left: Duration::from_millis(self.window_ms - now % self.window_ms),
        })
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
            let deltas: Vec<(String, u64)> = dirty
                .into_iter()
                .filter_map(|counter| {
                    let n = counts.slots.get(&counter).map_or(0, |s| s.unflushed);
                    (n > 0).then_some((counter, n))
                })
                .collect();
            (counts.window, counts.generation, deltas)
        };
        if deltas.is_empty() {
            shared.flushing.store(false, Ordering::Release);
            return;
        }
        let mut pipe = redis::pipe();
        for (counter, n) in &deltas {
            let key = format!("{}:rl:{counter}:{window}", self.prefix);
            pipe.cmd("INCRBY").arg(&key).arg(*n);
            pipe.cmd("PEXPIRE")
                .arg(&key)
                .arg(self.window_ms + EXPIRY_SLACK_MS)
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
                            for ((counter, n), total) in deltas.into_iter().zip(totals) {
                                let Some(slot) = counts.slots.get_mut(&counter) else {
                                    continue;
                                };
                                slot.total = total;
                                slot.unflushed = slot.unflushed.saturating_sub(n);
                                // Counted while this flush was on its way.
                                if slot.unflushed > 0 {
                                    counts.dirty.push(counter);
                                }
                            }
                        }
                        // Redis away: the counts stay unflushed and go with the next.
                        None => counts
                            .dirty
                            .extend(deltas.into_iter().map(|(counter, _)| counter)),
                    }
                }
            }
            shared.flushing.store(false, Ordering::Release);
        });
    }
}

/// `customer.moves` and the like: the quota's name in problems and metrics.
fn quota_name(role: Role, what: &str) -> String {
    format!("{}.{what}", role.as_str())
}

impl RateLimiter {
    pub fn new(limits: RateLimits, quotas: RoleQuotas, redis_prefix: &str) -> Self {
        Self {
            minute: Meter::new(limits.window, redis_prefix),
            second: Meter::new(BURST_WINDOW, redis_prefix),
            limits,
            quotas,
        }
    }

    /// Counts one request of `caller` (if authenticated) from `ip` that
    /// spends `spend`; refuses it with `429` if any quota it is charged to
    /// is spent in the current window.
    pub fn check(
        &self,
        link: &Arc<Link>,
        caller: Option<(Uuid, Role)>,
        ip: &str,
        spend: Spend,
    ) -> Result<(), ApiError> {
        let quota = caller.and_then(|(_, role)| self.quotas.get(role));
        // A role that moves no money only reads.
        let spend = match quota {
            Some(q) if q.moves.is_none() => Spend::Read,
            _ => spend,
        };
        // The burst first: a request it refuses spends no minute budget.
        if let (Some((user, role)), Some(q)) = (caller, quota)
            && let Some(moves) = q.moves
            && spend != Spend::Read
        {
            let name = quota_name(role, "moves");
            let charge = Charge {
                counter: format!("{name}:{user}"),
                n: 1,
                limit: moves.per_second,
                admitted_only: true,
            };
            if let Some(over) = self.second.charge(link, &[charge]) {
                return Err(quota_exceeded(name, over.left));
            }
        }
        let mut charges = Vec::with_capacity(3);
        if let Some((user, _)) = caller {
            charges.push(Charge {
                counter: format!("user:{user}"),
                n: 1,
                limit: self.limits.per_user,
                admitted_only: false,
            });
        }
        charges.push(Charge {
            counter: format!("ip:{ip}"),
            n: 1,
            limit: self.limits.per_ip,
            admitted_only: false,
        });
        let mut role_quota = None;
        if let (Some((user, role)), Some(q)) = (caller, quota) {
            let budget = match (spend, q.moves) {
                (Spend::Read, _) => Some(("reads", q.reads_per_minute)),
                (Spend::Move, Some(m)) => Some(("moves", m.per_minute)),
                // Charged by its lines, once they are read.
                _ => None,
            };
            if let Some((what, limit)) = budget {
                let name = quota_name(role, what);
                charges.push(Charge {
                    counter: format!("{name}:{user}"),
                    n: 1,
                    limit,
                    admitted_only: true,
                });
                role_quota = Some(name);
            }
        }
        let Some(over) = self.minute.charge(link, &charges) else {
            return Ok(());
        };
        Err(match (over.index, role_quota) {
            (i, Some(name)) if i == charges.len() - 1 => quota_exceeded(name, over.left),
            (0, _) if caller.is_some() => limited(LimitScope::User, over.left),
            _ => limited(LimitScope::Ip, over.left),
        })
    }

    /// Charges a batch upload's `lines` to the caller's money-moving budget
    /// per minute, all or nothing. A batch larger than the whole budget can
    /// never pass: `422` rather than a `429` that would never end.
    pub fn charge_lines(
        &self,
        link: &Arc<Link>,
        user: Uuid,
        role: Role,
        lines: u64,
    ) -> Result<(), ApiError> {
        let Some(moves) = self.quotas.get(role).and_then(|q| q.moves) else {
            return Ok(());
        };
        let name = quota_name(role, "moves");
        if moves.per_minute > 0 && lines > moves.per_minute {
            return Err(ApiError::field(
                "body",
                format!(
                    "the batch has {lines} payments, more than the {name} quota of {} a minute; split it",
                    moves.per_minute
                ),
            ));
        }
        let charge = Charge {
            counter: format!("{name}:{user}"),
            n: lines,
            limit: moves.per_minute,
            admitted_only: true,
        };
        match self.minute.charge(link, &[charge]) {
            Some(over) => Err(quota_exceeded(name, over.left)),
            None => Ok(()),
        }
    }
}

fn secs(left: Duration) -> u64 {
    left.as_millis().div_ceil(1000).max(1) as u64
}

fn limited(scope: LimitScope, left: Duration) -> ApiError {
    metrics::counter!("gateway_rate_limited_total", "scope" => scope.as_str()).increment(1);
    ApiError::RateLimited {
        scope,
        retry_after_secs: secs(left),
    }
}

fn quota_exceeded(quota: String, left: Duration) -> ApiError {
    metrics::counter!("gateway_rate_limited_total", "scope" => quota.clone()).increment(1);
    ApiError::QuotaExceeded {
        quota,
        retry_after_secs: secs(left),
    }
}
