//! The two-phase workload: customers reserve money with short-lived holds
//! and then capture them (fully or partly), void them, or let them expire;
//! captures and voids are retried with the same key, sent twice at once,
//! sent again under another key, raced against each other and against the
//! expiry (`available` reads the accounts meanwhile).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Value, json};
use testkit::SplitMix64 as Rng;
use uuid::Uuid;

use crate::http::Answer;
use crate::workload::{CURRENCIES, FUNDS_CENTS, Kind, Load};

/// How long a client waits for its hold to leave `requested` before it
/// moves on (the hold is then left to expire): longer than an outage.
const SETTLE_MAX: Duration = Duration::from_secs(30);
/// How often a hold is read while waiting for it to be applied.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// A capture racing the expiry is sent within this many milliseconds
/// before or after the hold's `expires_at`.
const RACE_WINDOW_MS: i64 = 300;

/// What a capture or void asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    /// `None`: the full held amount.
    Capture(Option<Decimal>),
    Void,
}

/// One capture or void command (one Idempotency-Key) and its answers.
#[derive(Debug)]
pub struct CmdRec {
    pub cmd: Cmd,
    pub key: String,
    /// `202`s received (retries of the same key included).
    pub accepted: u32,
    pub refusals: Vec<u16>,
    pub answered: bool,
}

/// One hold request (one Idempotency-Key and body) and every answer it got.
#[derive(Debug)]
pub struct HoldRec {
    pub user: usize,
    pub key: String,
    pub body: Value,
    pub kind: Kind,
    /// Ids from `202` answers (all must be equal).
    pub ids: Vec<Uuid>,
    pub refusals: Vec<u16>,
    pub answered: bool,
    pub cmds: Vec<CmdRec>,
}

impl HoldRec {
    pub fn id(&self) -> Option<Uuid> {
        self.ids.first().copied()
    }

    pub fn amount(&self) -> Option<Decimal> {
        self.body["amount"].as_str().and_then(|a| a.parse().ok())
    }
}

fn money(cents: i64) -> String {
    Decimal::new(cents, 2).to_string()
}

fn random_key(rng: &mut Rng, what: &str) -> String {
    format!(
        "chaos-{what}-{}",
        Uuid::from_u64_pair(rng.next_u64(), rng.next_u64())
    )
}

impl Load {
    fn push_hold(&self, r: HoldRec) -> Option<usize> {
        let mut holds = self.holds.lock().ok()?;
        holds.push(r);
        Some(holds.len() - 1)
    }

    fn new_hold(&self, rng: &mut Rng, expires_in: u64) -> HoldRec {
        let n = self.users.len();
        let from = rng.index(n);
        let to = (from + 1 + rng.index(n - 1)) % n;
        let c = rng.index(CURRENCIES.len());
        // One in twenty asks for more than the account has: rejected.
        let cents = if rng.percent(5) {
            FUNDS_CENTS + 1 + rng.below(FUNDS_CENTS as u64) as i64
        } else {
            1 + rng.below(10_000) as i64
        };
        HoldRec {
            user: from,
            key: random_key(rng, "hold"),
            body: json!({
                "from_account": self.users[from].accounts[c].to_string(),
                "to_account": self.users[to].accounts[c].to_string(),
                "amount": money(cents),
                "currency": CURRENCIES[c],
                "reference": format!("chaos hold {}", rng.below(1_000_000)),
                "expires_in_seconds": expires_in,
            }),
            kind: Kind::New,
            ids: vec![],
            refusals: vec![],
            answered: false,
            cmds: vec![],
        }
    }

    /// Sends hold request `idx` until a definitive answer; records it.
    async fn send_hold(&self, idx: usize) {
        let (user, key, body) = match self.holds.lock() {
            Ok(h) => (h[idx].user, h[idx].key.clone(), h[idx].body.clone()),
            Err(_) => return,
        };
        let answer = self.post(user, "/v1/holds", &key, &body).await;
        let Ok(mut holds) = self.holds.lock() else {
            return;
        };
        let r = &mut holds[idx];
        match answer {
            Answer::Accepted(v) => {
                let id = v["id"].as_str().and_then(|s| Uuid::parse_str(s).ok());
                r.ids.push(id.unwrap_or_default());
                r.answered = true;
            }
            Answer::Refused(status) => {
                r.refusals.push(status);
                r.answered = true;
            }
            Answer::Unanswered => {}
        }
    }

