//! Every way a command can fail, and the exit code each one means.
//!
//! Exit codes are part of the interface (scripts branch on them):
//! 0 all committed, 1 some rejected, 2 refused or invalid (a 4xx, or input
//! checked locally before anything was sent), 3 transport (connection
//! refused, timeouts, 5xx).

use std::process::ExitCode;

/// How a command that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything asked for is committed (or accepted, when not waiting).
    Ok,
    /// The request was processed, but some payments were rejected.
    SomeRejected,
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Ok => ExitCode::SUCCESS,
            Outcome::SomeRejected => ExitCode::from(1),
        }
    }
}

/// The gateway's RFC 9457 types, read as the gateway writes them: `line`
/// of a [`FieldError`] is the physical 1-based line of a file (the local
/// file check reports the same way).
pub use shared::problem::{FieldError, Problem};

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Bad arguments or local state (not logged in, unreadable file):
    /// nothing was sent.
    #[error("{0}")]
    Invalid(String),
    /// The file failed the local check; nothing was sent.
    #[error("{file}: {} invalid line(s); nothing was sent", errors.len())]
    InvalidFile {
        file: String,
        errors: Vec<FieldError>,
        /// More errors exist than are listed.
        truncated: bool,
    },
    /// The server refused the request (4xx). `hint` says what to do about it.
    #[error("{problem}")]
    Refused {
        problem: Box<Problem>,
        hint: Option<String>,
        /// The uploaded file, when `problem.errors` are lines of it.
        file: Option<String>,
    },
    /// The server failed (5xx) even after retries.
    #[error("{0}")]
    Server(Box<Problem>),
    /// The request never got an answer: connection refused, reset, timeout.
    #[error("{0}")]
    Transport(String),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Invalid(_) | Self::InvalidFile { .. } | Self::Refused { .. } => 2,
            Self::Server(_) | Self::Transport(_) => 3,
        }
    }

    /// A short machine-readable name for `--json` output.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid",
            Self::InvalidFile { .. } => "invalid_file",
            Self::Refused { .. } => "refused",
            Self::Server(_) => "server",
            Self::Transport(_) => "transport",
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }
}
