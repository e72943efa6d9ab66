//! Revoked sessions: the deny-list every gateway and notifier replica
//! checks on each authenticated request and WebSocket.
//!
//! In Redis, written by whoever revokes: `<prefix>:revoked:sid:<sid>`
//! (logout) and `<prefix>:revoked-before:user:<id>` = unix ms (every
//! session started before: password change, user disabled), kept as long
//! as an access token lives, indexed in the sorted set
//! `<prefix>:revocations:index` (scored by expiry: read without scanning
//! the keyspace) and announced on the channel `<prefix>:revocations`.
//!
//! Each replica keeps a copy in memory, so a check costs no Redis round
//! trip: it subscribes first, then reads the index (nothing announced in
//! between is missed), re-reads it every [`RESYNC_EVERY`] (which also
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
/// Waits between attempts to follow Redis again (doubling up to the max).
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);
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

/// Every live revocation (encoded) scored by when it may be forgotten:
/// replicas read this instead of scanning the keyspace.
fn index(prefix: &str) -> String {
    format!("{prefix}:revocations:index")
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
    let now = now_ms();
    let index = index(prefix);
    pipe.cmd("ZADD")
        .arg(&index)
        .arg(now + keep_for().as_millis() as u64)
        .arg(r.encode())
        .ignore();
    pipe.cmd("ZREMRANGEBYSCORE")
        .arg(&index)
        .arg("-inf")
        .arg(now)
        .ignore();
    pipe.cmd("EXPIRE").arg(&index).arg(ttl).ignore();
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
        let live: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(index(&self.inner.prefix))
            .arg(now_ms())
            .arg("+inf")
            .query_async(conn)
            .await?;
        for r in live.iter().filter_map(|m| Revoked::decode(m)) {
            self.note(r);
        }
        Ok(())
    }
}

async fn follow(this: Revocations, redis_url: String, mut shutdown: Shutdown) {
    let mut backoff = Backoff::new(RETRY_MIN, RETRY_MAX);
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
        let client = crate::tls::redis_client(redis_url)?;
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
                        return Err((redis::ErrorKind::Io, "subscription lost").into());
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
    (redis::ErrorKind::Io, "Redis did not answer in time").into()
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
