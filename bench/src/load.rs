//! Driving the real API: logins, one WebSocket per bench user (commit events
//! close each transfer's end-to-end latency), closed-loop and open-loop
//! generators, and the measurement window (CPU, memory, per-stage metrics).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::{Deserialize, Serialize};
use shared::transfer::{IdempotencyKey, transfer_id};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::procfs;
use crate::prom::{self, Scrape, StageStats};
use crate::seed::World;
use crate::services::Service;

pub const HOT_ACCOUNTS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Random pairs among all accounts.
    Uniform,
    /// Random pairs among the first ten accounts.
    Hot,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Uniform => "uniform",
            Scenario::Hot => "hot",
        }
    }

    pub fn pick(self, rng: &mut Rng, accounts: usize) -> (usize, usize) {
        let n = match self {
            Scenario::Uniform => accounts,
            Scenario::Hot => HOT_ACCOUNTS.min(accounts),
        };
        let from = rng.below(n);
        let mut to = rng.below(n - 1);
        if to >= from {
            to += 1;
        }
        (from, to)
    }
}

/// splitmix64: tiny, fast, `Send`.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

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

fn new_hist() -> Mutex<Histogram<u64>> {
    Mutex::new(Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds"))
}

fn record(h: &Mutex<Histogram<u64>>, d: Duration) {
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
    fn new() -> Self {
        Self {
            shards: (0..64).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
    fn shard(&self, id: &Uuid) -> &Mutex<HashMap<Uuid, (Instant, bool)>> {
        &self.shards[id.as_bytes()[15] as usize % self.shards.len()]
    }
    fn insert(&self, id: Uuid, v: (Instant, bool)) {
        if let Ok(mut m) = self.shard(&id).lock() {
            m.insert(id, v);
        }
    }
    fn remove(&self, id: &Uuid) -> Option<(Instant, bool)> {
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
    fn new() -> Self {
        Self {
            window: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            committed_ws: AtomicU64::new(0),
            rejected_ws: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
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
    fn error(&self, what: String) {
        if let Ok(mut e) = self.errors.lock() {
            *e.entry(what).or_default() += 1;
        }
    }
    fn in_window(&self) -> bool {
        self.window.load(Ordering::Relaxed)
    }
}

pub struct UserAuth {
    pub id: Uuid,
    pub token: String,
    pub bearer: HeaderValue,
}

pub async fn login(
    http: &reqwest::Client,
    gateway: &str,
    world: &World,
) -> anyhow::Result<Vec<UserAuth>> {
    let mut out = Vec::new();
    for u in &world.users {
        let r = http
            .post(format!("http://{gateway}/v1/auth/login"))
            .json(&serde_json::json!({"username": u.name, "password": world.password}))
            .send()
            .await
            .context("login request")?;
        anyhow::ensure!(
            r.status().is_success(),
            "login as {}: HTTP {}",
            u.name,
            r.status()
        );
        let body: serde_json::Value = r.json().await?;
        let token = body["access_token"]
            .as_str()
            .context("access_token")?
            .to_owned();
        out.push(UserAuth {
            id: u.id,
            bearer: HeaderValue::from_str(&format!("Bearer {token}"))?,
            token,
        });
    }
    Ok(out)
}

/// Tokens live 15 minutes: log in once and again only after 10. Each login
/// is an argon2id check (12 MiB in the gateway); logging in before every
/// run would measure the login path's memory, not the transfer path's.
static TOKENS: Mutex<Option<(Instant, Arc<Vec<UserAuth>>)>> = Mutex::new(None);

async fn tokens(
    http: &reqwest::Client,
    gateway: &str,
    world: &World,
) -> anyhow::Result<Arc<Vec<UserAuth>>> {
    if let Ok(cached) = TOKENS.lock()
        && let Some((at, users)) = cached.as_ref()
        && at.elapsed() < Duration::from_secs(600)
    {
        return Ok(users.clone());
    }
    let users = Arc::new(login(http, gateway, world).await?);
    if let Ok(mut cached) = TOKENS.lock() {
        *cached = Some((Instant::now(), users.clone()));
    }
    Ok(users)
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    transfer: Option<EventTransfer>,
}

#[derive(Deserialize)]
struct EventTransfer {
    id: Uuid,
    status: String,
    created_at: DateTime<Utc>,
    #[serde(default)]
    processed_at: Option<DateTime<Utc>>,
}

fn on_event(text: &str, pending: &Pending, rec: &Recorder, last: &mut Option<String>) -> bool {
    let Ok(ev) = serde_json::from_str::<Event>(text) else {
        return false;
    };
    match ev.kind.as_str() {
        "ready" => return true,
        "resync" => {
            rec.ws_resyncs.fetch_add(1, Ordering::Relaxed);
        }
        "transfer.updated" => {
            if let Some(t) = ev.transfer
                && t.status != "pending"
                && let Some((sent, in_window)) = pending.remove(&t.id)
            {
                let now = Instant::now();
                let committed = t.status == "committed";
                if rec.in_window() {
                    if committed {
                        rec.committed_ws.fetch_add(1, Ordering::Relaxed);
                    } else {
                        rec.rejected_ws.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if in_window && committed {
                    record(&rec.e2e, now - sent);
                    if let Some(p) = t.processed_at {
                        record(
                            &rec.accept_to_apply,
                            (p - t.created_at).to_std().unwrap_or_default(),
                        );
                        record(
                            &rec.apply_to_ws,
                            (Utc::now() - p).to_std().unwrap_or_default(),
                        );
                    }
                }
            }
        }
        _ => {}
    }
    if let Some(id) = ev.id {
        *last = Some(id);
    }
    false
}

/// One user's socket: reads events until stopped, reconnecting with `since`
/// if the server closes it (counted).
async fn ws_reader(
    url: String,
    pending: Arc<Pending>,
    rec: Arc<Recorder>,
    mut stop: watch::Receiver<bool>,
    ready: tokio::sync::mpsc::Sender<()>,
) {
    let mut last: Option<String> = None;
    let mut ready = Some(ready);
    loop {
        let full = match &last {
            Some(s) => format!("{url}&since={s}"),
            None => url.clone(),
        };
        let mut ws = match tokio_tungstenite::connect_async(full).await {
            Ok((ws, _)) => ws,
            Err(e) => {
                rec.error(format!("ws connect: {e}"));
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
                }
            }
        };
        loop {
            tokio::select! {
                _ = stop.changed() => {
                    let _ = ws.close(None).await;
                    return;
                }
                msg = ws.next() => match msg {
                    Some(Ok(Message::Text(t))) => {
                        if on_event(t.as_str(), &pending, &rec, &mut last)
                            && let Some(r) = ready.take()
                        {
                            let _ = r.send(()).await;
                        }
                    }
                    Some(Ok(Message::Ping(p))) => { let _ = ws.send(Message::Pong(p)).await; }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                }
            }
        }
        if *stop.borrow() {
            return;
        }
        rec.ws_reconnects.fetch_add(1, Ordering::Relaxed);
    }
}

/// One run's clients: logged-in users, their sockets, the pending map.
pub struct Session {
    pub users: Arc<Vec<UserAuth>>,
    pub pending: Arc<Pending>,
    pub rec: Arc<Recorder>,
    stop: watch::Sender<bool>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Session {
    pub async fn open(
        http: &reqwest::Client,
        gateway: &str,
        notifier: &str,
        world: &World,
    ) -> anyhow::Result<Self> {
        let users = tokens(http, gateway, world).await?;
        let pending = Arc::new(Pending::new());
        let rec = Arc::new(Recorder::new());
        let (stop, stop_rx) = watch::channel(false);
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(users.len().max(1));
        let readers = users
            .iter()
            .map(|u| {
                tokio::spawn(ws_reader(
                    format!("ws://{notifier}/v1/ws?access_token={}", u.token),
                    pending.clone(),
                    rec.clone(),
                    stop_rx.clone(),
                    ready_tx.clone(),
                ))
            })
            .collect();
        drop(ready_tx);
        let session = Self {
            users,
            pending,
            rec,
            stop,
            readers,
        };
        for _ in 0..session.users.len() {
            tokio::time::timeout(Duration::from_secs(15), ready_rx.recv())
                .await
                .context("WebSocket not ready within 15 s")?
                .context("WebSocket reader stopped")?;
        }
        Ok(session)
    }

    /// Waits until every sent transfer was seen final (or no progress for
    /// `stall`); returns how many are still unconfirmed.
    pub async fn drain(&self, stall: Duration, cap: Duration) -> usize {
        let started = Instant::now();
        let mut last = (usize::MAX, Instant::now());
        loop {
            let n = self.pending.len();
            if n == 0 || started.elapsed() > cap {
                return n;
            }
            if n < last.0 {
                last = (n, Instant::now());
            } else if last.1.elapsed() > stall {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn close(self) {
        let _ = self.stop.send(true);
        for r in self.readers {
            let _ = tokio::time::timeout(Duration::from_secs(5), r).await;
        }
    }
}

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
    async fn send_one(&self, from: usize, to: usize, t0: Instant, in_window: bool) {
        let user = &self.users[self.world.owner_of[from]];
        let key = format!("{}-{}", self.tag, self.seq.fetch_add(1, Ordering::Relaxed));
        let Ok(k) = IdempotencyKey::parse(&key) else {
            return;
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
            }
            Ok(r) => {
                self.pending.remove(&id);
                let status = r.status().as_u16();
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
            }
        }
    }

    /// `concurrency` requests in flight, each sent as soon as the previous
    /// one was answered.
    pub async fn closed_loop(self: Arc<Self>, concurrency: usize) {
        let mut tasks = Vec::new();
        for c in 0..concurrency {
            let me = self.clone();
            tasks.push(tokio::spawn(async move {
                let mut rng = Rng::new(c as u64 * 104_729 + 17);
                while !me.stop.load(Ordering::Relaxed) {
                    let (from, to) = me.scenario.pick(&mut rng, me.world.accounts.len());
                    me.send_one(from, to, Instant::now(), me.rec.in_window())
                        .await;
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
            let mut rng = Rng::new(0x0be11);
            let mut sent = 0u64;
            while !me.stop.load(Ordering::Relaxed) {
                let intended = started + Duration::from_secs_f64(sent as f64 / rate);
                let now = Instant::now();
                if intended > now {
                    // Wake at least every 50 ms to notice `stop`.
                    let nap = (intended - now).min(Duration::from_millis(50));
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
                    d.send_one(from, to, intended, in_window).await;
                    d.inflight.fetch_sub(1, Ordering::Relaxed);
                });
            }
        });
        let _ = tokio::task::spawn_blocking(move || pacer.join()).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.inflight.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// CPU seconds per component, now.
pub fn cpu_now(services: &[Service]) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for s in services {
        m.insert(s.name.to_owned(), procfs::cpu_seconds(s.pid).unwrap_or(0.0));
    }
    m.insert("postgres".into(), procfs::cpu_by_comm("postgres"));
    m.insert("nats-server".into(), procfs::cpu_by_comm("nats-server"));
    m.insert("redis-server".into(), procfs::cpu_by_comm("redis-server"));
    m.insert("bench (load generator)".into(), procfs::self_cpu_seconds());
    m
}

pub async fn scrape_all(
    http: &reqwest::Client,
    services: &[Service],
) -> BTreeMap<&'static str, Scrape> {
    let mut out = BTreeMap::new();
    for s in services {
        let text = match http.get(format!("http://{}/metrics", s.addr)).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        out.insert(s.name, prom::parse(&text));
    }
    out
}

/// Per-stage figures from the services' own histograms over the window.
pub fn stages(
    before: &BTreeMap<&str, Scrape>,
    after: &BTreeMap<&str, Scrape>,
) -> BTreeMap<String, StageStats> {
    let mut out = BTreeMap::new();
    let wanted: [(&str, &str, &str, &[&str], f64); 6] = [
        (
            "gateway: POST /v1/transfers handler (ms)",
            "gateway",
            "http_server_request_duration_seconds",
            &["/v1/transfers\"", "POST"],
            1000.0,
        ),
        (
            "gateway: JetStream publish ack (ms)",
            "gateway",
            "gateway_publish_ack_seconds",
            &[],
            1000.0,
        ),
        (
            "processor: batch size (transfers)",
            "processor",
            "processor_batch_size",
            &[],
            1.0,
        ),
        (
            "processor: apply_batch (ms)",
            "processor",
            "processor_apply_seconds",
            &[],
            1000.0,
        ),
        (
            "processor: whole batch incl. results+acks (ms)",
            "processor",
            "processor_batch_seconds",
            &[],
            1000.0,
        ),
        (
            "notifier: (no latency histogram)",
            "notifier",
            "notifier_none",
            &[],
            1.0,
        ),
    ];
    for (label, svc, name, with, scale) in wanted {
        if let (Some(b), Some(a)) = (before.get(svc), after.get(svc))
            && let Some(d) = prom::delta(b, a, name, with)
        {
            out.insert(label.to_owned(), d.stats(scale));
        }
    }
    out
}
