//! Which accounts a transfer goes between, from a seeded generator so a
//! run's choices are the same on every machine.
//!
//! The distributions of issue 19: real payment traffic is not uniform over
//! all accounts; a few hundred merchant, payroll or treasury accounts take
//! most of it, which is where row locks and per-account ordering cost.

use std::sync::OnceLock;

use testkit::SplitMix64;

/// The hot scenario's accounts: few enough that their rows are contended.
pub const HOT_ACCOUNTS: usize = 10;
/// The skewed scenario's accounts (Zipf-distributed over them).
pub const SKEWED_ACCOUNTS: usize = 128;
/// Zipf's exponent for the skewed scenario: the top account takes ~18 %.
const ZIPF_S: f64 = 1.0;
/// The "one account per customer" scenario's accounts: with at least this
/// many bench users, the first ones are each owned by a different user.
pub const OWNED_ACCOUNTS: usize = 16;
/// One-to-many: account 0 pays this many payees (as a payroll batch does).
pub const PAYEES: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Random pairs among all accounts.
    Uniform,
    /// Pairs among the first 128 accounts, each end Zipf (s = 1) distributed.
    Skewed,
    /// Random pairs among 16 accounts, each owned by its own customer.
    Owned,
    /// Random pairs among the first ten accounts.
    Hot,
    /// Account 0 pays one of 10,000 payees.
    OneToMany,
}

impl Scenario {
    /// Every distribution, in the order `make bench` runs them.
    pub const ALL: [Scenario; 5] = [
        Scenario::Uniform,
        Scenario::Skewed,
        Scenario::Owned,
        Scenario::Hot,
        Scenario::OneToMany,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Uniform => "uniform",
            Scenario::Skewed => "zipf128",
            Scenario::Owned => "owned16",
            Scenario::Hot => "hot",
            Scenario::OneToMany => "payroll",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Accounts the scenario needs (the bench seeds at least this many).
    pub fn accounts_min(self) -> usize {
        match self {
            Scenario::Uniform | Scenario::Hot => 2 * HOT_ACCOUNTS,
            Scenario::Skewed => SKEWED_ACCOUNTS,
            Scenario::Owned => OWNED_ACCOUNTS,
            Scenario::OneToMany => PAYEES + 1,
        }
    }

    pub fn pick(self, rng: &mut SplitMix64, accounts: usize) -> (usize, usize) {
        match self {
            Scenario::Uniform => distinct_pair(rng, accounts),
            Scenario::Hot => distinct_pair(rng, HOT_ACCOUNTS.min(accounts)),
            Scenario::Owned => distinct_pair(rng, OWNED_ACCOUNTS.min(accounts)),
            Scenario::OneToMany => (0, 1 + rng.index(PAYEES.min(accounts - 1))),
            Scenario::Skewed => {
                let n = SKEWED_ACCOUNTS.min(accounts);
                let from = zipf(rng, n);
                let mut to = zipf(rng, n);
                // Rare (the top account meets itself ~3 % of the time):
                // its neighbour keeps the pair distinct and the skew intact.
                if to == from {
                    to = (from + 1) % n;
                }
                (from, to)
            }
        }
    }
}

/// Two different accounts among the first `n`, uniformly.
fn distinct_pair(rng: &mut SplitMix64, n: usize) -> (usize, usize) {
    let from = rng.index(n);
    let mut to = rng.index(n - 1);
    if to >= from {
        to += 1;
    }
    (from, to)
}

/// An index below `n` (≤ [`SKEWED_ACCOUNTS`]) with P(k) ∝ 1 / (k+1)^s.
fn zipf(rng: &mut SplitMix64, n: usize) -> usize {
    static CDF: OnceLock<Vec<f64>> = OnceLock::new();
    let cdf = CDF.get_or_init(|| {
        let weights: Vec<f64> = (1..=SKEWED_ACCOUNTS)
            .map(|k| 1.0 / (k as f64).powf(ZIPF_S))
            .collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        weights
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect()
    });
    // 53 random bits as a uniform in [0, 1).
    let u = (rng.index(1 << 53) as f64) / (1u64 << 53) as f64;
    cdf.partition_point(|&c| c <= u).min(n - 1)
}

/// The bench's generator for `seed` (the seed is mixed first, so small
/// consecutive seeds start far apart).
pub fn seeded_rng(seed: u64) -> SplitMix64 {
    SplitMix64::new(seed ^ SplitMix64::GAMMA)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_picks_two_different_accounts_in_its_range() {
        let mut rng = seeded_rng(1);
        for s in Scenario::ALL {
            for _ in 0..10_000 {
                let (a, b) = s.pick(&mut rng, 20_000);
                assert_ne!(a, b, "{}", s.name());
                assert!(a.max(b) < s.accounts_min().max(20_000));
            }
        }
    }

    #[test]
    fn the_skewed_scenario_favours_the_first_accounts() {
        let mut rng = seeded_rng(2);
        let mut top = 0;
        for _ in 0..100_000 {
            if Scenario::Skewed.pick(&mut rng, 20_000).0 == 0 {
                top += 1;
            }
        }
        // 1 / H(128) ≈ 18.5 %.
        assert!((15_000..22_000).contains(&top), "{top}");
    }
}
