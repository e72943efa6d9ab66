//! Revoked sessions: the deny-list every gateway and notifier replica
//! checks on each authenticated request and WebSocket.
//!
//! In Redis (shared by the replicas, written by whoever revokes):
//! `<prefix>:revoked:sid:<sid>` (a login session ended: logout) and
//! `<prefix>:revoked-before:user:<id>` = unix milliseconds (every session
//! of the user started before then: password change, user disabled), both
//! kept as long as an access token lives, and announced on the pub/sub
//! channel `<prefix>:revocations` so they apply at once.
//!
//! Each replica keeps a copy in memory, so a check costs no Redis round
//! trip: it subscribes first, then reads every key (nothing announced in
//! between is missed), re-reads them every [`RESYNC_EVERY`] (which also
//! proves Redis is there) and starts over after any error. While it is not
//! in sync, [`Revocations::is_live`] is false and callers fail closed for
//! what matters (the gateway refuses money-moving requests with `503`, the
//! notifier refuses new sockets); what it already knows keeps applying.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use redis::AsyncCommands;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::auth::{ACCESS_TOKEN_TTL, Claims};
use crate::backoff::Backoff;
use crate::shutdown::Shutdown;

/// How often the whole list is read again (and Redis proven reachable).
const RESYNC_EVERY: Duration = Duration::from_secs(2);
/// Longest wait for Redis per read before the copy counts as stale.
const REDIS_TIMEOUT: Duration = Duration::from_secs(1);
/// A revocation outlives the longest access token by this (clock skew).
const KEEP_SLACK: Duration = Duration::from_secs(60);
/// Revocations announced to open WebSockets that are not yet read.
const ANNOUNCE_QUEUE: usize = 1024;

/// What was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// One login session (the `sid` of its access tokens).
    Session(Uuid),
    /// Every session of a user started at or before `before_ms`.
    User { id: Uuid, before_ms: u64 },
}

impl Revoked {
    /// Whether this revocation ends a token of `user` in session `sid`.
    pub fn ends(&self, user: Uuid, sid: Uuid, started_ms: u64) -> bool {
        match *self {
            Self::Session(s) => s == sid,
            Self::User { id, before_ms } => id == user && started_ms <= before_ms,
        }
    }

    fn encode(&self) -> String {
        match self {
            Self::Session(sid) => format!("sid:{sid}"),
            Self::User { id, before_ms } => format!("user:{id}:{before_ms}"),
        }
    }

    fn decode(text: &str) -> Option<Self> {
        if let Some(sid) = text.strip_prefix("sid:") {
            return Uuid::parse_str(sid).ok().map(Self::Session);
        }
        let (id, before) = text.strip_prefix("user:")?.split_once(':')?;
        Some(Self::User {
            id: Uuid::parse_str(id).ok()?,
            before_ms: before.parse().ok()?,
        })
    }
}

/// When the session of `claims` started (unix ms): its `sid` is a UUIDv7
/// (the login's refresh-token family); a token without one counts from its
/// issue time.
pub fn session_started_ms(claims: &Claims) -> u64 {
    claims
        .sid
        .get_timestamp()
        .map(|t| {
            let (secs, nanos) = t.to_unix();
            secs * 1000 + u64::from(nanos) / 1_000_000
        })
        .unwrap_or(claims.iat * 1000)
}

fn channel(prefix: &str) -> String {
    format!("{prefix}:revocations")
}

fn key(prefix: &str, r: &Revoked) -> String {
    match r {
        Revoked::Session(sid) => format!("{prefix}:revoked:sid:{sid}"),
        Revoked::User { id, .. } => format!("{prefix}:revoked-before:user:{id}"),
    }
}

/// How long a revocation is kept: past it every token it could end has
/// expired.
pub fn keep_for() -> Duration {
    ACCESS_TOKEN_TTL + KEEP_SLACK
}

