//! Which accounts a transfer goes between, from a seeded generator so a
//! run's choices are the same on every machine.

use testkit::SplitMix64;

/// The hot scenario's accounts: few enough that their rows are contended.
pub const HOT_ACCOUNTS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Random pairs among all accounts.
    Uniform,
    /// Random pairs among the first ten accounts.
    Hot,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Uniform => "uniform",
            Scenario::Hot => "hot",
        }
    }

    pub fn pick(self, rng: &mut SplitMix64, accounts: usize) -> (usize, usize) {
        let n = match self {
            Scenario::Uniform => accounts,
            Scenario::Hot => HOT_ACCOUNTS.min(accounts),
        };
        let from = rng.index(n);
        let mut to = rng.index(n - 1);
        if to >= from {
            to += 1;
        }
        (from, to)
    }
}

/// The bench's generator for `seed` (the seed is mixed first, so small
/// consecutive seeds start far apart).
pub fn seeded_rng(seed: u64) -> SplitMix64 {
    SplitMix64::new(seed ^ SplitMix64::GAMMA)
}
