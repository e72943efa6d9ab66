//! `bankctl transfer send` and `bankctl transfer status`.

use std::time::{Duration, Instant};

use serde_json::json;
use shared::money::{Amount, Currency};
use shared::transfer::{IdempotencyKey, Reference, RejectReason};
use uuid::Uuid;

use crate::Ctx;
use crate::api::Transfer;
use crate::cli::SendArgs;
use crate::error::{Failure, Outcome};

/// The reason in words, when bankctl knows it.
pub fn reason_text(reason: &str) -> String {
    match RejectReason::parse(reason) {
        Some(r) => format!("{reason} ({})", r.describe()),
        None => reason.to_owned(),
    }
}

fn outcome(t: &Transfer) -> Outcome {
    if t.status == "rejected" {
        Outcome::SomeRejected
    } else {
        Outcome::Ok
    }
}

fn describe(t: &Transfer) -> String {
    let mut text = format!("transfer {} {}", t.id, t.status);
    if !t.amount.is_empty() {
        text.push_str(&format!(": {} {}", t.amount, t.currency));
    }
    if let Some(r) = &t.reason {
        text.push_str(&format!("\n  reason: {}", reason_text(r)));
    }
    text
}

/// Checks what the gateway would check without looking anything up, so a
/// typo is refused here with nothing sent.
fn check(args: &SendArgs) -> Result<(), Failure> {
    let currency = Currency::parse(&args.currency)
        .map_err(|e| Failure::invalid(format!("--currency {:?}: {e}", args.currency)))?;
    Amount::parse(&args.amount, currency)
        .map_err(|e| Failure::invalid(format!("--amount {:?}: {e}", args.amount)))?;
    if let Some(r) = &args.reference {
        Reference::parse(r).map_err(|e| Failure::invalid(format!("--reference: {e}")))?;
    }
    if let Some(k) = &args.idempotency_key {
        IdempotencyKey::parse(k)
            .map_err(|e| Failure::invalid(format!("--idempotency-key: {e}")))?;
    }
    if args.from == args.to {
        return Err(Failure::invalid("--to must differ from --from"));
    }
    Ok(())
}

pub async fn send(ctx: &Ctx, args: SendArgs) -> Result<Outcome, Failure> {
    check(&args)?;
    // A fresh key per invocation; printed so a retry by hand (after a crash
    // or a lost answer) can reuse it and never pay twice.
    let key = args
        .idempotency_key
        .clone()
        .unwrap_or_else(|| Uuid::new_v4().to_string());
    let mut body = json!({
        "from_account": args.from,
        "to_account": args.to,
        "amount": args.amount,
        "currency": args.currency,
    });
    if let Some(r) = &args.reference {
        body["reference"] = json!(r);
    }
    let answer = ctx.api.create_transfer(&key, &body).await?;
    let mut transfer = answer.body;
    if answer.replayed {
        ctx.out.note(&format!(
            "key {key} was used before: this is that transfer, nothing was sent twice"
        ));
    }
    if args.wait && !transfer.is_final() {
        ctx.out.note(&format!(
            "transfer {} accepted (idempotency key {key}); waiting…",
            transfer.id
        ));
        transfer = wait(ctx, &transfer.id, Duration::from_secs(args.timeout)).await?;
    }
    ctx.out.result(
        &json!({"transfer": transfer, "idempotency_key": key, "replayed": answer.replayed}),
        || format!("{}\n  idempotency key: {key}", describe(&transfer)),
    );
    Ok(outcome(&transfer))
}

async fn wait(ctx: &Ctx, id: &str, timeout: Duration) -> Result<Transfer, Failure> {
    let pacer = ctx.pacer().await;
    let started = Instant::now();
    loop {
        let t = ctx.api.transfer(id).await?;
        if t.is_final() {
            return Ok(t);
        }
        if started.elapsed() > timeout {
            return Err(Failure::Transport(format!(
                "transfer {id} is still pending after {}s; follow it with `bankctl transfer status {id}`",
                timeout.as_secs()
            )));
        }
        pacer.tick().await;
    }
}

pub async fn status(ctx: &Ctx, id: &str) -> Result<Outcome, Failure> {
    let t = ctx.api.transfer(id).await?;
    ctx.out.result(&json!({ "transfer": t }), || describe(&t));
    Ok(outcome(&t))
}