    /// Adds a command to hold `idx` (a fresh key unless `key` is given).
    fn push_cmd(&self, idx: usize, cmd: Cmd, key: String) -> Option<usize> {
        let mut holds = self.holds.lock().ok()?;
        let cmds = &mut holds[idx].cmds;
        cmds.push(CmdRec {
            cmd,
            key,
            accepted: 0,
            refusals: vec![],
            answered: false,
        });
        Some(cmds.len() - 1)
    }

    /// Sends command `c` of hold `idx` until a definitive answer; records it.
    async fn send_cmd(&self, idx: usize, c: usize) {
        let (user, id, cmd, key) = match self.holds.lock() {
            Ok(h) => (
                h[idx].user,
                h[idx].id(),
                h[idx].cmds[c].cmd,
                h[idx].cmds[c].key.clone(),
            ),
            Err(_) => return,
        };
        let Some(id) = id else { return };
        let (path, body) = match cmd {
            Cmd::Capture(Some(a)) => (
                format!("/v1/holds/{id}/capture"),
                json!({"amount": a.to_string()}),
            ),
            Cmd::Capture(None) => (format!("/v1/holds/{id}/capture"), json!({})),
            Cmd::Void => (format!("/v1/holds/{id}/void"), json!({})),
        };
        let answer = self.post(user, &path, &key, &body).await;
        let Ok(mut holds) = self.holds.lock() else {
            return;
        };
        let r = &mut holds[idx].cmds[c];
        match answer {
            Answer::Accepted(_) => {
                r.accepted += 1;
                r.answered = true;
            }
            Answer::Refused(status) => {
                r.refusals.push(status);
                r.answered = true;
            }
            Answer::Unanswered => {}
        }
    }

    /// A new command on hold `idx`, sent once.
    async fn command(&self, rng: &mut Rng, idx: usize, cmd: Cmd) -> Option<usize> {
        let c = self.push_cmd(idx, cmd, random_key(rng, "cmd"))?;
        self.send_cmd(idx, c).await;
        Some(c)
    }

