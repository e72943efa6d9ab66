//! Pacing of the loops that wait for transfers and batches to finish.
//!
//! The truth always comes from polling the API. With `--ws`, the notifier's
//! WebSocket events only wake the loop early (its events are throttled and
//! may be missed across a reconnect; a poll never is), so the loop polls
//! rarely and still reacts at once.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Poll interval without a WebSocket.
const POLL: Duration = Duration::from_millis(500);
/// Poll interval when WebSocket events wake the loop.
const POLL_WITH_WS: Duration = Duration::from_secs(2);
/// Longest wait for the notifier's WebSocket before polling alone: events
/// only speed things up, so a slow notifier must not hold the command.
const WS_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Pacer {
    nudge: Arc<Notify>,
    interval: Duration,
    socket: Option<JoinHandle<()>>,
}

impl Pacer {
    /// Polls only.
    pub fn polling() -> Self {
        Self {
            nudge: Arc::new(Notify::new()),
            interval: POLL,
            socket: None,
        }
    }

    /// Also listens to the notifier at `ws` (falls back to polling alone if
    /// it cannot connect). The token goes in the query string because that
    /// is how the notifier takes it; the URL is therefore never printed.
    pub async fn with_websocket(ws: &str, token: &str) -> Self {
        let sep = if ws.contains('?') { '&' } else { '?' };
        let url = format!("{ws}{sep}access_token={token}");
        let connected =
            tokio::time::timeout(WS_CONNECT_TIMEOUT, tokio_tungstenite::connect_async(url)).await;
        let socket = match connected {
            Ok(Ok((socket, _))) => socket,
            _ => {
                crate::output::warn(&format!(
                    "bankctl: the WebSocket at {ws} is unavailable; polling instead"
                ));
                return Self::polling();
            }
        };
        let nudge = Arc::new(Notify::new());
        let wake = nudge.clone();
        let task = tokio::spawn(async move {
            let (_write, mut read) = socket.split();
            // Any event may concern what we wait for; the poll decides.
            while let Some(Ok(_)) = read.next().await {
                wake.notify_one();
            }
        });
        Self {
            nudge,
            interval: POLL_WITH_WS,
            socket: Some(task),
        }
    }

    /// Returns after the poll interval, or earlier when an event arrives.
    pub async fn tick(&self) {
        tokio::select! {
            () = tokio::time::sleep(self.interval) => {}
            () = self.nudge.notified() => {}
        }
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        if let Some(task) = self.socket.take() {
            task.abort();
        }
    }
}
