//! `bankctl login` and `bankctl accounts`.

use std::io::IsTerminal;

use serde_json::json;

use crate::Ctx;
use crate::auth;
use crate::cli::LoginArgs;
use crate::error::{Failure, Outcome};

/// The password from the flag or BANKCTL_PASSWORD, else asked on the
/// terminal without echo. Never read from a pipe by surprise.
fn password(args: &LoginArgs) -> Result<String, Failure> {
    if let Some(p) = &args.password {
        return Ok(p.clone());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::invalid(
            "no password: pass --password, set BANKCTL_PASSWORD, or run in a terminal",
        ));
    }
    rpassword::prompt_password(format!("password for {}: ", args.username))
        .map_err(|e| Failure::invalid(format!("cannot read the password: {e}")))
}

pub async fn login(ctx: &Ctx, args: &LoginArgs) -> Result<Outcome, Failure> {
    let password = password(args)?;
    let answer = ctx
        .api
        .login(&args.username, &password)
        .await
        .map_err(|f| match f {
            // "log in again" is no advice for a failed login.
            Failure::Refused { problem, file, .. } => Failure::Refused {
                problem,
                hint: None,
                file,
            },
            other => other,
        })?;
    let saved = auth::save(
        ctx.api.base(),
        &args.username,
        &answer.access_token,
        answer.expires_in,
    )?;
    let mut value = json!({
        "username": args.username,
        "api": ctx.api.base(),
        "cache": saved.path.display().to_string(),
        "expires_at": saved.expires_at,
    });
    // The token is shown only when asked for by name.
    if args.print_token {
        value["access_token"] = json!(answer.access_token);
    }
    let minutes = answer.expires_in.unwrap_or(0) / 60;
    let text = format!(
        "logged in to {} as {}; token cached in {} (valid {minutes} min)",
        ctx.api.base(),
        args.username,
        saved.path.display()
    );
    if args.print_token {
        // stdout is the token alone, for `export BANKCTL_TOKEN=$(bankctl login …)`.
        ctx.out.note(&text);
        ctx.out.result(&value, || answer.access_token.clone());
    } else {
        ctx.out.result(&value, || text);
    }
    Ok(Outcome::Ok)
}

pub async fn accounts(ctx: &Ctx) -> Result<Outcome, Failure> {
    let accounts = ctx.api.accounts().await?;
    ctx.out.result(&json!({ "accounts": accounts }), || {
        if accounts.is_empty() {
            return "no accounts".into();
        }
        let mut text = format!(
            "{:<36}  {:<8}  {:>18}  {:>18}  {:>14}",
            "id", "currency", "balance", "available", "overdraft"
        );
        for a in &accounts {
            text.push_str(&format!(
                "\n{:<36}  {:<8}  {:>18}  {:>18}  {:>14}",
                a.id, a.currency, a.balance, a.available, a.overdraft_limit
            ));
        }
        text
    });
    Ok(Outcome::Ok)
}
