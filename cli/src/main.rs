//! `bankctl`: the bank's command-line client. See `bankctl --help`.
//!
//! Layout: `cli` (arguments), `api` (HTTP client, retries, problems),
//! `auth` (token cache), `validate` (local batch file check), `batch` and
//! `transfer` and `session` (the commands), `watch` (waiting), `output`
//! (text, JSON, progress bars), `error` (failures and exit codes).

mod api;
mod auth;
mod batch;
mod cli;
mod error;
mod hold;
mod output;
mod session;
mod transfer;
mod validate;
mod watch;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::api::Api;
use crate::cli::{BatchCommand, Cli, Command, TransferCommand};
use crate::error::{Failure, Outcome};
use crate::output::Out;
use crate::watch::Pacer;

/// What every command needs.
pub struct Ctx {
    pub api: Api,
    pub out: Out,
    ws: Option<String>,
}

impl Ctx {
    /// How to wait for something to finish: polling, woken early by the
    /// WebSocket when `--ws` is given.
    pub async fn pacer(&self) -> Pacer {
        match (&self.ws, self.api.token()) {
            (Some(ws), Ok(token)) => Pacer::with_websocket(ws, token).await,
            _ => Pacer::polling(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = Out::new(cli.json);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            out.failure(&Failure::invalid(format!("cannot start: {e}")));
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(run(cli, out)) {
        Ok(outcome) => outcome.into(),
        Err(failure) => {
            out.failure(&failure);
            ExitCode::from(failure.exit_code())
        }
    }
}

async fn run(cli: Cli, out: Out) -> Result<Outcome, Failure> {
    // Needs neither the network nor a token.
    if let Command::Batch(BatchCommand::Example(args)) = &cli.command {
        return batch::example(args);
    }
    let base = cli.api.trim_end_matches('/').to_owned();
    let token = auth::resolve(cli.token, &base);
    let ctx = Ctx {
        api: Api::new(&base, token, cli.retries)?,
        out,
        ws: cli.ws,
    };
    match cli.command {
        Command::Login(args) => session::login(&ctx, &args).await,
        Command::Accounts => session::accounts(&ctx).await,
        Command::Transfer(TransferCommand::Send(args)) => transfer::send(&ctx, args).await,
        Command::Transfer(TransferCommand::Status { id }) => transfer::status(&ctx, &id).await,
        Command::Batch(BatchCommand::Submit(args)) => batch::submit(&ctx, args).await,
        Command::Batch(BatchCommand::Status { id, watch, timeout }) => {
            batch::status(&ctx, &id, watch, Duration::from_secs(timeout)).await
        }
        Command::Batch(BatchCommand::Payments { id, status }) => {
            batch::payments(&ctx, &id, status.map(|s| s.as_str())).await
        }
        Command::Batch(BatchCommand::Example(_)) => Ok(Outcome::Ok),
        Command::Hold(command) => hold::run(&ctx, command).await,
        Command::Reverse(args) => hold::reverse(&ctx, args).await,
    }
}