    /// The hold's view once it left `requested` (None: gave up).
    async fn settled(&self, user: usize, id: Uuid) -> Option<Value> {
        let start = Instant::now();
        while start.elapsed() < SETTLE_MAX && !self.past_deadline() {
            if let Some((200, v)) = self.get(user, &format!("/v1/holds/{id}")).await
                && v["status"] != "requested"
            {
                return Some(v);
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        None
    }
}

/// One hold client: until told to stop, one hold after another.
pub async fn client(load: Arc<Load>, seed: u64) {
    let mut rng = Rng::new(seed);
    while !load.stop.load(Ordering::Relaxed) {
        let plan = rng.below(100);
        if plan < 4 {
            invalid(&load, &mut rng).await;
            continue;
        }
        // Left to expire and raced against the expiry: short lives.
        let expires_in = match plan {
            4..=23 => 1 + rng.below(3),
            90.. => 2 + rng.below(3),
            _ => 6 + rng.below(10),
        };
        let Some(idx) = load.push_hold(load.new_hold(&mut rng, expires_in)) else {
            break;
        };
        if rng.percent(10) {
            // The same request twice at once (a double click).
            load.counts
                .concurrent_duplicates
                .fetch_add(1, Ordering::Relaxed);
            tokio::join!(load.send_hold(idx), load.send_hold(idx));
        } else {
            load.send_hold(idx).await;
        }
        if rng.percent(5) {
            reuse(&load, idx).await;
        }
        let (user, id) = match load.holds.lock() {
            Ok(h) => (h[idx].user, h[idx].id()),
            Err(_) => break,
        };
        let Some(id) = id else { continue };
        if plan < 24 {
            continue;
        }
        if plan < 30 {
            // Captured at once, while the hold may still be in the queue:
            // answered 409 (resent) until the hold is applied.
            load.command(&mut rng, idx, Cmd::Capture(None)).await;
            continue;
        }
        let Some(view) = load.settled(user, id).await else {
            continue;
        };
        if view["status"] != "pending" {
            continue;
        }
        let held: Decimal = view["amount"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or_default();
        finish(&load, &mut rng, idx, plan, held, &view).await;
    }
}

/// Captures, voids or races the pending hold `idx` as `plan` says.
async fn finish(load: &Load, rng: &mut Rng, idx: usize, plan: u64, held: Decimal, view: &Value) {
    match plan {
        24..=43 => {
            let Some(c) = load.command(rng, idx, Cmd::Capture(None)).await else {
                return;
            };
            if rng.percent(30) {
                load.counts.retried_exact.fetch_add(1, Ordering::Relaxed);
                load.send_cmd(idx, c).await;
            }
            if rng.percent(25) {
                // A second capture under another key: refused by the ledger.
                load.command(rng, idx, Cmd::Capture(None)).await;
            }
        }
        44..=58 => {
            // Part of it (the rest is released), at least a cent.
            let cents = (held * Decimal::ONE_HUNDRED).to_i64().unwrap_or(1);
            let part = Decimal::new(1 + rng.below((cents - 1).max(1) as u64) as i64, 2);
            load.command(rng, idx, Cmd::Capture(Some(part.min(held))))
                .await;
            if rng.percent(30) {
                load.command(rng, idx, Cmd::Capture(Some(Decimal::new(1, 2))))
                    .await;
            }
        }
        59..=65 => {
            // More than held: refused, the hold stays pending.
            load.command(rng, idx, Cmd::Capture(Some(held + Decimal::ONE)))
                .await;
            if rng.percent(50) {
                load.command(rng, idx, Cmd::Void).await;
            }
        }
        66..=79 => {
            let Some(c) = load.push_cmd(idx, Cmd::Void, random_key(rng, "cmd")) else {
                return;
            };
            if rng.percent(30) {
                load.counts
                    .concurrent_duplicates
                    .fetch_add(1, Ordering::Relaxed);
                tokio::join!(load.send_cmd(idx, c), load.send_cmd(idx, c));
            } else {
                load.send_cmd(idx, c).await;
            }
            if rng.percent(30) {
                load.command(rng, idx, Cmd::Void).await;
            }
        }
        80..=89 => {
            // Void and capture at once: exactly one of them wins.
            let mut r2 = Rng::new(rng.next_u64());
            tokio::join!(
                load.command(rng, idx, Cmd::Void),
                load.command(&mut r2, idx, Cmd::Capture(None))
            );
        }
        _ => {
            // Captured around the expiry: the capture or the expiry wins.
            let expires = view["expires_at"]
                .as_str()
                .and_then(|t| t.parse::<DateTime<Utc>>().ok());
            if let Some(at) = expires {
                let offset = rng.below(2 * RACE_WINDOW_MS as u64) as i64 - RACE_WINDOW_MS;
                let when = at + chrono::Duration::milliseconds(offset);
                if let Ok(wait) = (when - Utc::now()).to_std() {
                    tokio::time::sleep(wait).await;
                }
            }
            load.command(rng, idx, Cmd::Capture(None)).await;
        }
    }
}

/// A hold request that fails validation: refused, leaves no trace.
async fn invalid(load: &Load, rng: &mut Rng) {
    let mut r = load.new_hold(rng, 5);
    r.kind = Kind::Invalid;
    match rng.below(3) {
        0 => r.body["amount"] = json!("1.001"),
        1 => r.body["expires_in_seconds"] = json!(0),
        _ => r.body["expires_in_seconds"] = json!(604_801),
    }
    if let Some(idx) = load.push_hold(r) {
        load.send_hold(idx).await;
    }
}

/// The key of accepted hold `orig` with another body: refused.
async fn reuse(load: &Load, orig: usize) {
    let reused = load.holds.lock().ok().and_then(|h| {
        let o = &h[orig];
        (!o.ids.is_empty()).then(|| {
            let mut body = o.body.clone();
            body["amount"] = json!("0.07");
            HoldRec {
                user: o.user,
                key: o.key.clone(),
                body,
                kind: Kind::Reused,
                ids: vec![],
                refusals: vec![],
                answered: false,
                cmds: vec![],
            }
        })
    });
    if let Some(r) = reused
        && let Some(idx) = load.push_hold(r)
    {
        load.send_hold(idx).await;
    }
}
