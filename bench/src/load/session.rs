//! One run's clients: the bench users logged in once, one WebSocket each
//! whose commit events close each transfer's end-to-end latency.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use futures::{SinkExt, StreamExt};
use reqwest::header::HeaderValue;
use serde::Deserialize;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use super::recorder::{Pending, Recorder, record};
use crate::seed::World;

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
    let api = format!("http://{gateway}");
    for u in &world.users {
        let token = testkit::login(http, &api, &u.name, &world.password)
            .await
            .with_context(|| format!("login as {}", u.name))?
            .access_token;
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
const TOKEN_REUSE: Duration = Duration::from_secs(600);
/// After a failed connect, the pause before a socket tries again.
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);
/// How long each socket may take to say `ready` when a run opens.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How often `drain` looks at what is still unconfirmed.
const DRAIN_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How long a socket reader may take to close when a run ends.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

static TOKENS: Mutex<Option<(Instant, Arc<Vec<UserAuth>>)>> = Mutex::new(None);

async fn tokens(
    http: &reqwest::Client,
    gateway: &str,
    world: &World,
) -> anyhow::Result<Arc<Vec<UserAuth>>> {
    if let Ok(cached) = TOKENS.lock()
        && let Some((at, users)) = cached.as_ref()
        && at.elapsed() < TOKEN_REUSE
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
                    _ = tokio::time::sleep(RECONNECT_PAUSE) => continue,
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
            tokio::time::timeout(READY_TIMEOUT, ready_rx.recv())
                .await
                .with_context(|| {
                    format!("WebSocket not ready within {} s", READY_TIMEOUT.as_secs())
                })?
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
            tokio::time::sleep(DRAIN_POLL_INTERVAL).await;
        }
    }

    pub async fn close(self) {
        let _ = self.stop.send(true);
        for r in self.readers {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, r).await;
        }
    }
}
