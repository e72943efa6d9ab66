//! Login throttling: after repeated failed logins for one username, or from
//! one address, further attempts are refused for a while, doubling with each
//! further failure (see [`crate::config::LoginLockout`]). State lives in
//! Redis (shared by the replicas); times come from Redis' clock, so replicas
//! with skewed clocks agree.
//!
//! Usernames are keyed by their SHA-256: whatever was typed into the
//! username field (sometimes a password) is not stored in Redis. Unknown
//! usernames are throttled exactly like known ones, so lockouts reveal
//! nothing about which accounts exist. Anyone can lock a username out for a
//! while by failing on purpose; the back-off is capped so that costs the
//! owner minutes, while an attacker gets a handful of guesses per hour.
//!
//! Without Redis there is no throttling (fail open); the gateway's bound on
//! concurrent password checks still caps the guessing rate.

use sha2::{Digest, Sha256};

use crate::config::LoginLockout;
use crate::error::LimitScope;
use crate::redis_link::Link;

/// The longest lock in force among the keys: `{wait_ms, scope}` with scope
/// 1 = username, 2 = address, 0 = none.
const CHECK: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait, scope = 0, 0
for i, key in ipairs(KEYS) do
  local u = tonumber(redis.call('HGET', key, 'until') or '0')
  if u - now > wait then wait = u - now; scope = i end
end
return {wait, scope}
"#;

/// Counts a failure for each key; at the threshold and beyond, locks it for
/// base * 2^(failures - threshold), capped. ARGV: window ms, base ms, max ms,
/// then each key's threshold (0: never locks). Returns the longest new lock.
const FAIL: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window, base, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local wait, scope = 0, 0
for i, key in ipairs(KEYS) do
  local n = redis.call('HINCRBY', key, 'n', 1)
  local threshold = tonumber(ARGV[3 + i])
  local lock = 0
  if threshold > 0 and n >= threshold then
    local e = n - threshold
    if e > 40 then e = 40 end
    lock = math.min(base * 2 ^ e, cap)
    redis.call('HSET', key, 'until', now + lock)
  end
  redis.call('PEXPIRE', key, window + lock)
  if lock > wait then wait = lock; scope = i end
end
return {wait, scope}
"#;

/// A refusal: who is locked and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lock {
    pub scope: LimitScope,
    pub retry_after_secs: u64,
}

pub struct LoginGuard {
    config: LoginLockout,
    prefix: String,
    check: redis::Script,
    fail: redis::Script,
}

impl LoginGuard {
    pub fn new(config: LoginLockout, redis_prefix: &str) -> Self {
        Self {
            config,
            prefix: redis_prefix.to_owned(),
            check: redis::Script::new(CHECK),
            fail: redis::Script::new(FAIL),
        }
    }

    fn user_key(&self, username: &str) -> String {
        let digest = Sha256::digest(username.as_bytes());
        format!("{}:login:user:{}", self.prefix, hex::encode(digest))
    }

    fn ip_key(&self, ip: &str) -> String {
        format!("{}:login:ip:{ip}", self.prefix)
    }

    /// The lock in force for this username or address, if any.
    pub async fn locked(&self, link: &Link, username: &str, ip: &str) -> Option<Lock> {
        let mut call = self.check.prepare_invoke();
        call.key(self.user_key(username)).key(self.ip_key(ip));
        let (wait_ms, scope): (u64, u8) = link
            .run("login_lockout", |mut conn| async move {
                call.invoke_async(&mut conn).await
            })
            .await?;
        lock(wait_ms, scope)
    }

    /// Records a failed login; returns the lock it started, if it did.
    pub async fn failed(&self, link: &Link, username: &str, ip: &str) -> Option<Lock> {
        let c = &self.config;
        let mut call = self.fail.prepare_invoke();
        call.key(self.user_key(username))
            .key(self.ip_key(ip))
            .arg(c.window.as_millis() as u64)
            .arg(c.base.as_millis() as u64)
            .arg((c.max.as_millis() as u64).max(1))
            .arg(c.failures_max)
            .arg(c.ip_failures_max);
        let (wait_ms, scope): (u64, u8) = link
            .run("login_lockout", |mut conn| async move {
                call.invoke_async(&mut conn).await
            })
            .await?;
        lock(wait_ms, scope)
    }

    /// A successful login forgets the username's failures (not the
    /// address's: one good password must not unlock guessing at others).
    pub async fn succeeded(&self, link: &Link, username: &str) {
        let key = self.user_key(username);
        let _: Option<()> = link
            .run("login_lockout", |mut conn| async move {
                redis::cmd("DEL").arg(&key).query_async(&mut conn).await
            })
            .await;
    }
}

fn lock(wait_ms: u64, scope: u8) -> Option<Lock> {
    let scope = match scope {
        1 => LimitScope::Username,
        2 => LimitScope::Ip,
        _ => return None,
    };
    (wait_ms > 0).then(|| Lock {
        scope,
        retry_after_secs: wait_ms.div_ceil(1000).max(1),
    })
}
