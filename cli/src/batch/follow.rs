//! Following a batch until every payment is decided, with progress.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use shared::transfer::{IdempotencyKey, batch_id};
use uuid::Uuid;

use crate::Ctx;
use crate::api::Batch;
use crate::error::Failure;

/// How often the progress of a batch still being read is asked for.
const EARLY_POLL: Duration = Duration::from_millis(500);

/// The id the gateway will give the batch: it derives from (caller, key),
/// so it is known before the answer. `None` if the caller cannot be asked.
pub async fn expected_id(ctx: &Ctx, key: &str) -> Option<String> {
    let owner = Uuid::parse_str(&ctx.api.peek_me().await?).ok()?;
    let key = IdempotencyKey::parse(key).ok()?;
    Some(batch_id(owner, &key).to_string())
}

/// Shows the batch's progress until cancelled (the batch is unknown until
/// the gateway has read the whole file: until then nothing moves).
pub async fn follow_early(ctx: &Ctx, id: &str, bar: &ProgressBar) -> Infallible {
    loop {
        tokio::time::sleep(EARLY_POLL).await;
        if let Some(b) = ctx.api.peek_batch(id).await {
            bar.set_position(b.processed());
        }
    }
}

/// Polls the batch until every payment is decided, showing progress.
pub async fn wait_done(
    ctx: &Ctx,
    id: &str,
    timeout: Duration,
    bar: &ProgressBar,
) -> Result<Batch, Failure> {
    let follow = |f: Failure| match f {
        Failure::Transport(m) => Failure::Transport(format!(
            "{m}\n  the batch is queued and will complete: follow it with `bankctl batch status {id} --watch`"
        )),
        other => other,
    };
    let pacer = ctx.pacer().await;
    let started = Instant::now();
    loop {
        let batch = ctx.api.batch(id).await.map_err(follow)?;
        bar.set_length(batch.count);
        bar.set_position(batch.processed());
        bar.set_message(format!(
            "committed {} rejected {}",
            batch.committed, batch.rejected
        ));
        if batch.done {
            bar.finish();
            return Ok(batch);
        }
        if started.elapsed() > timeout {
            bar.abandon();
            return Err(follow(Failure::Transport(format!(
                "batch {id} still has {} pending payments after {}s",
                batch.pending,
                timeout.as_secs()
            ))));
        }
        pacer.tick().await;
    }
}
