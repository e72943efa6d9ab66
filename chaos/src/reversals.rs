//! The reverser's workload: committed transfers reversed concurrently by
//! several clients, fully (amount omitted) and partly, several partial
//! reversals of one original at once, reversals asking for more than is
//! left, exact retries and double clicks, and customers trying (refused).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Value, json};
use testkit::SplitMix64 as Rng;
use uuid::Uuid;

use crate::http::Answer;
use crate::workload::{Kind, Load};

/// Originals are picked among this many of the latest accepted transfers,
/// so that the reverser clients often pick the same one.
const RECENT: usize = 40;
/// Pause when there is nothing to reverse yet.
const IDLE: Duration = Duration::from_millis(200);

/// One reversal request (one Idempotency-Key and body) and its answers.
#[derive(Debug)]
pub struct RevRec {
    pub original: Uuid,
    /// The token slot that sent it (the reverser, or a customer: refused).
    pub user: usize,
    pub key: String,
    pub body: Value,
    /// `New`: the reverser's; `Invalid`: a customer's (must be refused).
    pub kind: Kind,
    /// Ids from `202` answers (all must be equal).
    pub ids: Vec<Uuid>,
    /// `reverses` in the `202` answers that did not name the original.
    pub wrong_link: Vec<String>,
    pub refusals: Vec<u16>,
    pub answered: bool,
}

impl Load {
    fn push_rev(&self, r: RevRec) -> Option<usize> {
        let mut revs = self.reversals.lock().ok()?;
        revs.push(r);
        Some(revs.len() - 1)
    }

    /// Sends reversal `idx` until a definitive answer; records it.
    async fn send_rev(&self, idx: usize) {
        let (user, orig, key, body) = match self.reversals.lock() {
            Ok(r) => (
                r[idx].user,
                r[idx].original,
                r[idx].key.clone(),
                r[idx].body.clone(),
            ),
            Err(_) => return,
        };
        let path = format!("/v1/transfers/{orig}/reversals");
        let answer = self.post(user, &path, &key, &body).await;
        let Ok(mut revs) = self.reversals.lock() else {
            return;
        };
        let r = &mut revs[idx];
        match answer {
            Answer::Accepted(v) => {
                let id = v["id"].as_str().and_then(|s| Uuid::parse_str(s).ok());
                r.ids.push(id.unwrap_or_default());
                if v["reverses"].as_str() != Some(orig.to_string().as_str()) {
                    r.wrong_link.push(v["reverses"].to_string());
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

    /// A recent accepted transfer and its sender.
    fn recent_transfer(&self, rng: &mut Rng) -> Option<(Uuid, usize)> {
        let log = self.log.lock().ok()?;
        let recent: Vec<(Uuid, usize)> = log
            .iter()
            .rev()
            .filter(|r| r.kind == Kind::New)
            .filter_map(|r| r.ids.first().map(|id| (*id, r.user)))
            .take(RECENT)
            .collect();
        (!recent.is_empty()).then(|| recent[rng.index(recent.len())])
    }

    /// A new reversal of `orig` by `user`, sent once (twice at once when
    /// `double`).
    async fn reverse(
        &self,
        rng: &mut Rng,
        user: usize,
        orig: Uuid,
        amount: Option<Decimal>,
        double: bool,
    ) {
        let mut body = json!({"reason": format!("chaos reversal {}", rng.below(1_000_000))});
        if let Some(a) = amount {
            body["amount"] = json!(a.to_string());
        }
        let kind = if user == self.reverser_index() {
            Kind::New
        } else {
            Kind::Invalid
        };
        let key = format!(
            "chaos-rev-{}",
            Uuid::from_u64_pair(rng.next_u64(), rng.next_u64())
        );
        let Some(idx) = self.push_rev(RevRec {
            original: orig,
            user,
            key,
            body,
            kind,
            ids: vec![],
            wrong_link: vec![],
            refusals: vec![],
            answered: false,
        }) else {
            return;
        };
        if double {
            self.counts
                .concurrent_duplicates
                .fetch_add(1, Ordering::Relaxed);
            tokio::join!(self.send_rev(idx), self.send_rev(idx));
        } else {
            self.send_rev(idx).await;
        }
        if rng.percent(15) {
            self.counts.retried_exact.fetch_add(1, Ordering::Relaxed);
            self.send_rev(idx).await;
        }
    }
}

/// A share of `amount` between 1 cent and `pct_max` percent.
fn share(rng: &mut Rng, amount: Decimal, pct_max: u64) -> Decimal {
    let cents = (amount * Decimal::ONE_HUNDRED).to_i64().unwrap_or(1);
    let top = (cents * pct_max as i64 / 100).max(1) as u64;
    Decimal::new(1 + rng.below(top) as i64, 2)
}

/// One reverser client: until told to stop, reverses recent transfers.
pub async fn client(load: Arc<Load>, seed: u64) {
    let mut rng = Rng::new(seed);
    let me = load.reverser_index();
    while !load.stop.load(Ordering::Relaxed) {
        let Some((orig, sender)) = load.recent_transfer(&mut rng) else {
            tokio::time::sleep(IDLE).await;
            continue;
        };
        let view = match load.get(me, &format!("/v1/transfers/{orig}")).await {
            Some((200, v)) => v,
            _ => {
                tokio::time::sleep(IDLE).await;
                continue;
            }
        };
        // Mostly committed originals; a few pending or rejected ones too.
        if view["status"] != "committed" && !rng.percent(10) {
            tokio::time::sleep(IDLE).await;
            continue;
        }
        let amount: Decimal = view["amount"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or(Decimal::ONE);
        let plan = rng.below(100);
        match plan {
            0..=29 => {
                let double = rng.percent(10);
                if rng.percent(20) {
                    // Two full reversals under two keys at once: one at most.
                    let mut r2 = Rng::new(rng.next_u64());
                    tokio::join!(
                        load.reverse(&mut rng, me, orig, None, double),
                        load.reverse(&mut r2, me, orig, None, false)
                    );
                } else {
                    load.reverse(&mut rng, me, orig, None, double).await;
                }
            }
            30..=69 => {
                // Up to three partial reversals at once: together maybe too much.
                let (a1, a2, a3) = (
                    share(&mut rng, amount, 60),
                    share(&mut rng, amount, 60),
                    share(&mut rng, amount, 60),
                );
                let (mut r2, mut r3) = (Rng::new(rng.next_u64()), Rng::new(rng.next_u64()));
                let double = rng.percent(10);
                tokio::join!(
                    load.reverse(&mut rng, me, orig, Some(a1), double),
                    load.reverse(&mut r2, me, orig, Some(a2), false),
                    load.reverse(&mut r3, me, orig, Some(a3), false)
                );
            }
            70..=89 => {
                let over = amount + share(&mut rng, amount, 100);
                load.reverse(&mut rng, me, orig, Some(over), false).await;
            }
            90..=95 => {
                let a = share(&mut rng, amount, 100);
                load.reverse(&mut rng, me, orig, Some(a), true).await;
            }
            _ => {
                // A customer may not reverse: refused, no trace.
                load.reverse(&mut rng, sender, orig, None, false).await;
            }
        }
    }
}
