//! A reader of customers' accounts while the load runs: the available
//! balance is the ledger balance minus the pending holds, and never below
//! the overdraft limit, whatever the holds, captures and expiries do.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::Value;
use testkit::SplitMix64 as Rng;

use crate::workload::Load;

/// How often the reader looks at one customer's accounts.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// Reads customers' accounts while the load runs: available = balance -
/// held, never below -overdraft_limit, held never negative.
pub async fn sampler(load: Arc<Load>, seed: u64) {
    let mut rng = Rng::new(seed);
    while !load.stop.load(Ordering::Relaxed) {
        tokio::time::sleep(SAMPLE_INTERVAL).await;
        let user = rng.index(load.users.len());
        let Some((200, Value::Array(accounts))) = load.get(user, "/v1/accounts").await else {
            continue;
        };
        for a in &accounts {
            load.available_reads.fetch_add(1, Ordering::Relaxed);
            if let Some(bad) = available_violation(a)
                && let Ok(mut v) = load.available_bad.lock()
            {
                v.push(bad);
            }
        }
    }
}

/// What is wrong with one AccountView's available/held, if anything.
pub fn available_violation(a: &Value) -> Option<String> {
    let num = |f: &str| a[f].as_str().and_then(|s| s.parse::<Decimal>().ok());
    let (Some(balance), Some(available), Some(held), Some(limit)) = (
        num("balance"),
        num("available"),
        num("held"),
        num("overdraft_limit"),
    ) else {
        return Some(format!("account {} lacks balance/available/held", a["id"]));
    };
    if available != balance - held || held < Decimal::ZERO || available < -limit {
        return Some(format!(
            "account {}: balance {balance}, held {held}, available {available}, limit {limit}",
            a["id"]
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::available_violation;
    use serde_json::json;

    fn account(balance: &str, held: &str, available: &str, limit: &str) -> serde_json::Value {
        json!({"id": "a", "balance": balance, "held": held, "available": available,
               "overdraft_limit": limit})
    }

    #[test]
    fn available_is_balance_minus_held_within_the_limit() {
        assert!(available_violation(&account("10.00", "4.00", "6.00", "0.00")).is_none());
        assert!(available_violation(&account("1.00", "3.00", "-2.00", "5.00")).is_none());
        // Wrong arithmetic, beyond the limit, missing fields: each reported.
        assert!(available_violation(&account("10.00", "4.00", "7.00", "0.00")).is_some());
        assert!(available_violation(&account("1.00", "3.00", "-2.00", "1.00")).is_some());
        assert!(available_violation(&json!({"id": "a", "balance": "1.00"})).is_some());
    }
}
