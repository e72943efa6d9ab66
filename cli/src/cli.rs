//! The command line (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use uuid::Uuid;

#[derive(Parser)]
#[command(
    name = "bankctl",
    version,
    about = "Command-line client of the bank: log in, send transfers, submit batch files.",
    after_help = "Exit codes: 0 all committed, 1 some rejected, 2 refused or invalid \
                  (nothing was sent, or the server said 4xx), 3 transport (connection \
                  refused, timeout, 5xx)."
)]
pub struct Cli {
    /// Base URL of the gateway.
    #[arg(
        long,
        global = true,
        env = "BANKCTL_API",
        default_value = "http://127.0.0.1:8080"
    )]
    pub api: String,

    /// Bearer token; otherwise the one `bankctl login` cached for this API.
    #[arg(long, global = true, env = "BANKCTL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Machine-readable output: one JSON document on stdout, no progress bars.
    #[arg(long, global = true)]
    pub json: bool,

    /// Notifier WebSocket (e.g. ws://127.0.0.1:8081/v1/ws): waits react to
    /// its events instead of only polling.
    #[arg(long, global = true, env = "BANKCTL_WS")]
    pub ws: Option<String>,

    /// Times a request is sent again after a transport error or a 503/409/429
    /// (safe: every write carries an idempotency key).
    #[arg(long, global = true, default_value_t = 3)]
    pub retries: u32,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Log in and cache the token (0600) for the following commands.
    Login(LoginArgs),
    /// List your accounts and balances.
    Accounts,
    /// Send a transfer or look one up.
    #[command(subcommand)]
    Transfer(TransferCommand),
    /// Submit a batch file, follow it, list its outcomes.
    #[command(subcommand)]
    Batch(BatchCommand),
    /// Reserve money now, capture or void it later (or let it expire).
    #[command(subcommand)]
    Hold(HoldCommand),
    /// Reverse a committed transfer, fully or partly (role `reverser`).
    Reverse(ReverseArgs),
}

#[derive(Subcommand)]
pub enum HoldCommand {
    /// Reserve money on one of your accounts.
    Create {
        #[command(flatten)]
        order: SendArgs,
        /// Seconds until the hold expires on its own (1..=604800).
        #[arg(long)]
        expires_in: u64,
    },
    /// Capture a pending hold (all of it, or --amount).
    Capture {
        id: Uuid,
        #[arg(long)]
        amount: Option<String>,
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Void a pending hold: the money is released.
    Void {
        id: Uuid,
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Show a hold with its captures and voids.
    Show { id: Uuid },
}

#[derive(Args)]
pub struct ReverseArgs {
    /// The committed transfer to reverse.
    pub id: Uuid,
    /// Why (1..=200 characters; kept in the audit trail).
    #[arg(long)]
    pub reason: String,
    /// Default: what is left to reverse.
    #[arg(long)]
    pub amount: Option<String>,
    #[arg(long)]
    pub idempotency_key: Option<String>,
}

#[derive(Args)]
pub struct LoginArgs {
    #[arg(long, env = "BANKCTL_USERNAME")]
    pub username: String,
    /// Password (visible to other users in `ps`: prefer BANKCTL_PASSWORD or
    /// the prompt).
    #[arg(long, env = "BANKCTL_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Print the token on stdout (for `export BANKCTL_TOKEN=…`).
    #[arg(long)]
    pub print_token: bool,
}

#[derive(Subcommand)]
pub enum TransferCommand {
    /// Send money from one of your accounts.
    Send(SendArgs),
    /// Show a transfer.
    Status { id: String },
}

#[derive(Args)]
pub struct SendArgs {
    #[arg(long)]
    pub from: Uuid,
    #[arg(long)]
    pub to: Uuid,
    /// Decimal string, e.g. 12.50.
    #[arg(long)]
    pub amount: String,
    /// ISO 4217 code, e.g. EUR.
    #[arg(long)]
    pub currency: String,
    #[arg(long)]
    pub reference: Option<String>,
    /// Reuse a key to retry a transfer safely (default: a new random key,
    /// printed).
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Wait until the transfer is committed or rejected.
    #[arg(long)]
    pub wait: bool,
    /// Seconds to wait with --wait.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Each payment succeeds or fails on its own.
    Independent,
    /// All or nothing, in one database transaction (at most 1,000 payments).
    Atomic,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFilter {
    Pending,
    Committed,
    Rejected,
}

impl StatusFilter {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Committed => "committed",
            Self::Rejected => "rejected",
        }
    }
}

#[derive(Subcommand)]
pub enum BatchCommand {
    /// Check a CSV (or .ndjson) file locally, upload it, wait for every
    /// payment and write a results file. Safe to run again after any crash:
    /// the default key is the file's SHA-256, so the same file is the same batch.
    Submit(SubmitArgs),
    /// Show a batch's counts and totals.
    Status {
        id: String,
        /// Follow it with a progress bar until every payment is decided.
        #[arg(long)]
        watch: bool,
        /// Seconds to follow with --watch.
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
    },
    /// List a batch's outcomes by line (CSV, or a JSON array with --json).
    Payments {
        id: String,
        #[arg(long, value_enum)]
        status: Option<StatusFilter>,
    },
    /// Write a demo batch file to stdout.
    Example(ExampleArgs),
}

#[derive(Args)]
pub struct SubmitArgs {
    /// `from_account,to_account,amount,currency,reference` CSV (header
    /// required), or NDJSON when the name ends in .ndjson/.jsonl.
    pub file: PathBuf,
    #[arg(long, value_enum, default_value_t = Mode::Independent)]
    pub mode: Mode,
    /// Default: the SHA-256 of the file. Pass another one to pay an
    /// identical file a second time.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Where to write `line,id,status,reason` (default: FILE.results.csv).
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Return once the batch is queued.
    #[arg(long)]
    pub no_wait: bool,
    /// Seconds to wait for processing.
    #[arg(long, default_value_t = 3600)]
    pub timeout: u64,
}

#[derive(Args)]
pub struct ExampleArgs {
    #[arg(long)]
    pub lines: u64,
    #[arg(long)]
    pub from: Uuid,
    #[arg(long)]
    pub to: Uuid,
    #[arg(long, default_value = "0.01")]
    pub amount: String,
    #[arg(long, default_value = "EUR")]
    pub currency: String,
    /// Reference of each line, followed by its number. Change it to make a
    /// new file (and so a new batch) with the same payments.
    #[arg(long, default_value = "example")]
    pub reference: String,
}
