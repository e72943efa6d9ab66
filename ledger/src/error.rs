//! Ledger errors, split by what the caller should do about them.

/// Every ledger failure is either worth retrying (the database is away or
/// busy, or a concurrent writer got there first) or not (a bug or bad data:
/// retrying would fail the same way).
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("database unavailable or busy")]
    Transient(#[source] sqlx::Error),
    #[error("database refused the operation")]
    Permanent(#[source] sqlx::Error),
    /// A concurrent transaction wrote the same transfer between our read and
    /// our write; the whole batch is rolled back and retried.
    #[error("concurrent write detected: {0}")]
    Conflict(String),
}

impl LedgerError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_) | Self::Conflict(_))
    }
}

impl From<sqlx::Error> for LedgerError {
    fn from(e: sqlx::Error) -> Self {
        if is_transient(&e) {
            Self::Transient(e)
        } else {
            Self::Permanent(e)
        }
    }
}

/// SQLSTATEs that mean "try again later", not "this is wrong".
fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            matches!(
                code.as_ref(),
                "40001" // serialization_failure
                    | "40P01" // deadlock_detected
                    | "55P03" // lock_not_available
                    | "57P01" // admin_shutdown
                    | "57P02" // crash_shutdown
                    | "57P03" // cannot_connect_now
                    | "57014" // query_canceled (statement timeout)
            ) || code.starts_with("08") // connection exceptions
                || code.starts_with("53") // insufficient resources
        }),
        _ => false,
    }
}
