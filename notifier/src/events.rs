//! Reading events from Redis: the live feed (pub/sub) and the per-user
//! replay buffer (a capped Redis stream). See the processor's relay for the
//! writing side and the id scheme (`<epoch>.<seq>`).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use redis::aio::ConnectionManager;
use shared::backoff::Backoff;
use shared::event_feed::{self, Line};
use shared::shutdown::Shutdown;
use uuid::Uuid;

use crate::hub::{Hub, Push};

pub use shared::event_feed::{EventId, message};

/// First wait before resubscribing after Redis went away; doubles up to the max.
const SUBSCRIBE_BACKOFF_START: Duration = Duration::from_millis(200);
/// Longest wait between subscription attempts: a returning Redis is
/// noticed within seconds.
const SUBSCRIBE_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Subscribes to `<prefix>:feed` (and the previous release's
/// `<prefix>:events`) and fans out to the hub, reconnecting
/// with backoff. Each time the subscription becomes live, every socket
/// already open is told to resync: it may have missed what was relayed
/// while no subscription was live.
pub async fn subscribe(redis_url: String, prefix: String, hub: Arc<Hub>, mut shutdown: Shutdown) {
    let (feed, legacy) = (
        event_feed::channel(&prefix),
        event_feed::legacy_channel(&prefix),
    );
    let mut backoff = Backoff::new(SUBSCRIBE_BACKOFF_START, SUBSCRIBE_BACKOFF_MAX);
    while !shutdown.is_triggered() {
        let attempt = async {
            let client = shared::tls::redis_client(&redis_url)?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&[&feed, &legacy]).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let mut pubsub = match attempt.await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "Redis unavailable for events; retrying");
                tokio::select! {
                    _ = shutdown.wait() => return,
                    _ = backoff.wait() => {},
                }
                continue;
            }
        };
        hub.set_subscribed(true);
        // The first subscription too: a socket accepted before it (the
        // bank checker caught one, right after a notifier restart) read its
        // catch-up before an event whose pub/sub message nobody received.
        let open = hub.connections();
        if open > 0 {
            hub.resync_all();
            metrics::counter!("notifier_resyncs_total", "cause" => "subscription_gap")
                .increment(open as u64);
        }
        backoff.reset();
        tracing::info!("subscribed to events");
        let mut messages = pubsub.on_message();
        loop {
            let msg = tokio::select! {
                _ = shutdown.wait() => return,
                msg = messages.next() => msg,
            };
            let Some(msg) = msg else {
                hub.set_subscribed(false);
                tracing::warn!("event subscription lost; reconnecting");
                break;
            };
            let Ok(payload) = msg.get_payload::<String>() else {
                continue;
            };
            if msg.get_channel_name() == feed {
                let batch = event_feed::batch_lines(&payload);
                for line in batch.lines {
                    send(&hub, line);
                }
                if !batch.complete {
                    // Some events could not be read: every socket catches
                    // up from its replay stream rather than miss them.
                    tracing::error!("malformed event batch; resyncing every socket");
                    let open = hub.connections();
                    hub.resync_all();
                    metrics::counter!("notifier_resyncs_total", "cause" => "malformed_batch")
                        .increment(open as u64);
                }
            } else if let Some(line) = Line::decode(&payload) {
                send(&hub, line);
            }
        }
    }
}

/// One event ([`Line`]) → the user's connections.
fn send(hub: &Hub, line: Line) {
    let text = line.message();
    hub.send(
        line.user,
        Push::Event {
            epoch: line.id.epoch.into(),
            seq: line.id.seq,
            text: text.into(),
            traceparent: line.traceparent.map(Into::into),
        },
    );
}

/// Where a connecting client stands.
pub enum Catchup {
    /// Events after `since`, in order; `last` is the newest id.
    Replay { last: EventId, events: Vec<String> },
    /// The gap is older than the buffer, or Redis restarted: refetch.
    Resync { last: EventId },
}

/// The user's current event id and, if `since` is given, what they missed.
pub async fn catch_up(
    redis: &mut ConnectionManager,
    prefix: &str,
    user: Uuid,
    since: Option<&EventId>,
    max: usize,
) -> redis::RedisResult<Catchup> {
    // The epoch is created by whoever needs it first (the relay does the
    // same), so the ids a client gets before any event stay valid after it.
    let _: Option<String> = redis::cmd("SET")
        .arg(event_feed::epoch_key(prefix))
        .arg(event_feed::epoch_text(rand::random::<u32>()))
        .arg("NX")
        .query_async(redis)
        .await?;
    let epoch: Option<String> = redis::cmd("GET")
        .arg(event_feed::epoch_key(prefix))
        .query_async(redis)
        .await?;
    let current: Option<u64> = redis::cmd("HGET")
        .arg(event_feed::seq_key(prefix))
        .arg(user.to_string())
        .query_async(redis)
        .await?;
    let last = EventId {
        epoch: epoch.unwrap_or_else(|| "0".into()),
        seq: current.unwrap_or(0),
    };
    let Some(since) = since else {
        return Ok(Catchup::Replay {
            last,
            events: Vec::new(),
        });
    };
    if since.epoch != last.epoch || since.seq > last.seq {
        return Ok(Catchup::Resync { last });
    }
    if since.seq == last.seq {
        return Ok(Catchup::Replay {
            last,
            events: Vec::new(),
        });
    }
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(event_feed::user_stream_key(prefix, user))
        .arg(event_feed::stream_entry_id(since.seq + 1))
        .arg("+")
        .arg("COUNT")
        .arg(max)
        .query_async(redis)
        .await?;
    let mut events = Vec::with_capacity(entries.len());
    let mut expected = since.seq + 1;
    for (id, fields) in entries {
        let seq = event_feed::stream_entry_seq(&id).unwrap_or(0);
        if seq != expected {
            // Trimmed away: the client missed more than the buffer holds.
            return Ok(Catchup::Resync { last });
        }
        let fragment = event_feed::stream_entry_fragment(&fields).unwrap_or("");
        events.push(message(&last.epoch, seq, fragment));
        expected += 1;
    }
    if expected <= last.seq {
        // More missed than one catch-up sends, or some are gone.
        return Ok(Catchup::Resync { last });
    }
    Ok(Catchup::Replay {
        last: EventId {
            epoch: last.epoch,
            seq: expected - 1,
        },
        events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_json() {
        let text = message("e1", 7, r#""type":"resync"}"#);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["id"], "e1.7");
        assert_eq!(v["type"], "resync");
    }
}
