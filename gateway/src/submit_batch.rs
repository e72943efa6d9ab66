//! Submitting a batch: one upload slot per request, the payments read and
//! checked, the batch recorded, then every payment published.
//!
//! Payment ids derive from (batch id, line), the batch id from (caller,
//! key): submitting the same file again after any crash republishes the
//! same ids, which JetStream and the ledger both deduplicate, and lines
//! already applied are skipped. `202` comes only after every payment is
//! acknowledged. Each payment's command is built by
//! [`submit_transfer::command`], the one a single transfer uses.

use std::collections::HashSet;

use axum::body::Body;
use axum::response::Response;
use futures::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use shared::batch_line::{ATOMIC_MAX, Format, Payment};
use shared::messages::{AtomicBatchCommand, BatchRef, SCHEMA_VERSION};
use shared::transfer::{IdempotencyKey, batch_id, payment_id};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::batch_input;
use crate::check_accounts;
use crate::error::ApiError;
use crate::extract::Caller;
use crate::publish;
use crate::responses;
use crate::state::SharedState;
use crate::submit_transfer;

/// Batches one user may upload at the same time (per gateway replica).
pub const CONCURRENT_PER_USER: usize = 2;
/// Publishes in flight for one upload.
const PUBLISH_CONCURRENCY: usize = 512;

/// How a batch is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BatchMode {
    /// Each payment commits or is rejected on its own.
    Independent,
    /// All payments commit, or none does (at most 1,000).
    Atomic,
}

impl BatchMode {
    /// The `mode` query parameter (absent: independent).
    pub fn parse(mode: Option<&str>) -> Result<Self, ApiError> {
        match mode {
            None | Some("independent") => Ok(Self::Independent),
            Some("atomic") => Ok(Self::Atomic),
            Some(_) => Err(ApiError::field("mode", "must be independent or atomic")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Independent => "independent",
            Self::Atomic => "atomic",
        }
    }
}

/// The batch is queued: every payment is stored in JetStream.
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    id: Uuid,
    /// Payments in the batch.
    count: usize,
    #[schema(value_type = BatchMode)]
    mode: &'static str,
}

/// Releases the caller's upload slot when the request ends.
struct Slot<'a> {
    state: &'a SharedState,
    user: Uuid,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut slots = self
            .state
            .batch_slots
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = slots.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                slots.remove(&self.user);
            }
        }
    }
}

fn take_slot(state: &SharedState, user: Uuid) -> Result<Slot<'_>, ApiError> {
    let mut slots = state.batch_slots.lock().unwrap_or_else(|e| e.into_inner());
    let n = slots.entry(user).or_insert(0);
    if *n >= CONCURRENT_PER_USER {
        return Err(ApiError::TooMany(format!(
            "at most {CONCURRENT_PER_USER} batch uploads at a time"
        )));
    }
    *n += 1;
    Ok(Slot { state, user })
}

/// The batch's fingerprint: its mode and every (line, order), so the same
/// key with another file is told apart from a resubmission.
fn fingerprint(mode: BatchMode, payments: &[Payment]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(mode.as_str().as_bytes());
    for p in payments {
        hash.update(p.line.to_be_bytes());
        hash.update(p.order.fingerprint());
    }
    hash.finalize().into()
}

/// Reads `body` (in `format`) and queues its payments as batch `key` of
/// `caller`. `audit` receives the batch's count and mode once known.
pub async fn submit(
    state: &SharedState,
    caller: Caller,
    key: &IdempotencyKey,
    mode: BatchMode,
    format: Format,
    body: Body,
    audit_detail: &mut serde_json::Value,
) -> Result<Response, ApiError> {
    let _slot = take_slot(state, caller.id)?;
    // Admitted once, as a whole: a batch is not cut off halfway by the
    // budget (the stream's hard limit still is, and a resubmission of the
    // same file completes it).
    // The lines count as backlog as each is published (`batch_line`).
    drop(state.backlog.admit()?);
    let payments = batch_input::read(body, format).await?;
    if mode == BatchMode::Atomic && payments.len() > ATOMIC_MAX {
        return Err(ApiError::field(
            "mode",
            format!("an atomic batch holds at most {ATOMIC_MAX} payments"),
        ));
    }
    check_accounts::batch(state, caller, &payments).await?;
    // Batches spend the money-moving budget by the payment, not the request.
    state.rate_limiter.charge_lines(
        &state.redis_link,
        caller.id,
        caller.role,
        payments.len() as u64,
    )?;

    let id = batch_id(caller.id, key);
    let count = payments.len();
    *audit_detail = serde_json::json!({"count": count, "mode": mode.as_str()});
    let lines: Vec<i32> = payments.iter().map(|p| p.line as i32).collect();
    let recorded = ledger::batches::record(
        &state.pool,
        id,
        caller.id,
        key.as_str(),
        &fingerprint(mode, &payments),
        mode.as_str(),
        &lines,
    )
    .await?;
    let replayed = match recorded {
        ledger::batches::Recorded::Different => return Err(ApiError::KeyReused),
        ledger::batches::Recorded::New => false,
        ledger::batches::Recorded::Same => true,
    };
    let done: HashSet<i32> = if replayed {
        ledger::batches::applied_lines(&state.pool, id)
            .await?
            .into_iter()
            .collect()
    } else {
        HashSet::new()
    };
    let accepted_at = chrono::Utc::now();
    let commands: Vec<_> = payments
        .iter()
        .filter(|p| !done.contains(&(p.line as i32)))
        .map(|p| {
            submit_transfer::command(
                payment_id(id, p.line),
                caller.id,
                format!("{}#{}", key.as_str(), p.line),
                &p.order,
                accepted_at,
                Some(BatchRef {
                    id,
                    line: p.line as i32,
                }),
            )
        })
        .collect();
    drop(payments);
    match mode {
        // An atomic batch is one message: once any line is applied, all are.
        BatchMode::Atomic if done.is_empty() => {
            let batch = AtomicBatchCommand {
                v: SCHEMA_VERSION,
                id,
                owner: caller.id,
                payments: commands,
            };
            publish::atomic_batch(state, &batch).await?;
        }
        BatchMode::Atomic => {}
        BatchMode::Independent => {
            let mut results = futures::stream::iter(commands)
                .map(|cmd| async move { publish::batch_line(state, &cmd).await })
                .buffer_unordered(PUBLISH_CONCURRENCY);
            while let Some(r) = results.next().await {
                // Stop at the first failure: nothing acknowledged is lost, and
                // the client's resubmission completes the rest.
                r?;
            }
        }
    }
    let mode = mode.as_str();
    metrics::counter!("gateway_batches_total", "mode" => mode).increment(1);
    metrics::counter!("gateway_batch_payments_total").increment(count as u64);
    Ok(responses::accepted(
        &Accepted { id, count, mode },
        &format!("/v1/batches/{id}"),
        replayed,
    ))
}
