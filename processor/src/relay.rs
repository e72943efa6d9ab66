//! Results relay: result batches from JetStream into Redis, where every
//! notifier replica picks them up.
//!
//! One Lua script per batch, atomically per batch: numbers each user's events
//! (`HINCRBY <p>:seq <user>`), appends them to the user's bounded replay
//! stream (`XADD <p>:ev:<user> MAXLEN ~ N`), and publishes them on
//! `<p>:events`. It also notes when each transfer was relayed (the ops
//! timeline's last stage) in one hash per hour (`HSET <p>:relayed:<hour>`)
//! that expires after [`shared::messages::RELAYED_KEEP`]: Redis holds hours
//! of these, not one key per transfer ever made.
//! Event ids are `<epoch>.<seq>`; the epoch changes when Redis
//! lost its data (it keeps nothing on disk here), which tells reconnecting
//! clients that their `since` is meaningless and they must refetch.
//! The JetStream message is acked only after Redis took the batch, so Redis
//! being down delays notifications and loses none.

use std::time::Duration;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::PullConsumer;
use futures::StreamExt;
use rand::RngExt;
use redis::aio::ConnectionManager;
use shared::messages::{Event, ResultBatch};
use shared::shutdown::Shutdown;

const SCRIPT: &str = r#"
local prefix = ARGV[1]
local maxlen = ARGV[2]
local now = ARGV[4]
-- This hour's hash of relay times (ops timeline) and how long it is kept:
-- Redis holds that many hours of them, whatever the rate.
local relayed = ARGV[5]
local relayed_any = false
local epoch = redis.call('GET', prefix .. ':epoch')
if not epoch then
  epoch = ARGV[3]
  redis.call('SET', prefix .. ':epoch', epoch)
end
for i = 7, #ARGV, 4 do
  local user = ARGV[i]
  local traceparent = ARGV[i + 1]
  local transfer = ARGV[i + 2]
  local fragment = ARGV[i + 3]
  local seq = redis.call('HINCRBY', prefix .. ':seq', user, 1)
  redis.call('XADD', prefix .. ':ev:' .. user, 'MAXLEN', '~', maxlen, seq .. '-0',
             'f', fragment, 't', traceparent)
  redis.call('PUBLISH', prefix .. ':events',
             user .. ' ' .. epoch .. '.' .. seq .. ' ' .. traceparent .. ' ' .. fragment)
  if transfer ~= '-' then
    -- When the transfer reached the notifiers (the ops timeline's last stage).
    redis.call('HSET', relayed, transfer, now)
    relayed_any = true
  end
end
if relayed_any then
  redis.call('EXPIRE', relayed, ARGV[6])
end
return epoch
"#;

/// `{"type":…}` without its opening brace: the notifier prepends `{"id":…,`.
fn fragment(json: &str) -> &str {
    json.strip_prefix('{').unwrap_or(json)
}

/// Connects to Redis, retrying until it answers or shutdown.
pub async fn connect(url: &str, shutdown: &Shutdown) -> Option<ConnectionManager> {
    let mut delay = Duration::from_millis(200);
    loop {
        let attempt = async { ConnectionManager::new(redis::Client::open(url)?).await };
        match attempt.await {
            Ok(c) => return Some(c),
            Err(e) => tracing::warn!(error = %e, "Redis unavailable; retrying"),
        }
        if shutdown.is_triggered() {
            return None;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

pub async fn run(
    consumer: PullConsumer,
    redis_url: String,
    prefix: String,
    replay_buffer: usize,
    mut shutdown: Shutdown,
) {
    let Some(mut redis) = connect(&redis_url, &shutdown).await else {
        return;
    };
    let script = redis::Script::new(SCRIPT);
    while !shutdown.is_triggered() {
        let mut messages = match consumer
            .stream()
            .max_messages_per_batch(100)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
        {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "cannot pull results; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            let next = tokio::select! {
                _ = shutdown.wait() => return,
                next = messages.next() => next,
            };
            let message = match next {
                None => break,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "results stream hiccup");
                    continue;
                }
                Some(Ok(m)) => m,
            };
            let batch: ResultBatch = match serde_json::from_slice(&message.payload) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "undecodable result batch; dropping it");
                    let _ = message.ack().await;
                    continue;
                }
            };
            let now = chrono::Utc::now().timestamp_micros();
            let mut invocation = script.prepare_invoke();
            invocation
                .arg(&prefix)
                .arg(replay_buffer)
                .arg(format!("{:08x}", rand::rng().random::<u32>()))
                .arg(now)
                .arg(shared::messages::relayed_key(&prefix, now))
                .arg(shared::messages::RELAYED_KEEP.as_secs());
            let mut events = 0u64;
            // One span per transfer, continuing its trace into Redis.
            let mut spans = Vec::with_capacity(batch.transfers.len());
            for result in &batch.transfers {
                let span = tracing::info_span!(
                    "relay",
                    otel.name = "bank.transfers.results process",
                    otel.kind = "consumer",
                    messaging.system = "nats",
                    messaging.message.id = %result.transfer.id,
                );
                shared::telemetry::continue_from(&span, result.traceparent.as_deref());
                let traceparent =
                    shared::telemetry::traceparent(&span).unwrap_or_else(|| "-".into());
                spans.push(span);
                let event = Event::TransferUpdated {
                    transfer: result.transfer.clone(),
                };
                if let Ok(json) = serde_json::to_string(&event) {
                    for user in &result.notify {
                        invocation
                            .arg(user.to_string())
                            .arg(&traceparent)
                            .arg(result.transfer.id.to_string())
                            .arg(fragment(&json));
                        events += 1;
                    }
                }
            }
            for (owner, progress) in &batch.batches {
                let event = Event::BatchUpdated {
                    batch: progress.clone(),
                };
                if let Ok(json) = serde_json::to_string(&event) {
                    invocation
                        .arg(owner.to_string())
                        .arg("-")
                        .arg("-")
                        .arg(fragment(&json));
                    events += 1;
                }
            }
            for a in &batch.accounts {
                let event = Event::AccountUpdated {
                    account: a.account.clone(),
                };
                if let Ok(json) = serde_json::to_string(&event) {
                    invocation
                        .arg(a.owner.to_string())
                        .arg("-")
                        .arg("-")
                        .arg(fragment(&json));
                    events += 1;
                }
            }
            let mut delay = Duration::from_millis(100);
            loop {
                match invocation.invoke_async::<String>(&mut redis).await {
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "Redis unavailable; holding results");
                        if shutdown.is_triggered() {
                            // Not acked: another relay (or our restart) takes it.
                            return;
                        }
                        // Keep the message ours while we wait.
                        let _ = message.ack_with(AckKind::Progress).await;
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                }
            }
            drop(spans);
            metrics::counter!("processor_events_relayed_total").increment(events);
            let _ = message.ack().await;
        }
    }
}
