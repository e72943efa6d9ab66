//! `bankadmin`: migrations, demo data, users, accounts and funding.

use clap::{Parser, Subcommand};
use rust_decimal::Decimal;
use uuid::Uuid;

#[derive(Parser)]
#[command(name = "bankadmin", about = "Administer the bank ledger")]
struct Cli {
    /// PostgreSQL URL (also from DATABASE_URL_FILE).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/bank",
        hide_env_values = true
    )]
    database_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the database if missing and apply migrations.
    Migrate {
        /// Then create/update the services' roles and grants (bank_gateway,
        /// bank_processor; passwords from GATEWAY_DB_PASSWORD(_FILE) and
        /// PROCESSOR_DB_PASSWORD(_FILE); DB_ROLE_PREFIX renames them).
        #[arg(long)]
        roles: bool,
    },
    /// Load demo users (alice, bob, batch, ops) and funded accounts.
    SeedDemo,
    /// Create a user (password read from BANKADMIN_PASSWORD).
    CreateUser {
        name: String,
        #[arg(long, default_value = "customer")]
        role: String,
    },
    /// Disable or enable a user.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Create an account for a user.
    CreateAccount {
        owner: String,
        currency: String,
        #[arg(long)]
        id: Option<Uuid>,
        #[arg(long, default_value = "0")]
        overdraft_limit: Decimal,
    },
    /// Fund an account from the currency's funding account (idempotent per key).
    Fund {
        account: Uuid,
        amount: String,
        #[arg(long)]
        key: String,
    },
    /// Check the ledger's invariants and print the report.
    Check,
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Delete this deployment's database, JetStream streams (NATS_PREFIX) and
    /// Redis keys (REDIS_PREFIX). For throwaway test deployments only.
    Teardown {
        /// Required, to make the intent explicit.
        #[arg(long)]
        yes_delete_everything: bool,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Refuse the user's logins and end every session it has, at once
    /// (needs REDIS_URL / REDIS_PREFIX of the deployment).
    Disable { name: String },
    /// Let a disabled user log in again.
    Enable { name: String },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash chain; exit non-zero naming the first broken row.
    Verify,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let _telemetry = match shared::telemetry::init("bankadmin") {
        Ok(t) => t,
        Err(e) => {
            eprintln!("bankadmin: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bankadmin: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let url = shared::config::secret("DATABASE_URL")?.unwrap_or(cli.database_url);
    if let Command::Migrate { .. } = cli.command {
        ledger::create_database_if_missing(&url).await?;
    }
    if let Command::Teardown {
        yes_delete_everything,
    } = cli.command
    {
        if !yes_delete_everything {
            anyhow::bail!("teardown deletes data: pass --yes-delete-everything");
        }
        return teardown(&url).await;
    }
    let pool = ledger::pool(&url, 4)?;
    match cli.command {
        Command::Teardown { .. } => {}
        Command::Migrate { roles } => {
            ledger::migrate(&pool).await?;
            println!("migrations applied");
            if roles {
                let prefix = shared::config::string("DB_ROLE_PREFIX", "bank");
                let gateway = admin::db_roles::ServiceRole::from_env(&prefix, "gateway")?;
                let processor = admin::db_roles::ServiceRole::from_env(&prefix, "processor")?;
                admin::db_roles::apply(&pool, &gateway, &processor).await?;
                println!("roles {} and {} granted", gateway.name, processor.name);
            }
        }
        Command::SeedDemo => {
            admin::seed_demo(&pool).await?;
            println!("demo data loaded:");
            for (name, password, role) in admin::DEMO_USERS {
                println!("  {name:<6} / {password:<20} ({role})");
            }
            for (owner, id, currency, funds) in admin::DEMO_ACCOUNTS {
                println!("  account {id}  {owner:<6} {currency} funded {funds}");
            }
        }
        Command::CreateUser { name, role } => {
            let password = shared::config::secret("BANKADMIN_PASSWORD")?.ok_or_else(|| {
                anyhow::anyhow!("set BANKADMIN_PASSWORD (or BANKADMIN_PASSWORD_FILE)")
            })?;
            shared::auth::check_new_password(&password, &name)
                .map_err(|e| anyhow::anyhow!("BANKADMIN_PASSWORD {e}"))?;
            let id = admin::create_user(&pool, &name, &password, &role).await?;
            println!("{id}");
        }
        Command::User { command } => {
            let redis_url = shared::config::secret("REDIS_URL")?
                .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
            let prefix = shared::config::string("REDIS_PREFIX", "bank");
            let (name, disabled) = match command {
                UserCommand::Disable { name } => (name, true),
                UserCommand::Enable { name } => (name, false),
            };
            let id = admin::set_user_disabled(&pool, &name, disabled, &redis_url, &prefix).await?;
            let what = if disabled {
                "disabled; every session ended"
            } else {
                "enabled"
            };
            println!("user {name} ({id}) {what}");
        }
        Command::CreateAccount {
            owner,
            currency,
            id,
            overdraft_limit,
        } => {
            let id = id.unwrap_or_else(Uuid::now_v7);
            admin::create_account(&pool, &owner, id, &currency, overdraft_limit).await?;
            println!("{id}");
        }
        Command::Fund {
            account,
            amount,
            key,
        } => {
            admin::fund(&pool, account, &amount, &key).await?;
            println!("funded {account} with {amount}");
        }
        Command::Check => {
            let report = ledger::invariants::check(&pool).await?;
            println!("{report:#?}");
            if !report.holds() {
                anyhow::bail!("invariants violated: {:?}", report.violations());
            }
            println!("all invariants hold");
        }
        Command::Audit {
            command: AuditCommand::Verify,
        } => {
            println!("{}", admin::verify_audit(&pool).await?);
        }
    }
    Ok(())
}

async fn teardown(url: &str) -> anyhow::Result<()> {
    ledger::drop_database(url).await?;
    let topology = shared::streams::Topology::from_env()?;
    let nats_url = shared::config::string("NATS_URL", "nats://127.0.0.1:4222");
    if let Ok(client) = shared::tls::nats_options(async_nats::ConnectOptions::new())
        .connect(&nats_url)
        .await
    {
        topology
            .delete_streams(&async_nats::jetstream::new(client.clone()))
            .await;
        let _ = client.flush().await;
    }
    let redis_url =
        shared::config::secret("REDIS_URL")?.unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let prefix = shared::config::string("REDIS_PREFIX", "bank");
    let mut conn = shared::tls::redis_client(&redis_url)?
        .get_multiplexed_async_connection()
        .await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await?;
    if !keys.is_empty() {
        // UNLINK, not DEL: after a long run the relay-time hashes hold a
        // field per transfer (millions after `make bench`), and freeing
        // them inline outlasted the client's 500 ms response timeout.
        let _: () = redis::cmd("UNLINK")
            .arg(&keys)
            .query_async(&mut conn)
            .await?;
    }
    println!("deleted the database, streams and Redis keys of this deployment");
    Ok(())
}
