//! The careful client every workload uses: one logical request is resent
//! (same Idempotency-Key, same body) until it gets a definitive answer, as
//! a well-behaved client of the bank would; tokens are renewed on 401.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
use shared::backoff::Backoff;

use crate::workload::Load;

/// Login retries while the gateway is down (a restart takes seconds), and
/// the pause between them: together a minute.
const LOGIN_ATTEMPTS: usize = 300;
const LOGIN_RETRY_INTERVAL: Duration = Duration::from_millis(200);
/// Resend back-off: the first pause, and the longest (a careful client
/// retries within a second or so once the bank is back).
const RESEND_BACKOFF_INITIAL: Duration = Duration::from_millis(50);
const RESEND_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// The longest `Retry-After` honoured: the checker's outages are short, and
/// a client that waits longer only slows the drain down.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(2);

/// The definitive answer to one logical request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// 200..=202 and its JSON body.
    Accepted(Value),
    /// A 4xx other than 401/408/409/429 (those are resent).
    Refused(u16),
    /// Still no definitive answer when the resend deadline passed.
    Unanswered,
}

impl Load {
    pub fn token(&self, user: usize) -> String {
        self.tokens
            .read()
            .map(|t| t.get(user).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Logs `user` in (again), retrying while the gateway is unavailable.
    /// `user` may be [`Load::reverser_index`], the reverser.
    pub async fn login(&self, user: usize) -> anyhow::Result<()> {
        let (name, password) = self.credentials(user);
        for _ in 0..LOGIN_ATTEMPTS {
            if let Ok(login) = testkit::login(&self.http, &self.api, &name, &password).await {
                if let Ok(mut tokens) = self.tokens.write()
                    && let Some(t) = tokens.get_mut(user)
                {
                    *t = login.access_token;
                }
                return Ok(());
            }
            tokio::time::sleep(LOGIN_RETRY_INTERVAL).await;
        }
        anyhow::bail!("cannot log in as {name}")
    }

    pub fn past_deadline(&self) -> bool {
        self.deadline
            .lock()
            .ok()
            .and_then(|d| *d)
            .is_some_and(|d| Instant::now() > d)
    }

    /// POSTs `body` to `path` as `user` with `key` until a definitive
    /// answer (or the resend deadline).
    pub async fn post(&self, user: usize, path: &str, key: &str, body: &Value) -> Answer {
        let mut backoff = Backoff::new(RESEND_BACKOFF_INITIAL, RESEND_BACKOFF_MAX);
        loop {
            self.counts.attempts.fetch_add(1, Ordering::Relaxed);
            let sent = self
                .http
                .post(format!("{}{path}", self.api))
                .bearer_auth(self.token(user))
                .header("idempotency-key", key)
                .json(body)
                .send()
                .await;
            let retry_after = match sent {
                Err(e) => {
                    self.counts.transient(if e.is_connect() {
                        "connection refused"
                    } else if e.is_timeout() {
                        "timeout"
                    } else {
                        "connection lost"
                    });
                    None
                }
                Ok(r) => {
                    let status = r.status().as_u16();
                    let retry_after = r
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    let v: Value = r.json().await.unwrap_or(Value::Null);
                    match status {
                        200..=202 => {
                            self.counts.accepted.fetch_add(1, Ordering::Relaxed);
                            return Answer::Accepted(v);
                        }
                        401 => {
                            self.counts.transient("401 (token renewed)");
                            let _ = self.login(user).await;
                            None
                        }
                        408 | 409 | 429 => {
                            self.counts.transient(&status.to_string());
                            retry_after
                        }
                        400..=499 => {
                            self.counts.refused.fetch_add(1, Ordering::Relaxed);
                            return Answer::Refused(status);
                        }
                        _ => {
                            self.counts.transient(&status.to_string());
                            retry_after
                        }
                    }
                }
            };
            if self.past_deadline() {
                return Answer::Unanswered;
            }
            // The back-off grows on every resend, also when the server's
            // Retry-After decides this one wait.
            let delay = backoff.next_delay();
            let wait = retry_after
                .map(|s| Duration::from_secs(s).min(RETRY_AFTER_MAX))
                .unwrap_or(delay);
            tokio::time::sleep(wait).await;
        }
    }

    /// One GET as `user`: the status and JSON body, `None` on a transport
    /// error or an answer that is not JSON (the caller polls again). Reads
    /// are not counted as requests of the workload.
    pub async fn get(&self, user: usize, path: &str) -> Option<(u16, Value)> {
        let r = self
            .http
            .request(Method::GET, format!("{}{path}", self.api))
            .bearer_auth(self.token(user))
            .send()
            .await
            .ok()?;
        let status = r.status().as_u16();
        if status == 401 {
            let _ = self.login(user).await;
            return None;
        }
        let v: Value = r.json().await.ok()?;
        Some((status, v))
    }
}
