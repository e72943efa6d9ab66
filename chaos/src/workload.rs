//! The seeded workload: users with accounts in two currencies, concurrent
//! clients sending transfers (some between a hot set of accounts, some that
//! would overdraw), exact retries (some concurrent with the original), key
//! reuse with a different body and invalid requests, each request resent
//! until it gets a definitive answer, as a careful client would.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::SplitMix64 as Rng;
use uuid::Uuid;

use crate::holds::HoldRec;
use crate::http::Answer;
use crate::reversals::RevRec;

pub const CURRENCIES: [&str; 2] = ["EUR", "USD"];
/// Every account starts with this much (in cents).
pub const FUNDS_CENTS: i64 = 1_000_000;

/// How long one request may take before it counts as a transient timeout
/// (and is resent): long enough for a gateway waiting out a NATS restart.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection attempt may take: a killed gateway refuses at once,
/// so anything slower is a stuck port.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Idle connections kept per host: one per client and then some.
const POOL_IDLE_PER_HOST: usize = 256;
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub password: String,
    pub id: Uuid,
    /// One account per currency, in `CURRENCIES` order.
    pub accounts: [Uuid; 2],
}

pub fn users(seed: u64, n: usize) -> Vec<User> {
    (0..n)
        .map(|i| {
            let account = |c: usize| Uuid::from_u128(((seed as u128) << 64) | (i * 2 + c) as u128);
            User {
                name: format!("chaos-u{i}"),
                password: format!("chaos-password-{seed}-{i}"),
                id: Uuid::nil(),
                accounts: [account(0), account(1)],
            }
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A fresh transfer.
    New,
    /// The key of an earlier accepted request with another body: must be refused.
    Reused,
    /// Fails validation: must be refused and leave no trace.
    Invalid,
}

/// One logical request (one Idempotency-Key and body) and every answer it got.
#[derive(Debug)]
pub struct Request {
    pub user: usize,
    pub key: String,
    pub body: Value,
    pub kind: Kind,
    /// Ids from `202` answers (all must be equal).
    pub ids: Vec<Uuid>,
    /// Statuses in `202` answers other than `pending` (must match the ledger).
    pub statuses: Vec<String>,
    /// Definitive refusals (4xx other than 401/408/409/429).
    pub refusals: Vec<u16>,
    pub answered: bool,
}

#[derive(Default)]
pub struct Counts {
    pub attempts: AtomicU64,
    pub accepted: AtomicU64,
    pub refused: AtomicU64,
    pub retried_exact: AtomicU64,
    pub concurrent_duplicates: AtomicU64,
    /// Transient failures by cause ("503", "connect", "timeout", …).
    pub transient: Mutex<BTreeMap<String, u64>>,
}

impl Counts {
    pub fn transient(&self, cause: &str) {
        if let Ok(mut m) = self.transient.lock() {
            *m.entry(cause.to_owned()).or_default() += 1;
        }
    }
}

pub struct Load {
    pub api: String,
    pub http: reqwest::Client,
    pub users: Vec<User>,
    pub hot: usize,
    /// One token per user, then the reverser's (see `reverser_index`).
    pub(crate) tokens: RwLock<Vec<String>>,
    /// The reverser's name and password, when the two-phase workload runs.
    pub reverser: Option<(String, String)>,
    pub log: Mutex<Vec<Request>>,
    /// Holds and the commands sent for them (`holds`).
    pub holds: Mutex<Vec<HoldRec>>,
    /// Reversals sent (`reversals`).
    pub reversals: Mutex<Vec<RevRec>>,
    /// Account reads during the run that broke available = balance - held
    /// >= -overdraft, and how many reads there were.
    pub available_bad: Mutex<Vec<String>>,
    pub available_reads: AtomicU64,
    pub counts: Counts,
    /// No new requests after this (requests in progress still finish).
    pub stop: AtomicBool,
    /// Give up resending after this (a request still unanswered is reported).
    pub deadline: Mutex<Option<Instant>>,
}

impl Load {
    pub fn new(
        api: String,
        users: Vec<User>,
        reverser: Option<(String, String)>,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_max_idle_per_host(POOL_IDLE_PER_HOST)
            .build()?;
        let hot = (users.len() / 6).max(2);
        Ok(Self {
            api,
            http,
            tokens: RwLock::new(vec![String::new(); users.len() + 1]),
            users,
            hot,
            reverser,
            log: Mutex::new(Vec::new()),
            holds: Mutex::new(Vec::new()),
            reversals: Mutex::new(Vec::new()),
            available_bad: Mutex::new(Vec::new()),
            available_reads: AtomicU64::new(0),
            counts: Counts::default(),
            stop: AtomicBool::new(false),
            deadline: Mutex::new(None),
        })
    }

    /// The token slot of the reverser (after the customers').
    pub fn reverser_index(&self) -> usize {
        self.users.len()
    }

    pub(crate) fn credentials(&self, user: usize) -> (String, String) {
        match self.users.get(user) {
            Some(u) => (u.name.clone(), u.password.clone()),
            None => self.reverser.clone().unwrap_or_default(),
        }
    }

    /// Sends transfer request `idx` until it gets a definitive answer (or
    /// the deadline) and records the answer.
    pub async fn send(&self, idx: usize) {
        let (user, key, body) = match self.log.lock() {
            Ok(log) => (log[idx].user, log[idx].key.clone(), log[idx].body.clone()),
            Err(_) => return,
        };
        let answer = self.post(user, "/v1/transfers", &key, &body).await;
        let Ok(mut log) = self.log.lock() else { return };
        let r = &mut log[idx];
        match answer {
            Answer::Accepted(v) => {
                let id = v["id"].as_str().and_then(|s| Uuid::parse_str(s).ok());
                r.ids.push(id.unwrap_or_default());
                let st = v["status"].as_str().unwrap_or("");
                if st != "pending" {
                    r.statuses.push(st.to_owned());
                }
                r.answered = true;
            }
            Answer::Refused(status) => {
                r.refusals.push(status);
                r.answered = true;
            }
            Answer::Unanswered => {}
        }
    }

    fn push(&self, r: Request) -> Option<usize> {
        let mut log = self.log.lock().ok()?;
        log.push(r);
        Some(log.len() - 1)
    }

    fn new_transfer(&self, rng: &mut Rng) -> Request {
        let n = self.users.len() as u64;
        let hot = rng.percent(25);
        let pick = |rng: &mut Rng| {
            if hot {
                rng.below(self.hot as u64) as usize
            } else {
                rng.below(n) as usize
            }
        };
        let from = pick(rng);
        let mut to = pick(rng);
        if to == from {
            to = (from + 1) % self.users.len();
        }
        let c = rng.below(2) as usize;
        // One in twelve asks for more than the account can hold.
        let cents = if rng.percent(8) {
            FUNDS_CENTS + 1 + rng.below(4 * FUNDS_CENTS as u64) as i64
        } else {
            1 + rng.below(20_000) as i64
        };
        Request {
            user: from,
            key: format!(
                "chaos-{}",
                Uuid::from_u64_pair(rng.next_u64(), rng.next_u64())
            ),
            body: json!({
                "from_account": self.users[from].accounts[c].to_string(),
                "to_account": self.users[to].accounts[c].to_string(),
                "amount": format!("{}.{:02}", cents / 100, cents % 100),
                "currency": CURRENCIES[c],
                "reference": format!("chaos {}", rng.below(1_000_000)),
            }),
            kind: Kind::New,
            ids: vec![],
            statuses: vec![],
            refusals: vec![],
            answered: false,
        }
    }

    /// One client: until told to stop, picks what to do next from its seed.
    pub async fn client(self: Arc<Self>, seed: u64) {
        let mut rng = Rng::new(seed);
        let mut mine: Vec<usize> = Vec::new();
        while !self.stop.load(Ordering::Relaxed) {
            let roll = rng.below(100);
            if roll < 30 && !mine.is_empty() {
                // An exact retry of one of this client's earlier requests.
                let idx = mine[rng.below(mine.len() as u64) as usize];
                self.counts.retried_exact.fetch_add(1, Ordering::Relaxed);
                self.send(idx).await;
            } else if roll < 34 && !mine.is_empty() {
                let orig = mine[rng.below(mine.len() as u64) as usize];
                let reused = self.log.lock().ok().and_then(|log| {
                    let o = &log[orig];
                    (o.kind == Kind::New && !o.ids.is_empty()).then(|| {
                        let mut body = o.body.clone();
                        body["amount"] = json!("0.07");
                        body["reference"] = json!("same key, other body");
                        (o.user, o.key.clone(), body)
                    })
                });
                if let Some((user, key, body)) = reused
                    && let Some(idx) = self.push(Request {
                        user,
                        key,
                        body,
                        kind: Kind::Reused,
                        ids: vec![],
                        statuses: vec![],
                        refusals: vec![],
                        answered: false,
                    })
                {
                    self.send(idx).await;
                }
            } else if roll < 37 {
                let mut r = self.new_transfer(&mut rng);
                r.kind = Kind::Invalid;
                match rng.below(3) {
                    0 => r.body["amount"] = json!("1.001"),
                    1 => r.body["currency"] = json!("XTS"),
                    _ => r.body["to_account"] = r.body["from_account"].clone(),
                }
                if let Some(idx) = self.push(r) {
                    self.send(idx).await;
                }
            } else {
                let r = self.new_transfer(&mut rng);
                let Some(idx) = self.push(r) else { break };
                mine.push(idx);
                if rng.percent(10) {
                    // The same request twice at once (a double click).
                    self.counts
                        .concurrent_duplicates
                        .fetch_add(1, Ordering::Relaxed);
                    tokio::join!(self.send(idx), self.send(idx));
                } else {
                    self.send(idx).await;
                }
            }
        }
    }
}
