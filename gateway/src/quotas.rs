//! Per-role quotas: what one user of each role may send, with separate
//! budgets for money-moving requests and for reads (README "Security").
//!
//! A role is one line of [`DEFAULTS`]; each number can be changed with
//! `QUOTA_<ROLE>_MOVES_PER_MINUTE`, `QUOTA_<ROLE>_MOVES_PER_SECOND` and
//! `QUOTA_<ROLE>_READS_PER_MINUTE` (`0` switches that budget off). They are
//! counted by [`crate::rate_limit`] next to the per-user and per-IP limits.

use axum::http::Method;
use shared::auth::Role;
use shared::config::{self, ConfigError};

/// One role's budgets, per user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleQuota {
    pub role: Role,
    /// `None`: the role moves no money, so every request it sends is a read.
    pub moves: Option<Moves>,
    /// Reads (everything that is not a money-moving request) per minute.
    pub reads_per_minute: u64,
}

/// Money-moving requests (batch uploads: their payment lines) per minute,
/// and at most `per_second` requests in any one-second window (the burst).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moves {
    pub per_minute: u64,
    pub per_second: u64,
}

const fn moves(per_minute: u64, per_second: u64) -> Option<Moves> {
    Some(Moves {
        per_minute,
        per_second,
    })
}

/// A person pays at a human pace (10/s on average, bursts of 20) and reads
/// at 50/s; a batch integration sends 200,000 payment lines a minute (about
/// 3,300/s, near the pipeline's whole throughput on the reference machine),
/// and ops only reads.
pub const DEFAULTS: &[RoleQuota] = &[
    RoleQuota {
        role: Role::Customer,
        moves: moves(600, 20),
        reads_per_minute: 3_000,
    },
    RoleQuota {
        role: Role::Batch,
        moves: moves(200_000, 0),
        reads_per_minute: 3_000,
    },
    // Reversals are money-moving requests at a human pace, like a customer's.
    RoleQuota {
        role: Role::Reverser,
        moves: moves(600, 20),
        reads_per_minute: 3_000,
    },
    RoleQuota {
        role: Role::Ops,
        moves: None,
        reads_per_minute: 3_000,
    },
];

/// The quotas in force, one per role (a role without one has only the
/// per-user and per-IP limits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleQuotas(pub Vec<RoleQuota>);

impl Default for RoleQuotas {
    fn default() -> Self {
        Self(DEFAULTS.to_vec())
    }
}

impl RoleQuotas {
    /// Every budget switched off (tests and benchmarks that measure
    /// something else).
    pub fn off() -> Self {
        Self(
            DEFAULTS
                .iter()
                .map(|q| RoleQuota {
                    moves: q.moves.map(|_| Moves {
                        per_minute: 0,
                        per_second: 0,
                    }),
                    reads_per_minute: 0,
                    ..*q
                })
                .collect(),
        )
    }

    /// The defaults, each overridden by its environment variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut quotas = Vec::new();
        for q in DEFAULTS {
            let name = q.role.as_str().to_uppercase();
            let var = |what: &str| format!("QUOTA_{name}_{what}");
            let moves = match q.moves {
                Some(m) => Some(Moves {
                    per_minute: config::parse(&var("MOVES_PER_MINUTE"), m.per_minute)?,
                    per_second: config::parse(&var("MOVES_PER_SECOND"), m.per_second)?,
                }),
                None => None,
            };
            quotas.push(RoleQuota {
                role: q.role,
                moves,
                reads_per_minute: config::parse(&var("READS_PER_MINUTE"), q.reads_per_minute)?,
            });
        }
        Ok(Self(quotas))
    }

    pub fn get(&self, role: Role) -> Option<&RoleQuota> {
        self.0.iter().find(|q| q.role == role)
    }

    /// Changes `role`'s quota (tests).
    pub fn set(&mut self, quota: RoleQuota) {
        self.0.retain(|q| q.role != quota.role);
        self.0.push(quota);
    }
}

/// What a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    Read,
    /// A money-moving request.
    Move,
    /// A batch upload: one request against the burst; its lines are charged
    /// against the per-minute budget once they are read
    /// ([`crate::rate_limit::RateLimiter::charge_lines`]).
    BatchUpload,
}

/// Paths under which every POST moves money (or reserves it).
const MOVE_PATHS: [&str; 4] = ["/v1/transfers", "/v1/batches", "/v1/holds", "/v1/reversals"];

impl Spend {
    pub fn of(method: &Method, path: &str) -> Self {
        if method != Method::POST {
            return Self::Read;
        }
        if path == "/v1/batches" {
            return Self::BatchUpload;
        }
        let moving = MOVE_PATHS.iter().any(|p| {
            path.strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        });
        if moving { Self::Move } else { Self::Read }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_classified() {
        assert_eq!(Spend::of(&Method::POST, "/v1/transfers"), Spend::Move);
        assert_eq!(Spend::of(&Method::POST, "/v1/holds/x/capture"), Spend::Move);
        assert_eq!(Spend::of(&Method::POST, "/v1/batches"), Spend::BatchUpload);
        assert_eq!(Spend::of(&Method::GET, "/v1/transfers"), Spend::Read);
        assert_eq!(Spend::of(&Method::POST, "/v1/auth/login"), Spend::Read);
        assert_eq!(Spend::of(&Method::POST, "/v1/transfersx"), Spend::Read);
    }

    #[test]
    fn every_role_has_a_line() {
        let q = RoleQuotas::default();
        assert!(q.get(Role::Customer).unwrap().moves.is_some());
        assert!(q.get(Role::Ops).unwrap().moves.is_none());
        assert_eq!(
            RoleQuotas::off()
                .get(Role::Customer)
                .unwrap()
                .reads_per_minute,
            0
        );
    }
}
