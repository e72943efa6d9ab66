//! A notifier WebSocket as a test reads it: JSON messages, pings answered.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

pub struct Ws {
    pub(crate) socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Ws {
    /// The next JSON message, or `None` after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()??
                .ok()?;
            match msg {
                Message::Text(t) => return serde_json::from_str(&t).ok(),
                Message::Ping(p) => {
                    let _ = self.socket.send(Message::Pong(p)).await;
                }
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    /// Reads until `pred` matches a message (returning it) or `timeout`.
    pub async fn until(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let v = self.next(left).await?;
            if pred(&v) {
                return Some(v);
            }
        }
    }

    /// Reads until the server closes the socket: its close code and reason
    /// (`None` if it does not within `timeout` or ends without a frame).
    pub async fn closed_with(&mut self, timeout: Duration) -> Option<(u16, String)> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()??
                .ok()?;
            match msg {
                Message::Close(frame) => {
                    return frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                }
                Message::Ping(p) => {
                    let _ = self.socket.send(Message::Pong(p)).await;
                }
                _ => {}
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
