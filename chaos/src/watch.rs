//! One WebSocket client per user, as the web page behaves: it reconnects
//! with backoff and resumes with `since`; what it saw is kept for the check.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use shared::backoff::Backoff;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::workload::Load;

/// Reconnect back-off, as the web page's: the first pause (also the pause
/// after a connection that worked and then closed), and the longest.
const RECONNECT_BACKOFF_INITIAL: Duration = Duration::from_millis(100);
const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How long a read waits before looking at the stop flag again.
const STOP_CHECK_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Default)]
pub struct Seen {
    /// Transfers each user saw committed.
    pub committed: Mutex<HashMap<usize, HashSet<Uuid>>>,
    /// Holds each user saw in a final state (`hold.updated`).
    pub holds_final: Mutex<HashMap<usize, HashSet<Uuid>>>,
    /// Time of each user's last `resync` (everything committed before it
    /// counts as delivered: the page reloads its state).
    pub resyncs: Mutex<HashMap<usize, chrono::DateTime<chrono::Utc>>>,
    pub resync_count: AtomicU64,
    pub connects: AtomicU64,
    pub events: AtomicU64,
    pub stop: AtomicBool,
}

pub async fn watch(load: Arc<Load>, seen: Arc<Seen>, ws_url: String, user: usize) {
    let mut since: Option<String> = None;
    let mut backoff = Backoff::new(RECONNECT_BACKOFF_INITIAL, RECONNECT_BACKOFF_MAX);
    while !seen.stop.load(Ordering::Relaxed) {
        let mut url = format!("{ws_url}?access_token={}", load.token(user));
        if let Some(s) = &since {
            url.push_str(&format!("&since={s}"));
        }
        let socket = match tokio_tungstenite::connect_async(url).await {
            Ok((socket, _)) => socket,
            Err(e) => {
                if let tokio_tungstenite::tungstenite::Error::Http(r) = &e
                    && r.status() == 401
                {
                    let _ = load.login(user).await;
                }
                backoff.wait().await;
                continue;
            }
        };
        seen.connects.fetch_add(1, Ordering::Relaxed);
        backoff.reset();
        let (mut tx, mut rx) = socket.split();
        loop {
            let next = tokio::time::timeout(STOP_CHECK_INTERVAL, rx.next()).await;
            if seen.stop.load(Ordering::Relaxed) {
                let _ = tx.close().await;
                return;
            }
            let msg = match next {
                Err(_) => continue,
                Ok(None) | Ok(Some(Err(_))) => break,
                Ok(Some(Ok(m))) => m,
            };
            let text = match msg {
                Message::Text(t) => t,
                Message::Ping(p) => {
                    let _ = tx.send(Message::Pong(p)).await;
                    continue;
                }
                Message::Close(_) => break,
                _ => continue,
            };
            let Ok(v) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            seen.events.fetch_add(1, Ordering::Relaxed);
            if let Some(id) = v["id"].as_str() {
                since = Some(id.to_owned());
            }
            match v["type"].as_str() {
                Some("resync") => {
                    seen.resync_count.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut r) = seen.resyncs.lock() {
                        r.insert(user, chrono::Utc::now());
                    }
                }
                Some("transfer.updated") if v["transfer"]["status"] == "committed" => {
                    if let Some(id) = v["transfer"]["id"]
                        .as_str()
                        .and_then(|s| Uuid::parse_str(s).ok())
                        && let Ok(mut c) = seen.committed.lock()
                    {
                        c.entry(user).or_default().insert(id);
                    }
                }
                Some("hold.updated")
                    if !matches!(
                        v["hold"]["status"].as_str(),
                        None | Some("requested" | "pending")
                    ) =>
                {
                    if let Some(id) = v["hold"]["id"]
                        .as_str()
                        .and_then(|s| Uuid::parse_str(s).ok())
                        && let Ok(mut h) = seen.holds_final.lock()
                    {
                        h.entry(user).or_default().insert(id);
                    }
                }
                _ => {}
            }
        }
        // The connection worked and closed: the back-off was reset on
        // connect, so this is its first pause.
        tokio::time::sleep(RECONNECT_BACKOFF_INITIAL).await;
    }
}