/// Records `r` in Redis and announces it to every replica. A user's
/// cut-off only ever moves forward.
pub async fn publish<C: redis::aio::ConnectionLike + Send + Sync>(
    conn: &mut C,
    prefix: &str,
    r: Revoked,
) -> redis::RedisResult<()> {
    let key = key(prefix, &r);
    let ttl = keep_for().as_secs();
    let value = match r {
        Revoked::Session(_) => 1,
        Revoked::User { before_ms, .. } => before_ms,
    };
    let mut pipe = redis::pipe();
    pipe.atomic();
    if let Revoked::User { before_ms, .. } = r {
        // Keep a later cut-off if another revocation raced this one.
        let current: Option<u64> = conn.get(&key).await?;
        if current.is_some_and(|c| c > before_ms) {
            return Ok(());
        }
    }
    pipe.cmd("SET")
        .arg(&key)
        .arg(value)
        .arg("EX")
        .arg(ttl)
        .ignore();
    pipe.cmd("PUBLISH")
        .arg(channel(prefix))
        .arg(r.encode())
        .ignore();
    pipe.query_async(conn).await
}

#[derive(Default)]
struct Known {
    /// Revoked session → unix ms when it may be forgotten.
    sessions: HashMap<Uuid, u64>,
    /// User → (cut-off, unix ms when it may be forgotten).
    users: HashMap<Uuid, (u64, u64)>,
}

/// This replica's copy of the deny-list, kept in sync with Redis.
#[derive(Clone)]
pub struct Revocations {
    inner: Arc<Inner>,
    /// Stops the follower when the last handle outside it is dropped.
    _stop: Option<Arc<crate::shutdown::Trigger>>,
}

struct Inner {
    prefix: String,
    known: Mutex<Known>,
    live: AtomicBool,
    announce: broadcast::Sender<Revoked>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Revocations {
    /// An empty copy that is not following Redis (not live): [`Self::start`]
    /// makes one that does.
    pub fn new(prefix: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                prefix: prefix.to_owned(),
                known: Mutex::new(Known::default()),
                live: AtomicBool::new(false),
                announce: broadcast::channel(ANNOUNCE_QUEUE).0,
            }),
            _stop: None,
        }
    }

    /// Follows Redis at `redis_url` until every handle is dropped.
    pub fn start(redis_url: &str, prefix: &str) -> Self {
        let follower = Self::new(prefix);
        let (trigger, shutdown) = crate::shutdown::channel();
        tokio::spawn(follow(follower.clone(), redis_url.to_owned(), shutdown));
        Self {
            _stop: Some(Arc::new(trigger)),
            ..follower
        }
    }

    /// Whether the copy is in sync with Redis (else new revocations may be
    /// unknown here).
    pub fn is_live(&self) -> bool {
        self.inner.live.load(Ordering::Acquire)
    }

    /// Waits up to `timeout` for the first sync (start-up).
    pub async fn wait_live(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.is_live() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.is_live()
    }

    /// Whether a token of `user` in session `sid` (started at `started_ms`)
    /// is revoked, as far as this replica knows.
    pub fn is_revoked(&self, user: Uuid, sid: Uuid, started_ms: u64) -> bool {
        let known = self.inner.known.lock().unwrap_or_else(|e| e.into_inner());
        known.sessions.contains_key(&sid)
            || known
                .users
                .get(&user)
                .is_some_and(|(before, _)| started_ms <= *before)
    }

    pub fn claims_revoked(&self, claims: &Claims) -> bool {
        self.is_revoked(claims.sub, claims.sid, session_started_ms(claims))
    }

    /// Applies `r` here (and to open sockets) at once, before any replica
    /// hears of it.
    pub fn note(&self, r: Revoked) {
        let forget_at = now_ms() + keep_for().as_millis() as u64;
        let fresh = {
            let mut known = self.inner.known.lock().unwrap_or_else(|e| e.into_inner());
            match r {
                Revoked::Session(sid) => known.sessions.insert(sid, forget_at).is_none(),
                Revoked::User { id, before_ms } => match known.users.get(&id) {
                    Some((b, _)) if *b >= before_ms => false,
                    _ => {
                        known.users.insert(id, (before_ms, forget_at));
                        true
                    }
                },
            }
        };
        if fresh {
            // No socket listening is fine.
            let _ = self.inner.announce.send(r);
        }
    }

    /// Revocations as they become known (for closing open sockets). On
    /// `Lagged`, check each socket with [`Self::is_revoked`].
    pub fn subscribe(&self) -> broadcast::Receiver<Revoked> {
        self.inner.announce.subscribe()
    }

    fn prune(&self) {
        let now = now_ms();
        let mut known = self.inner.known.lock().unwrap_or_else(|e| e.into_inner());
        known.sessions.retain(|_, at| *at > now);
        known.users.retain(|_, (_, at)| *at > now);
    }

    /// Reads every revocation in Redis.
    async fn read_all(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
    ) -> redis::RedisResult<()> {
        let prefix = &self.inner.prefix;
        for pattern in [
            format!("{prefix}:revoked:sid:*"),
            format!("{prefix}:revoked-before:user:*"),
        ] {
            let keys: Vec<String> = {
                let mut iter = conn.scan_match::<_, String>(&pattern).await?;
                let mut keys = Vec::new();
                while let Some(k) = iter.next().await {
                    keys.push(k?);
                }
                keys
            };
            for k in keys {
                let Some(rest) = k.rsplit(':').next() else {
                    continue;
                };
                let Ok(id) = Uuid::parse_str(rest) else {
                    continue;
                };
                if k.contains(":revoked:sid:") {
                    self.note(Revoked::Session(id));
                } else if let Some(before_ms) = conn.get::<_, Option<u64>>(&k).await? {
                    self.note(Revoked::User { id, before_ms });
                }
            }
        }
        Ok(())
    }
}

