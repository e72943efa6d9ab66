//! The load generators: a closed loop (a fixed number of requests in
//! flight) and an open loop (a fixed rate, whatever the answers).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use shared::transfer::{IdempotencyKey, transfer_id};

use super::recorder::{Pending, Recorder, record};
use super::scenario::{Scenario, seeded_rng};
use super::session::UserAuth;
use crate::seed::World;

/// The open loop's pacer wakes at least this often to notice `stop`.
const PACER_MAX_NAP: Duration = Duration::from_millis(50);
/// How long the open loop waits for its last requests after stopping.
const INFLIGHT_DRAIN_MAX: Duration = Duration::from_secs(60);
/// How often it looks whether they are answered.
const INFLIGHT_POLL_INTERVAL: Duration = Duration::from_millis(5);

/// The longest a closed-loop worker honours a Retry-After (the window
/// is tens of seconds).
const RETRY_AFTER_MAX: Duration = Duration::from_secs(2);

/// What sends the transfers.
pub struct Driver {
    pub http: reqwest::Client,
    pub url: String,
    pub world: Arc<World>,
    pub users: Arc<Vec<UserAuth>>,
    pub pending: Arc<Pending>,
    pub rec: Arc<Recorder>,
    pub scenario: Scenario,
    pub tag: String,
    pub seq: AtomicU64,
    pub stop: AtomicBool,
    pub inflight: AtomicUsize,
}

impl Driver {
    /// Sends one transfer; on a shed answer (`503`/`429`), the wait its
    /// `Retry-After` asks for.
    async fn send_one(
        &self,
        from: usize,
        to: usize,
        t0: Instant,
        in_window: bool,
    ) -> Option<Duration> {
        let user = &self.users[self.world.owner_of[from]];
        let key = format!("{}-{}", self.tag, self.seq.fetch_add(1, Ordering::Relaxed));
        let Ok(k) = IdempotencyKey::parse(&key) else {
            return None;
        };
        let id = transfer_id(user.id, &k);
        self.pending.insert(id, (t0, in_window));
        if self.rec.in_window() {
            self.rec.sent.fetch_add(1, Ordering::Relaxed);
        }
        if in_window {
            record(&self.rec.lag, t0.elapsed());
        }
        let body = format!(
            r#"{{"from_account":"{}","to_account":"{}","amount":"1.00","currency":"EUR"}}"#,
            self.world.accounts[from], self.world.accounts[to]
        );
        let sent = Instant::now();
        let result = self
            .http
            .post(&self.url)
            .header(AUTHORIZATION, user.bearer.clone())
            .header("idempotency-key", key)
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        match result {
            Ok(r) if r.status().as_u16() == 202 => {
                let _ = r.bytes().await;
                if in_window {
                    record(&self.rec.http, t0.elapsed());
                }
                if self.rec.in_window() {
                    self.rec.accepted.fetch_add(1, Ordering::Relaxed);
                }
                None
            }
            Ok(r) => {
                self.pending.remove(&id);
                let status = r.status().as_u16();
                let retry_after = r
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()?.parse().ok())
                    .map(Duration::from_secs);
                // Shed by back-pressure or a quota: how fast, and whether
                // the client is told when to come back.
                if (status == 503 || status == 429) && self.rec.in_window() {
                    self.rec.shed.fetch_add(1, Ordering::Relaxed);
                    if !r.headers().contains_key(RETRY_AFTER) {
                        self.rec
                            .shed_without_retry_after
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
                if (status == 503 || status == 429) && in_window {
                    record(&self.rec.shed_ms, t0.elapsed());
                    record(&self.rec.shed_sent_ms, sent.elapsed());
                }
                let text = r.text().await.unwrap_or_default();
                let slug = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| {
                        v["type"]
                            .as_str()
                            .map(|t| t.rsplit('/').next().unwrap_or(t).to_owned())
                    })
                    .unwrap_or_default();
                self.rec.error(format!("HTTP {status} {slug}"));
                retry_after.filter(|_| status == 503 || status == 429)
            }
            Err(e) => {
                self.pending.remove(&id);
                let kind = if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connect"
                } else {
                    "transport"
                };
                self.rec.error(format!("HTTP {kind} error"));
                None
            }
        }
    }

    /// `concurrency` requests in flight, each sent as soon as the previous
    /// one was answered — or, after a shed answer, once its `Retry-After`
    /// has passed, as a well-behaved client does (a closed loop that
    /// retried at once would measure a storm of 503s, not the pipeline).
    pub async fn closed_loop(self: Arc<Self>, concurrency: usize) {
        let mut tasks = Vec::new();
        for c in 0..concurrency {
            let me = self.clone();
            tasks.push(tokio::spawn(async move {
                let mut rng = seeded_rng(c as u64 * 104_729 + 17);
                while !me.stop.load(Ordering::Relaxed) {
                    let (from, to) = me.scenario.pick(&mut rng, me.world.accounts.len());
                    if let Some(wait) = me
                        .send_one(from, to, Instant::now(), me.rec.in_window())
                        .await
                    {
                        tokio::time::sleep(wait.min(RETRY_AFTER_MAX)).await;
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    }

    /// Requests at a fixed rate whatever the answers (no coordinated
    /// omission: latency counts from the intended send time); at most
    /// `max_inflight` outstanding, beyond which sends are dropped (counted).
    ///
    /// The pacing runs on an OS thread sleeping with nanosleep precision:
    /// tokio's timer has millisecond granularity, which alone added ~1-2 ms
    /// of generator lag to every latency at low rates.
    pub async fn open_loop(self: Arc<Self>, rate: f64, max_inflight: usize) {
        let handle = tokio::runtime::Handle::current();
        let me = self.clone();
        let pacer = std::thread::spawn(move || {
            let started = Instant::now();
            let mut rng = seeded_rng(0x0be11);
            let mut sent = 0u64;
            while !me.stop.load(Ordering::Relaxed) {
                let intended = started + Duration::from_secs_f64(sent as f64 / rate);
                let now = Instant::now();
                if intended > now {
                    let nap = (intended - now).min(PACER_MAX_NAP);
                    std::thread::sleep(nap);
                    if Instant::now() < intended {
                        continue;
                    }
                }
                sent += 1;
                if me.inflight.load(Ordering::Relaxed) >= max_inflight {
                    if me.rec.in_window() {
                        me.rec.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    continue;
                }
                let (from, to) = me.scenario.pick(&mut rng, me.world.accounts.len());
                let d = me.clone();
                d.inflight.fetch_add(1, Ordering::Relaxed);
                let in_window = d.rec.in_window();
                handle.spawn(async move {
                    // The open loop ignores Retry-After: that is the overload.
                    let _ = d.send_one(from, to, intended, in_window).await;
                    d.inflight.fetch_sub(1, Ordering::Relaxed);
                });
            }
        });
        let _ = tokio::task::spawn_blocking(move || pacer.join()).await;
        let deadline = Instant::now() + INFLIGHT_DRAIN_MAX;
        while self.inflight.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            tokio::time::sleep(INFLIGHT_POLL_INTERVAL).await;
        }
    }
}
