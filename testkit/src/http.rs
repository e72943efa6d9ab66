//! HTTP helpers every harness needs against a running service: waiting for
//! `/readyz` and logging in (feature `http`).
//!
//! Why here: the system tests, the bench and the bank checker each had their
//! own copies; they differed only in how long they wait and whether a dead
//! child process ends the wait early, which are parameters here.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

/// How often `/readyz` is asked: short against a test's wall time, long
/// against a service's start-up work.
const READY_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// How long a test waits for a service binary it started: a debug build on
/// a busy 2-core machine (migrations, NATS streams) can take this long.
pub const TEST_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How a wait for `/readyz` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// `/readyz` answered 2xx.
    Ready,
    /// `exited` said the process is gone.
    Exited,
    /// Neither within the timeout.
    TimedOut,
}

/// Asks `http://{addr}/readyz` until it answers 2xx, `exited()` returns true
/// (checked before every attempt: a crashed child ends the wait at once), or
/// `timeout` passes.
pub async fn await_ready(
    http: &reqwest::Client,
    addr: SocketAddr,
    timeout: Duration,
    mut exited: impl FnMut() -> bool,
) -> Readiness {
    let deadline = tokio::time::Instant::now() + timeout;
    let url = format!("http://{addr}/readyz");
    loop {
        if exited() {
            return Readiness::Exited;
        }
        if let Ok(r) = http.get(&url).send().await
            && r.status().is_success()
        {
            return Readiness::Ready;
        }
        if tokio::time::Instant::now() > deadline {
            return Readiness::TimedOut;
        }
        tokio::time::sleep(READY_POLL_INTERVAL).await;
    }
}

/// For tests: waits up to `timeout` for `addr` to be ready, or panics.
pub async fn wait_ready_within(http: &reqwest::Client, addr: SocketAddr, timeout: Duration) {
    let got = await_ready(http, addr, timeout, || false).await;
    assert_eq!(
        got,
        Readiness::Ready,
        "timed out after {timeout:?} waiting for http://{addr}/readyz"
    );
}

/// For tests: [`wait_ready_within`] [`TEST_READY_TIMEOUT`].
pub async fn wait_ready(http: &reqwest::Client, addr: SocketAddr) {
    wait_ready_within(http, addr, TEST_READY_TIMEOUT).await;
}

/// The password `admin::seed_demo` gives each demo user.
pub fn dev_password(user: &str) -> String {
    format!("{user}-dev-password")
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct Login {
    pub access_token: String,
    /// The whole token response (refresh token, expiry, …).
    pub body: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("login request failed: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("login answered HTTP {status}: {body}")]
    Status { status: StatusCode, body: String },
    #[error("login answered content-type {0:?}, not JSON")]
    NotJson(String),
    #[error("login answer is not a token response: {0}")]
    Body(String),
}

/// `POST {api}/v1/auth/login` (`api` like `http://127.0.0.1:8080`); `Ok`
/// only for a 200 JSON answer carrying an `access_token`.
pub async fn login(
    http: &reqwest::Client,
    api: &str,
    username: &str,
    password: &str,
) -> Result<Login, LoginError> {
    let r = http
        .post(format!("{api}/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await?;
    let status = r.status();
    if status != StatusCode::OK {
        let body = r.text().await.unwrap_or_default();
        return Err(LoginError::Status { status, body });
    }
    let content_type = r
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if !content_type.ends_with("json") {
        return Err(LoginError::NotJson(content_type));
    }
    let body: Value = r.json().await?;
    let access_token = body["access_token"]
        .as_str()
        .ok_or_else(|| LoginError::Body(body.to_string()))?
        .to_owned();
    Ok(Login { access_token, body })
}