async fn follow(this: Revocations, redis_url: String, mut shutdown: Shutdown) {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    while !shutdown.is_triggered() {
        let error = tokio::select! {
            _ = shutdown.wait() => return,
            e = follow_once(&this, &redis_url) => e,
        };
        this.inner.live.store(false, Ordering::Release);
        tracing::warn!(%error, "revocation list not in sync with Redis; retrying");
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = backoff.wait() => {}
        }
    }
}

/// One subscription: returns why it ended.
async fn follow_once(this: &Revocations, redis_url: &str) -> String {
    let result: redis::RedisResult<()> = async {
        let client = redis::Client::open(redis_url)?;
        let mut pubsub = tokio::time::timeout(REDIS_TIMEOUT, client.get_async_pubsub())
            .await
            .map_err(timeout)??;
        pubsub.subscribe(channel(&this.inner.prefix)).await?;
        let mut conn = tokio::time::timeout(
            REDIS_TIMEOUT,
            client.get_multiplexed_async_connection(),
        )
        .await
        .map_err(timeout)??;
        let mut messages = pubsub.on_message();
        let mut resync = tokio::time::interval(RESYNC_EVERY);
        loop {
            tokio::select! {
                _ = resync.tick() => {
                    tokio::time::timeout(REDIS_TIMEOUT * 5, this.read_all(&mut conn))
                        .await
                        .map_err(timeout)??;
                    this.prune();
                    this.inner.live.store(true, Ordering::Release);
                }
                msg = messages.next() => {
                    let Some(msg) = msg else {
                        return Err(redis::RedisError::from((
                            redis::ErrorKind::Io,
                            "subscription lost",
                        )));
                    };
                    if let Some(r) = msg.get_payload::<String>().ok().as_deref().and_then(Revoked::decode) {
                        this.note(r);
                    }
                }
            }
        }
    }
    .await;
    match result {
        Ok(()) => "stopped".into(),
        Err(e) => e.to_string(),
    }
}

fn timeout(_: tokio::time::error::Elapsed) -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Io, "Redis did not answer in time"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_and_scope() {
        let (user, sid) = (Uuid::new_v4(), Uuid::now_v7());
        for r in [
            Revoked::Session(sid),
            Revoked::User {
                id: user,
                before_ms: 42,
            },
        ] {
            assert_eq!(Revoked::decode(&r.encode()), Some(r));
        }
        assert!(Revoked::Session(sid).ends(user, sid, 0));
        let cut = Revoked::User {
            id: user,
            before_ms: 100,
        };
        assert!(cut.ends(user, sid, 100));
        assert!(!cut.ends(user, sid, 101));
        assert!(!cut.ends(Uuid::new_v4(), sid, 1));
        let list = Revocations::new("t");
        list.note(cut);
        assert!(list.is_revoked(user, sid, 99));
        assert!(!list.is_revoked(user, sid, 101));
        assert!(!list.is_live());
    }
}
