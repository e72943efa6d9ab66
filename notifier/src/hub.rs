//! Who is connected, and fan-out of one user's events to their connections.
//!
//! Each connection has a bounded queue. A connection whose queue is full is
//! dropped from the hub (its socket task then closes it, asking the client to
//! reconnect with `since`): the server's memory stays bounded whatever a
//! client does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use uuid::Uuid;

/// What a connection is sent.
#[derive(Debug, Clone)]
pub enum Push {
    /// A user event: `text` is the full JSON message.
    Event {
        epoch: Arc<str>,
        seq: u64,
        text: Arc<str>,
        /// The transfer's trace, continued by the push.
        traceparent: Option<Arc<str>>,
    },
    /// Events may have been missed: the client must refetch.
    Resync,
}

/// Open connections per user: (connection id, its queue).
type Connections = HashMap<Uuid, Vec<(u64, mpsc::Sender<Push>)>>;

#[derive(Default)]
pub struct Hub {
    next_id: AtomicU64,
    users: Mutex<Connections>,
    /// Whether the events subscription is live: an event relayed now
    /// reaches this notifier. Sockets are refused while it is not.
    subscribed: AtomicBool,
}

impl Hub {
    pub fn register(&self, user: Uuid, queue: usize) -> (u64, mpsc::Receiver<Push>) {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().entry(user).or_default().push((id, tx));
        metrics::gauge!("notifier_ws_connections").increment(1.0);
        (id, rx)
    }

    pub fn unregister(&self, user: Uuid, id: u64) {
        let mut users = self.lock();
        if let Some(conns) = users.get_mut(&user) {
            let before = conns.len();
            conns.retain(|(c, _)| *c != id);
            if conns.len() < before {
                metrics::gauge!("notifier_ws_connections").decrement(1.0);
            }
            if conns.is_empty() {
                users.remove(&user);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connections> {
        self.users.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `push` for every connection of `user`; drops the slow ones.
    pub fn send(&self, user: Uuid, push: Push) {
        let mut users = self.lock();
        let Some(conns) = users.get_mut(&user) else {
            return;
        };
        conns.retain(|(_, tx)| match tx.try_send(push.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("notifier_slow_clients_dropped_total").increment(1);
                metrics::gauge!("notifier_ws_connections").decrement(1.0);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                metrics::gauge!("notifier_ws_connections").decrement(1.0);
                false
            }
        });
        if conns.is_empty() {
            users.remove(&user);
        }
    }

    /// Tells every connection to resync (we may have missed events).
    pub fn resync_all(&self) {
        let users: Vec<Uuid> = self.lock().keys().copied().collect();
        for user in users {
            self.send(user, Push::Resync);
        }
    }

    pub fn set_subscribed(&self, live: bool) {
        self.subscribed.store(live, Ordering::Release);
    }

    pub fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
    }

    pub fn connections(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }
}
