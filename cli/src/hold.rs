//! `bankctl hold create|capture|void|show` and `bankctl reverse`: thin
//! wrappers over the API, each write with an Idempotency-Key (a fresh one
//! unless given, printed so a retry by hand never acts twice).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use uuid::Uuid;

use crate::Ctx;
use crate::cli::{HoldCommand, ReverseArgs};
use crate::error::{Failure, Outcome};
use crate::transfer::reason_text;

/// How often `--wait` looks at a requested hold.
const WAIT_POLL: Duration = Duration::from_millis(250);

fn key_or_new(key: Option<String>) -> String {
    key.unwrap_or_else(|| Uuid::new_v4().to_string())
}

fn text(v: &Value, field: &str) -> String {
    v[field].as_str().unwrap_or("").to_owned()
}

fn describe_hold(h: &Value) -> String {
    let mut out = format!(
        "hold {} {}: {} {} from {} to {}, expires {}",
        text(h, "id"),
        text(h, "status"),
        text(h, "amount"),
        text(h, "currency"),
        text(h, "from_account"),
        text(h, "to_account"),
        text(h, "expires_at"),
    );
    if let Some(r) = h["reason"].as_str() {
        out.push_str(&format!("\n  reason: {}", reason_text(r)));
    }
    if let Some(c) = h["captured_amount"].as_str() {
        out.push_str(&format!(
            "\n  captured: {c} (transfer {})",
            text(h, "capture_transfer_id")
        ));
    }
    for a in [&h["action"]]
        .into_iter()
        .chain(h["actions"].as_array().into_iter().flatten())
        .filter(|a| a.is_object())
    {
        out.push_str(&format!(
            "\n  {} {} {}",
            text(a, "kind"),
            text(a, "id"),
            text(a, "status")
        ));
        if let Some(r) = a["reason"].as_str() {
            out.push_str(&format!(": {}", reason_text(r)));
        }
    }
    out
}

fn outcome(status: &str) -> Outcome {
    if status == "rejected" {
        Outcome::SomeRejected
    } else {
        Outcome::Ok
    }
}

pub async fn run(ctx: &Ctx, command: HoldCommand) -> Result<Outcome, Failure> {
    let (path, key, body, wait) = match command {
        HoldCommand::Show { id } => {
            let h = ctx.api.get_value(&format!("/v1/holds/{id}")).await?;
            ctx.out.result(&json!({ "hold": h }), || describe_hold(&h));
            return Ok(outcome(&text(&h, "status")));
        }
        HoldCommand::Create { order, expires_in } => {
            let mut body = json!({
                "from_account": order.from, "to_account": order.to,
                "amount": order.amount, "currency": order.currency,
                "expires_in_seconds": expires_in,
            });
            if let Some(r) = &order.reference {
                body["reference"] = json!(r);
            }
            let wait = order.wait.then(|| Duration::from_secs(order.timeout));
            (
                "/v1/holds".to_owned(),
                key_or_new(order.idempotency_key),
                body,
                wait,
            )
        }
        HoldCommand::Capture {
            id,
            amount,
            idempotency_key,
        } => {
            let body = match amount {
                Some(a) => json!({ "amount": a }),
                None => json!({}),
            };
            (
                format!("/v1/holds/{id}/capture"),
                key_or_new(idempotency_key),
                body,
                None,
            )
        }
        HoldCommand::Void {
            id,
            idempotency_key,
        } => (
            format!("/v1/holds/{id}/void"),
            key_or_new(idempotency_key),
            json!({}),
            None,
        ),
    };
    let answer = ctx.api.post_keyed(&path, &key, &body).await?;
    let mut hold = answer.body;
    if let Some(limit) = wait {
        let id = text(&hold, "id");
        let started = Instant::now();
        while text(&hold, "status") == "requested" && started.elapsed() < limit {
            tokio::time::sleep(WAIT_POLL).await;
            hold = ctx.api.get_value(&format!("/v1/holds/{id}")).await?;
        }
    }
    ctx.out.result(
        &json!({"hold": hold, "idempotency_key": key, "replayed": answer.replayed}),
        || format!("{}\n  idempotency key: {key}", describe_hold(&hold)),
    );
    Ok(outcome(&text(&hold, "status")))
}

pub async fn reverse(ctx: &Ctx, args: ReverseArgs) -> Result<Outcome, Failure> {
    let key = key_or_new(args.idempotency_key);
    let mut body = json!({ "reason": args.reason });
    if let Some(a) = args.amount {
        body["amount"] = json!(a);
    }
    let path = format!("/v1/transfers/{}/reversals", args.id);
    let answer = ctx.api.post_keyed(&path, &key, &body).await?;
    let t = answer.body;
    ctx.out.result(
        &json!({"transfer": t, "idempotency_key": key, "replayed": answer.replayed}),
        || {
            format!(
                "reversal {} {}: {} {} back from {} to {}\n  idempotency key: {key}",
                text(&t, "id"),
                text(&t, "status"),
                text(&t, "amount"),
                text(&t, "currency"),
                text(&t, "from_account"),
                text(&t, "to_account"),
            )
        },
    );
    Ok(outcome(&text(&t, "status")))
}
